pub mod declarations;
