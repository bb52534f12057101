//! Domain values that can only hold valid data. Parsing is the only way in, so a value of one of these types
//! is proof that the input was checked. No I/O and no web framework here: services depend on this crate,
//! never the other way round.

mod case_status;
pub mod china_time;
mod colour;
mod error;
mod id_number;
mod person;
mod phone;
mod region;
mod scope;
mod temperature;

pub use case_status::CaseStatus;
pub use colour::Colour;
pub use error::InvalidValue;
pub use id_number::{IdNumber, check_character};
pub use person::{PersonId, PersonName};
pub use phone::Phone;
pub use region::{RegionCode, RegionLevel, enclosing_codes};
pub use scope::{Scope, Scopes};
pub use temperature::Temperature;
