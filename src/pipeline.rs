//! From a checked layout file to what the runtime starts: which NIC queue each rx thread opens and on which
//! CPU, which ring each CPU publishes, which CPUs run DAG workers, and the machine's topology for the
//! scheduler's steal order.
//!
//! [`Validated`] can only be built by checking a [`Layout`] against a [`Machine`]; everything that starts a
//! thread from a layout takes one, so an unchecked layout cannot start.

use weir_hw::layout::{Layout, Problem, Role, Severity};
use weir_hw::{Machine, Topology};
use weir_schedulers::rt;

use crate::nic::spec::NicSpec;

/// A layout that passed [`weir_hw::layout::check()`] on a machine (warnings allowed), with that machine.
#[derive(Debug, Clone)]
pub struct Validated {
    layout: Layout,
    machine: Machine,
    warnings: Vec<Problem>,
}

impl Validated {
    /// Check `layout` on `machine`: every problem when any is an error, else the validated layout.
    pub fn new(layout: Layout, machine: Machine) -> Result<Validated, Vec<Problem>> {
        let problems = weir_hw::layout::check(&layout, &machine);
        if problems.iter().any(|p| p.severity == Severity::Error) {
            return Err(problems);
        }
        Ok(Validated { layout, machine, warnings: problems })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The machine it was checked on.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// What the check still warns about.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The rx threads: one per `[[core]] role = "rx"`, in file order.
    pub fn rx(&self) -> Result<Vec<RxPlan>, String> {
        let mut plans = Vec::new();
        for core in self.layout.cores.iter().filter(|c| *c.role.get_ref() == Role::Rx) {
            let cpu = *core.cpu.get_ref();
            let nic_name = core.nic.as_ref().map(|n| n.get_ref().clone()).unwrap_or_default();
            let nic =
                self.layout.nic(&nic_name).ok_or_else(|| format!("rx core {cpu}: no [[nic]] named {nic_name:?}"))?;
            let queues = core.queues.as_ref().map_or(vec![0], |q| q.get_ref().clone());
            if queues != [0] {
                return Err(format!(
                    "rx core {cpu} polls queues {queues:?} of {nic_name}: weir opens queue 0 only today (no RSS or \
                     rte_flow steering yet)"
                ));
            }
            let spec_text = match (&nic.source, &nic.pci) {
                (Some(source), _) => source.get_ref().clone(),
                (None, Some(pci)) => format!("dpdk:{}", pci.get_ref()),
                (None, None) => return Err(format!("nic {nic_name}: neither `source` nor `pci`")),
            };
            let spec = NicSpec::parse(&spec_text).map_err(|e| format!("nic {nic_name}: {e}"))?;
            let ring = self
                .layout
                .rings
                .iter()
                .find(|r| r.producer.as_ref().is_some_and(|p| *p.get_ref() == cpu))
                .map(|r| r.name.get_ref().clone());
            plans.push(RxPlan { cpu, nic: nic_name, spec, ring });
        }
        Ok(plans)
    }

    /// The capacity in bytes of the ring named `name`.
    pub fn ring_capacity(&self, name: &str) -> Option<u64> {
        self.layout.rings.iter().find(|r| r.name.get_ref() == name).and_then(|r| r.capacity_bytes())
    }

    /// The DAG worker CPUs, in file order.
    pub fn dag_workers(&self) -> Vec<u32> {
        self.layout.dag.as_ref().map(|d| d.workers.get_ref().iter().map(|w| *w.get_ref()).collect()).unwrap_or_default()
    }

    /// The scheduler's topology of this machine (steal victims ordered by core, package, node).
    pub fn topology(&self) -> Topology {
        self.machine.topology()
    }

    /// A runtime builder with one pinned worker per DAG worker CPU and this machine's topology; `None` when
    /// the layout has no `[dag]`.
    pub fn dag_runtime(&self) -> Option<rt::Builder> {
        let workers = self.dag_workers();
        (!workers.is_empty()).then(|| rt::Runtime::builder().name("dag").workers(workers).topology(self.topology()))
    }
}

/// One rx thread of a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct RxPlan {
    /// The CPU it is pinned to.
    pub cpu: u32,
    /// The `[[nic]]` name.
    pub nic: String,
    /// What to open (`dpdk:PCI` for a PCI port, else the NIC's `source`).
    pub spec: NicSpec,
    /// The ring this CPU produces, if a `[[ring]]` names it as `producer`.
    pub ring: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn two_socket() -> Machine {
        Machine::discover(&Path::new(env!("CARGO_MANIFEST_DIR")).join("hw/tests/fixtures/two-socket")).unwrap()
    }

    fn layout(text: &str) -> Layout {
        Layout::parse(Path::new("t.toml"), text.to_string()).unwrap()
    }

    const BASE: &str = r#"
[runtime]
housekeeping = "0-3"
[[nic]]
name = "port"
pci = "0000:af:00.0"
[[nic]]
name = "replay"
source = "pcap:x.pcap"
[[core]]
cpu = 12
role = "rx"
nic = "port"
[[core]]
cpu = 5
role = "rx"
nic = "replay"
[[ring]]
name = "r"
capacity = "2MiB"
producer = 5
[dag]
workers = [13, 14]
"#;

    #[test]
    fn a_checked_layout_gives_the_threads_to_start() {
        let v = Validated::new(layout(BASE), two_socket()).unwrap();
        let rx = v.rx().unwrap();
        assert_eq!(rx.len(), 2);
        assert_eq!((rx[0].cpu, rx[0].ring.as_deref()), (12, None));
        assert_eq!(rx[0].spec, NicSpec::parse("dpdk:0000:af:00.0").unwrap());
        assert_eq!((rx[1].cpu, rx[1].ring.as_deref()), (5, Some("r")));
        assert_eq!(rx[1].spec, NicSpec::parse("pcap:x.pcap").unwrap());
        assert_eq!(v.ring_capacity("r"), Some(2 << 20));
        assert_eq!(v.dag_workers(), vec![13, 14]);
        assert_eq!(v.topology().node_of(13), Some(1));
        // The rx core on isolated cpu 12 has an mlx5 IRQ: a warning, not a refusal.
        assert!(v.warnings().iter().any(|w| w.check == "irq-on-hot-cpu"));
        assert!(v.dag_runtime().is_some());
    }

    #[test]
    fn a_layout_with_errors_does_not_validate() {
        let problems = Validated::new(layout(&BASE.replace("cpu = 12", "cpu = 31")), two_socket()).unwrap_err();
        assert!(problems.iter().any(|p| p.check == "cpu-exists" && p.message.contains("cpu 31")), "{problems:?}");
    }

    #[test]
    fn queues_weir_cannot_open_yet_are_refused_by_name() {
        let text = BASE.replace("pci = \"0000:af:00.0\"", "pci = \"0000:af:00.0\"\nrx_queues = 2").replace(
            "cpu = 12\nrole = \"rx\"\nnic = \"port\"",
            "cpu = 12\nrole = \"rx\"\nnic = \"port\"\nqueues = [0, 1]",
        );
        let v = Validated::new(layout(&text), two_socket()).unwrap();
        let err = v.rx().unwrap_err();
        assert!(err.contains("queue 0 only"), "{err}");
    }
}
