//! IEX market data over IEX-TP: TOPS 1.5 and 1.6, DEEP 1.0, DEEP+ 1.0.
//!
//! Layouts follow IEX's specifications as digested in the project's `IEX.md`; every field is read
//! little-endian at a fixed offset from a length-checked view, never by casting.
//!
//! - [`transport`]: the 40-byte segment header and the `[u16 len][bytes]` block iterator.
//! - [`codes`]: enumerations (system events, trading status, ...) that keep unknown raw codes, and
//!   flag bytes as bit sets.
//! - [`message`]: one view type per message, and [`decode`], which dispatches on
//!   (protocol id, type byte).
//! - [`sequencer`]: per-(protocol, channel, session) sequencing with explicit gap, duplicate,
//!   reset and session-change events.
//! - [`arbiter`]: merging the A and B lines of one feed message by message.
//! - [`handler`]: [`FeedHandler`], the per-datagram path used by replay and by the NIC poll loop.
//! - [`builder`]: writes segments, for tests, fault injection and fuzz seeds.

pub mod arbiter;
pub mod builder;
pub mod codes;
pub mod handler;
pub mod message;
pub mod sequencer;
pub mod transport;

pub use arbiter::{Arbiter, LineId, Pick};
#[cfg(feature = "std")]
pub use builder::SegmentBuilder;
pub use handler::{FeedError, FeedHandler, FeedStats, MessageSink, MsgContext};
pub use message::{DecodeError, Message, decode};
pub use sequencer::{SeqEvent, SeqStats, Sequencer, Standing, StreamKey, Verdict};
pub use transport::{Block, BlockError, Protocol, Segment, SegmentError};

/// Hex (whitespace ignored) to bytes, for the spec vectors in tests.
#[cfg(test)]
pub(crate) fn test_hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
