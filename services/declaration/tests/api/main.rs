//! The declaration service end to end with the real identity service beside it (tokens, JWKS, registration
//! events), against a real PostgreSQL and Redis: one database (a schema per service) and one key prefix per test.

mod access;
mod declarations;
mod events;
mod helpers;
mod imports;
mod provenance;
