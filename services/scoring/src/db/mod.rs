//! The scoring schema's SQL for the route handlers, one module per table family (the projection, the loader and
//! the recolouring keep theirs beside the logic they serve).

pub mod appeals;
pub mod county_map;
pub mod region_risk;
pub mod rule_sets;
pub mod staff;
pub mod subjects;
