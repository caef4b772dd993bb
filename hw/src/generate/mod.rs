//! Configuration for other tools, generated from one layout: each target is one module with one
//! `generate(&Layout, &Machine) -> Result<String, GenError>`.
//!
//! | target | module | output |
//! |---|---|---|
//! | `eal` | [`eal`] | DPDK 22.11 EAL arguments, one option (with its value) per line |
//! | `systemd` | [`systemd`] | a `[Service]` drop-in: `CPUAffinity`, `NUMAPolicy`, `LimitMEMLOCK`, `WEIR_LAYOUT` |
//! | `kernel-cmdline` | [`kernel_cmdline`] | `isolcpus nohz_full rcu_nocbs irqaffinity`, and `/proc/cmdline`'s |
//! | `irq` | [`irq`] | a POSIX `sh` script moving IRQs off the hot CPUs |
//!
//! Every output starts with a comment (the kernel command line's and the EAL's are `#` lines the reader
//! strips) saying that `weir hw gen` made it, from which layout file and for which deployment.
//!
//! The CPU partition is the same in every target: the *hot* CPUs are [`Layout::hot_cpus`] (every role but
//! telemetry); the kernel command line isolates, and the IRQ script clears, [`Layout::cpus_to_isolate`]
//! (the hot CPUs and their SMT siblings without a role: the whole core); the *housekeeping* CPUs are
//! [`Layout::housekeeping`] (`runtime.housekeeping`, else the online CPUs neither isolated nor to be
//! isolated: the rule `weir hw check` uses). A layout that leaves no housekeeping CPU, or whose `runtime.housekeeping`
//! names a hot CPU, is a [`GenError`] for every target.
//!
//! Adding a target: write `newtarget.rs` with `pub fn generate(layout: &Layout, machine: &Machine) ->
//! Result<String, GenError>` and add one line to the `targets!` table below (variant, module, name).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::layout::line_col;
use crate::{CpuSet, Layout, Machine};

/// One line per target: `Variant => module, "name-on-the-command-line";`. Generates the modules, the
/// [`Target`] enum, [`Target::ALL`], [`Target::name`] and the dispatch in [`generate`].
macro_rules! targets {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident, $name:literal; )*) => {
        $( pub mod $module; )*

        /// What to generate.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Target {
            $( $(#[$doc])* $variant, )*
        }

        impl Target {
            /// Every target, in the order `weir hw gen` lists them.
            pub const ALL: &'static [Target] = &[$( Target::$variant, )*];

            /// The name `weir hw gen` takes (`eal`, `systemd`, `kernel-cmdline`, `irq`).
            pub fn name(self) -> &'static str {
                match self {
                    $( Target::$variant => $name, )*
                }
            }

            fn generator(self) -> fn(&Layout, &Machine) -> Result<String, GenError> {
                match self {
                    $( Target::$variant => $module::generate, )*
                }
            }
        }
    };
}

targets! {
    /// DPDK EAL arguments (`-l`/`--lcores`, `--main-lcore`, `-a`/`--vdev`, `--socket-mem`, `--file-prefix`).
    Eal => eal, "eal";
    /// A systemd unit drop-in (`CPUAffinity`, `NUMAPolicy`, `LimitMEMLOCK`, `WEIR_LAYOUT`).
    Systemd => systemd, "systemd";
    /// The kernel command-line partition (`isolcpus`, `nohz_full`, `rcu_nocbs`, `irqaffinity`).
    KernelCmdline => kernel_cmdline, "kernel-cmdline";
    /// A shell script setting the affinity of every IRQ on a hot core to the housekeeping CPUs.
    Irq => irq, "irq";
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A target name `weir hw gen` does not know; its message lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown target {0:?} (known: {known})", known = known_targets())]
pub struct UnknownTarget(pub String);

fn known_targets() -> String {
    Target::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
}

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL.iter().copied().find(|t| t.name() == s).ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}

/// A layout that cannot be turned into this target (names what is missing, with `file:line:col` when a
/// value of the file is at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GenError(pub String);

/// Generate `target` from `layout` on `machine`.
pub fn generate(target: Target, layout: &Layout, machine: &Machine) -> Result<String, GenError> {
    (target.generator())(layout, machine).map_err(|e| GenError(format!("{target}: {}", e.0)))
}

// ---- helpers shared by the targets ----

/// The deployment's name for messages (`runtime.name`, or `(unnamed)`).
fn deployment(layout: &Layout) -> String {
    layout.runtime.name.as_ref().map_or_else(|| "(unnamed)".to_owned(), |n| one_line(n.get_ref()))
}

/// Control characters (a newline in a file name) replaced so the text stays on one comment line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The first line(s) of every output: who made it, from what, and not to edit it.
fn header(comment: &str, target: Target, layout: &Layout) -> String {
    format!(
        "{comment} Generated by `weir hw gen {target}` from {} (deployment {}). Do not edit by hand: change the \
         layout and generate again.\n",
        one_line(&layout.path.display().to_string()),
        deployment(layout),
    )
}

/// `path:line:col: ` of a span of the layout file, to start a message about the value there.
fn at(layout: &Layout, span: Range<usize>) -> String {
    let (line, col) = line_col(&layout.source, span.start);
    format!("{}:{line}:{col}: ", layout.path.display())
}

/// The CPUs to isolate ([`Layout::cpus_to_isolate`]: the hot CPUs and their idle SMT siblings) less any
/// sibling `runtime.housekeeping` names: what the kernel command line isolates and IRQs keep off.
fn quiet(layout: &Layout, machine: &Machine, housekeeping: &CpuSet) -> CpuSet {
    layout.cpus_to_isolate(machine).difference(housekeeping)
}

/// The housekeeping CPUs ([`Layout::housekeeping`], the rule the checks use): never empty and never
/// overlapping the hot CPUs.
fn housekeeping(layout: &Layout, machine: &Machine) -> Result<CpuSet, GenError> {
    let hot = layout.hot_cpus();
    match &layout.runtime.housekeeping {
        Some(text) => {
            let here = at(layout, text.span());
            let set = CpuSet::parse_list(text.get_ref())
                .map_err(|e| GenError(format!("{here}runtime.housekeeping {:?}: {e}", text.get_ref())))?;
            if set.is_empty() {
                return Err(GenError(format!(
                    "{here}no housekeeping CPU: runtime.housekeeping is empty; name at least one CPU without a \
                     hot role for the kernel, IRQs and telemetry"
                )));
            }
            let both = set.intersection(&hot);
            if !both.is_empty() {
                return Err(GenError(format!(
                    "{here}runtime.housekeeping {set} includes hot CPU {both}; housekeeping CPUs take IRQs, RCU \
                     callbacks and timer ticks, so take {both} out of it"
                )));
            }
            Ok(set)
        }
        None => {
            let set = layout.housekeeping(machine);
            if set.is_empty() {
                return Err(GenError(format!(
                    "no housekeeping CPU would remain: the hot roles take CPUs {hot}, which is every online CPU \
                     ({}); leave at least one CPU without a hot role (or set runtime.housekeeping)",
                    machine.online
                )));
            }
            Ok(set)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_round_trip() {
        for &t in Target::ALL {
            assert_eq!(t.name().parse::<Target>(), Ok(t));
            assert_eq!(t.to_string(), t.name());
        }
        let err = "sysctl".parse::<Target>().unwrap_err().to_string();
        assert_eq!(err, r#"unknown target "sysctl" (known: eal, systemd, kernel-cmdline, irq)"#);
    }
}
