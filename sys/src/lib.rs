//! Narrow FFI bindings to DPDK 22.11 for weir.
//!
//! Two layers, both `unsafe` to call:
//!
//! - **bindgen output** for the control plane and the data types (`rte_eal_init`,
//!   `rte_eth_dev_configure`, `rte_pktmbuf_pool_create`, `rte_mbuf`, `rte_eth_conf`, ...): only
//!   what `build.rs` allowlists, generated at build time from the installed headers, so the struct
//!   layouts are the installed DPDK's.
//! - **the C shim** (`shim.c`, `shim_*` below) for what bindgen cannot bind: DPDK's `static
//!   inline` fast paths (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`, ...) and the thread-local
//!   `rte_errno`. Compiled with `-O3`, each wrapper is one call.
//!
//! Building needs DPDK ≥ 22.11 found by pkg-config and libclang (`apt-get install libdpdk-dev
//! pkg-config libclang-dev`). By default DPDK's shared libraries are linked and EAL loads every
//! installed driver from its plugin directory; feature `static` links a curated set of drivers
//! statically instead (pcap, null, ring, af_packet, tap, memif on the vdev bus).
//!
//! Macros that bindgen drops are restated here as constants ([`RTE_MBUF_DEFAULT_BUF_SIZE`],
//! [`SOCKET_ID_ANY`], [`LCORE_ID_ANY`], the `RTE_BIT64` offload flags); `shim.c` checks each
//! against the headers with a `_Static_assert`.

// Empty unless feature `bindings` (weir's `dpdk`) asks for DPDK: see Cargo.toml.
#![cfg(feature = "bindings")]
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(
    dead_code,
    unnecessary_transmutes,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    rustdoc::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

use std::ffi::{c_char, c_int, c_uint};

/// Data room of a default packet mbuf: 2048 bytes of data + [`RTE_PKTMBUF_HEADROOM`] (128).
/// `RTE_MBUF_DEFAULT_BUF_SIZE` is a macro expression bindgen cannot evaluate.
pub const RTE_MBUF_DEFAULT_BUF_SIZE: u16 = 2048 + 128;

/// "Any NUMA socket" for `int` socket parameters (`rte_pktmbuf_pool_create`). Where the parameter
/// is `unsigned` (queue setup) pass `SOCKET_ID_ANY as u32` (`u32::MAX`).
pub const SOCKET_ID_ANY: c_int = -1;

/// What `rte_lcore_id()` returns on a thread that is neither an EAL lcore nor registered with
/// `rte_thread_register` (`UINT32_MAX`).
pub const LCORE_ID_ANY: c_uint = u32::MAX;

/// Receive offload: scattered receive (a frame may span several mbufs).
pub const RTE_ETH_RX_OFFLOAD_SCATTER: u64 = 1 << 13;

/// Receive offload: the NIC stamps each packet (into the `rte_dynfield_timestamp` dynamic field,
/// flagged by `rte_dynflag_rx_timestamp`; unit: the device's clock, see `rte_eth_read_clock`).
pub const RTE_ETH_RX_OFFLOAD_TIMESTAMP: u64 = 1 << 14;

/// Transmit offload: multi-segment mbufs.
pub const RTE_ETH_TX_OFFLOAD_MULTI_SEGS: u64 = 1 << 15;

unsafe extern "C" {
    /// `rte_errno` of the calling thread.
    pub fn shim_errno() -> c_int;
    /// Sets this thread's `rte_errno` to 0 (before a call that may fail without setting it).
    pub fn shim_errno_clear();
    /// Whether a vdev driver's name starts `name` (1) or not (0), by `rte_devargs_parse`.
    pub fn shim_vdev_driver_known(name: *const c_char) -> c_int;
    /// Tees DPDK's log stream so that [`shim_log_capture_begin`]/[`shim_log_capture_end`] can
    /// keep what is logged meanwhile; output still reaches the original stream. Once, after
    /// `rte_eal_init`. 0 or -1.
    pub fn shim_log_tee_install() -> c_int;
    /// Starts keeping DPDK log text (process-wide: serialise captures).
    pub fn shim_log_capture_begin();
    /// Stops keeping log text, copies up to `cap` bytes of it to `out`, returns how many.
    pub fn shim_log_capture_end(out: *mut c_char, cap: usize) -> usize;
    /// `rte_lcore_id()`: the calling thread's lcore id, [`LCORE_ID_ANY`] if it has none.
    pub fn shim_lcore_id() -> c_uint;
    /// `rte_eth_rx_burst`.
    pub fn shim_rx_burst(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16;
    /// `rte_eth_tx_burst`: the mbufs sent belong to the driver; the rest stay the caller's.
    pub fn shim_tx_burst(port: u16, queue: u16, pkts: *mut *mut rte_mbuf, n: u16) -> u16;
    /// `rte_pktmbuf_alloc`: null when the pool is empty.
    pub fn shim_pktmbuf_alloc(mp: *mut rte_mempool) -> *mut rte_mbuf;
    /// `rte_pktmbuf_alloc_bulk`: 0 and `n` mbufs, or a negative errno and none.
    pub fn shim_pktmbuf_alloc_bulk(mp: *mut rte_mempool, mbufs: *mut *mut rte_mbuf, n: c_uint) -> c_int;
    /// `rte_pktmbuf_free`: the whole chain.
    pub fn shim_pktmbuf_free(m: *mut rte_mbuf);
    /// `rte_pktmbuf_append`: extends the last segment by `len`; null if its tailroom is short.
    pub fn shim_pktmbuf_append(m: *mut rte_mbuf, len: u16) -> *mut c_char;
    /// `rte_pktmbuf_chain`: appends `tail` to `head`'s chain (0, or `-EOVERFLOW`).
    pub fn shim_pktmbuf_chain(head: *mut rte_mbuf, tail: *mut rte_mbuf) -> c_int;
    /// `rte_pktmbuf_tailroom`.
    pub fn shim_pktmbuf_tailroom(m: *const rte_mbuf) -> u16;
}
