//! The fuzz targets' bodies (one file, also included by the replay test in `make test`).
pub mod targets;
