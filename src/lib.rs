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
//! - [`dbn_out`]: DBN v3 files (`weir replay --out`) from `weir_feeds::normalize`'s records.
//! - [`book_view`]: one symbol's books, as `weir book` prints them.
//! - [`bus`]: DBN records to other processes through a shared-memory broadcast ring.
//! - [`pipeline`]: a layout file checked against the machine, turned into what starts: rx threads, rings,
//!   DAG workers.

pub mod book_view;
pub mod bus;
pub mod capture;
pub mod dbn_out;
pub mod harness;
pub mod jsonl;
pub mod lcore;
pub mod nic;
pub mod pipeline;
pub mod replay;
