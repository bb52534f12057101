-- People registered before the outbox existed: announce them once, so services that key facts by the blind index
-- can link them too (consumers are idempotent, so a repeat is harmless).
INSERT INTO outbox (stream, payload)
SELECT 'person.registered',
       jsonb_build_object('person_id', id, 'id_number_index', encode(id_number_index, 'hex'), 'home_region', home_region)
FROM persons;
