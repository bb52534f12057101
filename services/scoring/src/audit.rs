//! The audit log: every read of a person's status by an official and every override, written before the answer.

pub use hc_platform::audit::Entry;
