-- The region that reported a case-list entry (facts.imported 1.2): a close contact listed by another region, passed
-- on through the national hub, says where it came from. Null for entries from older events.
ALTER TABLE f_cases ADD COLUMN region char(6);
