//! The kernel command-line partition of the CPUs.
//!
//! # Format
//!
//! Three lines: the `#` header; the parameters to add to the kernel command line (for
//! `GRUB_CMDLINE_LINUX` in `/etc/default/grub`, then `update-grub` and a reboot):
//!
//! ```text
//! isolcpus=managed_irq,domain,HOT nohz_full=HOT rcu_nocbs=HOT irqaffinity=HOUSEKEEPING
//! ```
//!
//! and a `#` line comparing each of those parameters with the running kernel's (`/proc/cmdline`, the
//! last occurrence counting, as the kernel takes it): `isolcpus=4-7 (differs)`, `nohz_full=4-7,12
//! (same)`, `rcu_nocbs (not set)`. The comparison is by meaning: CPU lists as sets, `isolcpus` flags
//! as a set (a bare `isolcpus=LIST` means `domain`).
//!
//! HOT is [`Layout::cpus_to_isolate`]: the hot CPUs ([`Layout::hot_cpus`]) and their online SMT siblings
//! without a role, so that nothing else runs on a hot core (less any sibling `runtime.housekeeping` names).
//! HOUSEKEEPING is [`Layout::housekeeping`]. A layout without a hot CPU, or leaving no housekeeping CPU, is an error.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{GenError, Target, header, housekeeping, quiet};
use crate::{CpuSet, Layout, Machine};

/// The `isolcpus=` flags weir asks for.
const ISOLCPUS_FLAGS: [&str; 2] = ["managed_irq", "domain"];

/// The command line of `layout` on `machine`; see the [module documentation](self) for the format.
pub fn generate(layout: &Layout, machine: &Machine) -> Result<String, GenError> {
    let hot = layout.hot_cpus();
    if hot.is_empty() {
        return Err(GenError("the layout has no hot CPU (no role but telemetry), so nothing to isolate".into()));
    }
    let hk = housekeeping(layout, machine)?;
    let quiet = quiet(layout, machine, &hk);
    let wanted = [
        ("isolcpus", format!("{},{quiet}", ISOLCPUS_FLAGS.join(","))),
        ("nohz_full", quiet.to_string()),
        ("rcu_nocbs", quiet.to_string()),
        ("irqaffinity", hk.to_string()),
    ];
    let mut out = header("#", Target::KernelCmdline, layout);
    let line: Vec<String> = wanted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.push_str(&line.join(" "));
    out.push('\n');
    let now: Vec<String> = wanted
        .iter()
        .map(|(key, value)| match current(&machine.cmdline, key) {
            None => format!("{key} (not set)"),
            Some(cur) if same(key, cur, value) => format!("{key}={cur} (same)"),
            Some(cur) => format!("{key}={cur} (differs)"),
        })
        .collect();
    let _ = writeln!(out, "# now (/proc/cmdline): {}", super::one_line(&now.join(", ")));
    Ok(out)
}

/// The value of the last `key=` on the command line.
fn current<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().filter_map(|w| w.split_once('=')).filter(|(k, _)| *k == key).map(|(_, v)| v).next_back()
}

/// Whether two values of `key` mean the same partition.
fn same(key: &str, a: &str, b: &str) -> bool {
    if key == "isolcpus" {
        return match (isolcpus(a), isolcpus(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        };
    }
    match (CpuSet::parse_list(a), CpuSet::parse_list(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// `isolcpus=` as its flags and CPUs; no flag means `domain`.
fn isolcpus(value: &str) -> Option<(BTreeSet<&str>, CpuSet)> {
    let (flags, cpus): (Vec<&str>, Vec<&str>) =
        value.split(',').partition(|item| !item.starts_with(|c: char| c.is_ascii_digit()));
    let mut flags: BTreeSet<&str> = flags.into_iter().collect();
    if flags.is_empty() {
        flags.insert("domain");
    }
    Some((flags, CpuSet::parse_list(&cpus.join(",")).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_occurrence() {
        let cmdline = "ro isolcpus=1 quiet isolcpus=domain,2-3 nohz_full=";
        assert_eq!(current(cmdline, "isolcpus"), Some("domain,2-3"));
        assert_eq!(current(cmdline, "nohz_full"), Some(""));
        assert_eq!(current(cmdline, "rcu_nocbs"), None);
    }

    #[test]
    fn compares_by_meaning() {
        assert!(same("isolcpus", "2-3", "domain,3,2"));
        assert!(same("isolcpus", "domain,managed_irq,4-7", "managed_irq,domain,4,5,6,7"));
        assert!(!same("isolcpus", "4-7", "managed_irq,domain,4-7"));
        assert!(!same("isolcpus", "4-7", "domain,4-8"));
        assert!(same("nohz_full", "4,5", "4-5"));
        assert!(!same("nohz_full", "x", "x"));
    }
}
