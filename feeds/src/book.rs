//! Books built from decoded messages. Needs the `std` feature (they own memory, sized up front).
//!
//! - [`order`]: order by order (DEEP+), time priority per price, per-level aggregates.
//! - [`level`]: price levels (DEEP) with per-symbol transactions; the BBO is published on close.
//! - [`status`]: per-symbol trading state from H, O, P, I, E, S and TOPS quote flags.

pub mod level;
pub mod order;
pub mod status;

pub use status::{StatusBook, StatusChange, SymbolStatus};

pub use level::{Applied, Bbo, LevelBooks, PriceSize};

pub use order::{BookError, BookSide, Level, OrderBooks, OrderState};
