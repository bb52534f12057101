//! The verification schema's SQL, out of the route handlers: one module per table family.

pub mod checkin_keys;
pub mod dcc_signers;
pub mod peers;
pub mod persons;
pub mod scans;
pub mod venues;
