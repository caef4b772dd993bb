//! # weir-feeds: exchange feeds, decoded without copies
//!
//! The market-data half of weir below the NIC: everything between "here are the bytes of one
//! frame" and "here is a typed message with its place in the sequence". No I/O, no allocation per
//! message, no panics on input; `no_std` when the `std` feature is off.
//!
//! ```text
//!  frame bytes ──frame::peel_udp──▶ UDP payload ──iex::Segment::parse──▶ IEX-TP segment
//!      │                                                                  │ .blocks()
//!      │                        iex::Sequencer (gaps, duplicates, resets, sessions)
//!      │                        iex::Arbiter   (A/B lines merged per message)
//!      ▼                                                                  ▼
//!  other traffic: counted                          iex::decode(protocol, block) ─▶ iex::Message
//! ```
//!
//! - [`frame`]: Ethernet II, 802.1Q / QinQ, IPv4 (with options), UDP.
//! - [`iex`]: IEX-TP transport, the TOPS 1.5/1.6, DEEP 1.0 and DEEP+ message views, enumerations and
//!   flag sets, the per-stream [`iex::Sequencer`], the [`iex::Arbiter`] for A/B lines, the
//!   [`iex::FeedHandler`] that ties them together, and [`iex::SegmentBuilder`] to write segments
//!   (tests, fault injection, fuzz seeds).
//!
//! - [`book`]: order-by-order books (DEEP+), price-level books with transactions (DEEP), and the
//!   per-symbol status machine; [`symbols`]: symbol → instrument id.
//! - [`normalize`]: IEX messages → DBN v3 records (MBO, MBP-1/10, trades, status, definition,
//!   imbalance, statistics, symbol mapping, system), driving the books (feature `dbn`).
//!
//! Every view checks its length once when it is made; after that no accessor can panic. Errors on
//! this path are small `Copy` enums that say what was wrong and at which byte offset.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
pub mod book;
pub mod frame;
pub mod iex;
#[cfg(feature = "dbn")]
pub mod normalize;
#[cfg(feature = "std")]
pub mod symbols;
