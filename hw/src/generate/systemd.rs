//! A systemd unit drop-in for the service running the deployment.
//!
//! # Format
//!
//! `#` comments (what made it, a description, where to install it), then one `[Service]` section:
//!
//! - `CPUAffinity=`: every CPU the layout gives a role (hot ones and telemetry) plus the housekeeping
//!   CPUs, in systemd's space-separated list form (`0-3 8 10-11`). weir pins each role's thread inside
//!   it; every other thread of the process stays on it.
//! - `NUMAPolicy=bind` with `NUMAMask=` the nodes of the hot CPUs, also when they span several nodes:
//!   with more than one node in the mask the kernel allocates from the node nearest to the allocating
//!   thread within the mask, which is what a thread pinned on node 1 wants. `preferred` is not used for
//!   spans because `MPOL_PREFERRED` honours only one node (the first of the mask). A layout without a hot
//!   CPU gets no NUMA policy (a comment says so).
//! - `LimitMEMLOCK=infinity`: the rings and DPDK's memory are locked in RAM.
//! - `Environment=WEIR_LAYOUT=<path>`: the layout file, made absolute (relative to the directory `weir hw
//!   gen` ran in), `%` doubled for systemd's specifiers, quoted when it holds whitespace or quotes.

use std::fmt::Write;
use std::path::Path;

use super::{GenError, Target, deployment, header, housekeeping, one_line};
use crate::{CpuSet, Layout, Machine};

/// The drop-in of `layout` on `machine`; see the [module documentation](self) for the format.
pub fn generate(layout: &Layout, machine: &Machine) -> Result<String, GenError> {
    let mut out = header("#", Target::Systemd, layout);
    let hot = layout.hot_cpus();
    let hk = housekeeping(layout, machine)?;
    let roles: CpuSet = layout.roles().into_iter().map(|(cpu, _)| cpu).collect();
    let affinity = roles.union(&hk);

    let mut nodes = CpuSet::empty();
    for cpu in hot.iter() {
        let info = machine.cpu(cpu).ok_or_else(|| {
            GenError(format!("hot CPU {cpu} does not exist on this machine (CPUs: {})", present(machine)))
        })?;
        nodes.insert(info.node);
    }

    let _ = writeln!(
        out,
        "# Description: CPU and memory placement of weir deployment {} (hot CPUs {}, housekeeping CPUs {hk}).",
        deployment(layout),
        if hot.is_empty() { "none".to_owned() } else { hot.to_string() },
    );
    let _ = writeln!(
        out,
        "# Install: systemctl edit UNIT (or save as /etc/systemd/system/UNIT.service.d/weir-layout.conf and run \
         systemctl daemon-reload)."
    );
    if nodes.is_empty() {
        let _ = writeln!(out, "# NUMA: no hot CPU, so no memory policy.");
    } else {
        let _ = writeln!(
            out,
            "# NUMA: memory only from the hot CPUs' node(s) {nodes}{}.",
            if nodes.len() > 1 { ", the one nearest to the allocating thread first" } else { "" }
        );
    }
    out.push_str("[Service]\n");
    let _ = writeln!(out, "CPUAffinity={}", spaced(&affinity));
    if !nodes.is_empty() {
        out.push_str("NUMAPolicy=bind\n");
        let _ = writeln!(out, "NUMAMask={}", spaced(&nodes));
    }
    out.push_str("LimitMEMLOCK=infinity\n");
    let _ = writeln!(out, "Environment={}", env_assignment("WEIR_LAYOUT", &layout.path));
    Ok(out)
}

/// systemd's space-separated form of a CPU (or node) list: `0-3 8 10-11`.
fn spaced(set: &CpuSet) -> String {
    set.to_string().replace(',', " ")
}

/// The machine's CPUs, for messages.
fn present(machine: &Machine) -> CpuSet {
    machine.cpus.iter().map(|c| c.id).collect()
}

/// `NAME=value` as an `Environment=` value: `%` doubled, the whole assignment double-quoted (with `\` and
/// `"` escaped) when the value holds whitespace, quotes or backslashes.
fn env_assignment(name: &str, path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let value = one_line(&path.display().to_string()).replace('%', "%%");
    if value.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        format!("\"{name}={}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{name}={value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values() {
        assert_eq!(env_assignment("L", Path::new("/etc/weir/a.toml")), "L=/etc/weir/a.toml");
        assert_eq!(env_assignment("L", Path::new("/etc/50%/a.toml")), "L=/etc/50%%/a.toml");
        assert_eq!(env_assignment("L", Path::new("/etc/my \"w\"/a.toml")), r#""L=/etc/my \"w\"/a.toml""#);
        assert!(env_assignment("L", Path::new("a.toml")).starts_with("L=/"));
    }

    #[test]
    fn lists_are_space_separated() {
        assert_eq!(spaced(&CpuSet::new([0, 1, 4, 12, 13])), "0-1 4 12-13");
    }
}
