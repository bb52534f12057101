pub mod corrections;
pub mod declarations;
