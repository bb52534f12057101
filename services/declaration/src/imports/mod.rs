//! Bulk imports of official facts: NDJSON or CSV streamed from the request body, validated row by row, landed a
//! chunk per transaction with the batch's progress and a `facts.imported` event, resumable after a crash.

mod batches;
pub(crate) mod facts;
mod framing;
mod runner;

pub use batches::{BatchKey, BatchView};
pub use facts::{Kind, RowError, nat_result};
pub use framing::{Format, FramingError};
pub use runner::{check_upload, import};
