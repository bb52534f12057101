//! The identity service end to end, against a real PostgreSQL and Redis: each test gets its own database and
//! Redis key prefix and runs the production service on a free port.

mod access;
mod clients;
mod health;
mod helpers;
mod jwks;
mod lookup;
mod otp;
mod privacy;
mod providers;
mod refresh;
mod registration;
mod rotation;
