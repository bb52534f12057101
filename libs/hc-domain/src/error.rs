/// Why an input was rejected. `field` is filled in by the boundary that knows the field's name, so the
/// same parser serves a JSON body, a CSV column and a path segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidValue {
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}
