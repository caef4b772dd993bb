//! Configuration for other tools, generated from one layout: each target is one module with one
//! `generate(&Layout, &Machine) -> Result<String, GenError>`.

use crate::{Layout, Machine};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// DPDK EAL arguments (`-l`/`--lcores`, `-a`, `--socket-mem`).
    Eal,
    /// A systemd unit fragment (`CPUAffinity`, `NUMAPolicy`).
    Systemd,
    /// The kernel command-line partition (`isolcpus`, `nohz_full`, `rcu_nocbs`, `irqaffinity`).
    KernelCmdline,
    /// A shell script setting every IRQ's affinity to the housekeeping CPUs.
    Irq,
}

/// A layout that cannot be turned into this target (names what is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GenError(pub String);

/// Generate `target` from `layout` on `machine`.
pub fn generate(target: Target, layout: &Layout, machine: &Machine) -> Result<String, GenError> {
    let _ = (layout, machine);
    Err(GenError(format!("{target:?}: not implemented yet")))
}
