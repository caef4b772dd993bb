//! Run queues: the per-worker stealable ring ([`local`]) and the intrusive injector/inbox (`inject`).

pub(crate) mod inject;
pub mod local;
