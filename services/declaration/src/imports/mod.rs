//! Bulk imports of official facts: NDJSON or CSV streamed from the request body, validated row by row, landed a
//! chunk per transaction with the batch's progress and a `facts.imported` event, resumable after a crash.

mod facts;
mod runner;

pub use facts::Kind;
pub use runner::{BatchView, Format, import, view};
