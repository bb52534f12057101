//! SQL of the identity schema, as small functions over `&impl GenericClient` so each runs on a pooled
//! client or inside a transaction.

pub mod clients;
pub mod persons;
pub mod refresh_tokens;
