//! Books built from decoded messages. Needs the `std` feature (they own memory, sized up front).
//!
//! - [`order`]: order by order (DEEP+), time priority per price, per-level aggregates.

pub mod order;

pub use order::{BookError, BookSide, Level, OrderBooks, OrderState};
