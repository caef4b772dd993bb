//! A POSIX `sh` script moving IRQs off the hot CPUs and their idle SMT siblings
//! ([`Layout::cpus_to_isolate`](crate::Layout::cpus_to_isolate)).
//!
//! # Format
//!
//! `#!/bin/sh`, the `#` header, `set -eu`, then:
//!
//! - the housekeeping CPUs, in mask form, into `/proc/irq/default_smp_affinity` (where IRQs registered
//!   later start; a failure here, such as not being root, stops the script);
//! - for every IRQ of [`Machine::irqs`] whose `smp_affinity_list` touches a hot core (a CPU of
//!   `cpus_to_isolate` less housekeeping), a comment with its
//!   name and the housekeeping list into `/proc/irq/N/smp_affinity_list`, tolerating a refusal (the
//!   kernel refuses managed IRQs, and an IRQ may be gone): `|| echo "IRQ N: kernel refused (managed
//!   IRQ?)" >&2`;
//! - the irqbalance setting that keeps them there (`IRQBALANCE_BANNED_CPULIST=` those CPUs), echoed.
//!
//! The IRQ list is the machine's at generation time: NIC queue IRQs appear when a driver starts, so
//! generate and run it again after that. `/proc` can be replaced by a copy with the `WEIR_PROC`
//! environment variable (for tests).

use std::fmt::Write;

use super::{GenError, Target, header, housekeeping, one_line, quiet};
use crate::{Layout, Machine};

/// The script for `layout` on `machine`; see the [module documentation](self) for the format.
pub fn generate(layout: &Layout, machine: &Machine) -> Result<String, GenError> {
    let hk = housekeeping(layout, machine)?;
    // The hot CPUs and their idle SMT siblings: an IRQ on the sibling still interrupts the hot core.
    let hot = quiet(layout, machine, &hk);
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&header("#", Target::Irq, layout));
    let hot_text = if hot.is_empty() { "none".to_owned() } else { hot.to_string() };
    let _ = writeln!(out, "# Moves IRQs off the hot cores (CPUs {hot_text}) onto the housekeeping CPUs ({hk}). Run as root.");
    out.push_str("set -eu\n");
    out.push_str("proc=${WEIR_PROC:-/proc}\n");
    let _ = writeln!(out, "# IRQs registered from now on start on the housekeeping CPUs ({hk}, as a mask).");
    let _ = writeln!(out, "echo {} > \"$proc/irq/default_smp_affinity\"", hk.to_mask());

    let mut left = 0;
    for irq in &machine.irqs {
        let touched = irq.affinity.intersection(&hot);
        if touched.is_empty() {
            left += 1;
            continue;
        }
        let n = irq.number;
        let _ = writeln!(out, "# IRQ {n}: {} (now on CPUs {}, hot: {touched})", one_line(&irq.name), irq.affinity);
        let _ = writeln!(
            out,
            "echo {hk} > \"$proc/irq/{n}/smp_affinity_list\" || echo \"IRQ {n}: kernel refused (managed IRQ?)\" >&2"
        );
    }
    if left > 0 {
        let _ = writeln!(out, "# {left} other IRQ(s) already keep off the hot cores.");
    }
    if !hot.is_empty() {
        let _ = writeln!(
            out,
            "# irqbalance would move IRQs back onto the hot cores: ban them (irqbalance >= 1.8 reads this from \
             /etc/default/irqbalance or /etc/sysconfig/irqbalance), then restart it."
        );
        let _ = writeln!(out, "echo \"irqbalance: use IRQBALANCE_BANNED_CPULIST={hot}\"");
    }
    Ok(out)
}
