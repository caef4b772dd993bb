//! # weir
//!
//! An embedded runtime for kernel-bypass market data. This crate is the top of the stack: it reads
//! frames from somewhere (today: capture files), hands them to the feed handlers of
//! [`weir_feeds`], and drives the command line.
//!
//! - [`capture`]: pcap / pcapng reader, gzip or not, streaming.
//! - [`replay`]: the replay job: capture → frame peel → IEX-TP → sequencer → decoder → sinks, with
//!   the counters `weir replay` prints; A/B arbitration of two captures.
//! - [`jsonl`]: one JSON object per IEX message, as `weir replay --emit jsonl` writes.

pub mod capture;
pub mod jsonl;
pub mod replay;
