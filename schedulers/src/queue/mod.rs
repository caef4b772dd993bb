//! Run queues: the per-worker stealable ring ([`local`]) and the intrusive injector/inbox (`inject`); the
//! single-writer broadcast ring under `weir::bus` ([`broadcast`]).

pub mod broadcast;
pub(crate) mod inject;
pub mod local;
