//! CPU topology as values: which core, package and NUMA node each logical CPU belongs to.

use alloc::vec::Vec;

/// One logical CPU (a hardware thread, "PU" in hwloc terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpu {
    /// The OS CPU number (what `sched_setaffinity` and `/sys/devices/system/cpu/cpuN` use).
    pub id: u32,
    /// Physical core id within its package; SMT siblings share it.
    pub core: u32,
    /// Package (socket) id.
    pub package: u32,
    /// NUMA node id.
    pub node: u32,
}

/// The logical CPUs of a machine (or the part of it a process may use), sorted by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    cpus: Vec<Cpu>,
}

impl Topology {
    /// A topology from its CPUs; sorted by id, later duplicates of an id dropped.
    pub fn new(mut cpus: Vec<Cpu>) -> Self {
        cpus.sort_by_key(|cpu| cpu.id);
        cpus.dedup_by_key(|cpu| cpu.id);
        Topology { cpus }
    }

    /// One package, one NUMA node, one core per CPU: what to assume when nothing better is known.
    pub fn flat(cpu_ids: impl IntoIterator<Item = u32>) -> Self {
        Self::new(cpu_ids.into_iter().map(|id| Cpu { id, core: id, package: 0, node: 0 }).collect())
    }

    /// All CPUs, sorted by id.
    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus
    }

    /// The CPU with this OS id.
    pub fn cpu(&self, id: u32) -> Option<&Cpu> {
        self.cpus.binary_search_by_key(&id, |cpu| cpu.id).ok().map(|i| &self.cpus[i])
    }

    /// The NUMA node of a CPU.
    pub fn node_of(&self, id: u32) -> Option<u32> {
        self.cpu(id).map(|cpu| cpu.node)
    }

    /// Distinct NUMA node ids, ascending.
    pub fn nodes(&self) -> Vec<u32> {
        let mut nodes: Vec<u32> = self.cpus.iter().map(|cpu| cpu.node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// True when the two CPUs are SMT siblings (same package and core, different ids).
    pub fn are_siblings(&self, a: u32, b: u32) -> bool {
        match (self.cpu(a), self.cpu(b)) {
            (Some(x), Some(y)) => x.id != y.id && x.package == y.package && x.core == y.core,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn lookups() {
        let topo = Topology::new(vec![
            Cpu { id: 3, core: 1, package: 0, node: 1 },
            Cpu { id: 0, core: 0, package: 0, node: 0 },
            Cpu { id: 2, core: 0, package: 0, node: 0 },
            Cpu { id: 2, core: 9, package: 9, node: 9 },
        ]);
        assert_eq!(topo.cpus().iter().map(|c| c.id).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(topo.node_of(3), Some(1));
        assert_eq!(topo.node_of(1), None);
        assert_eq!(topo.nodes(), vec![0, 1]);
        assert!(topo.are_siblings(0, 2));
        assert!(!topo.are_siblings(0, 3));
        assert!(!topo.are_siblings(0, 0));
        assert_eq!(Topology::flat([1, 0]).node_of(1), Some(0));
    }
}
