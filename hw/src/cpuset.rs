//! Sets of CPU numbers in the kernel's list format (`0-3,8,10-11`), as `/sys`, `/proc`, `isolcpus=` and
//! DPDK's `-l` write them.

use alloc::vec::Vec;
use core::fmt;

/// A set of OS CPU numbers, kept sorted and without duplicates.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct CpuSet(Vec<u32>);

/// Why a CPU list did not parse: the offending text's byte offset in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuListError {
    /// Byte offset of the bad item within the parsed string.
    pub offset: usize,
}

impl fmt::Display for CpuListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad CPU list item at byte {} (expected N, N-M or N-M:stride/group)", self.offset)
    }
}

/// The highest CPU number a list may name: above any kernel's `NR_CPUS` (8192 today), low enough that a
/// typo like `0-4294967295` is an error instead of a 16 GiB set.
pub const MAX_CPU_ID: u32 = 65_535;

impl CpuSet {
    /// The empty set.
    pub const fn empty() -> Self {
        CpuSet(Vec::new())
    }

    /// A set from any CPU numbers (sorted and deduplicated here).
    pub fn new(cpus: impl IntoIterator<Item = u32>) -> Self {
        let mut v: Vec<u32> = cpus.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        CpuSet(v)
    }

    /// Parse the kernel's list format: `0-3,8`, `` (empty), and the `N-M:used/group` stride form that
    /// `isolcpus=` accepts. Surrounding whitespace and a trailing newline are ignored. CPU numbers above
    /// [`MAX_CPU_ID`] are an error.
    pub fn parse_list(text: &str) -> Result<Self, CpuListError> {
        let trimmed = text.trim();
        let base = text.len() - text.trim_start().len();
        let mut cpus = Vec::new();
        if trimmed.is_empty() {
            return Ok(CpuSet(cpus));
        }
        let mut offset = base;
        for item in trimmed.split(',') {
            let bad = CpuListError { offset };
            let (range, stride) = match item.split_once(':') {
                Some((range, stride)) => (range, Some(stride)),
                None => (item, None),
            };
            let (first, last) = match range.split_once('-') {
                Some((a, b)) => (a.trim().parse::<u32>().map_err(|_| bad)?, b.trim().parse::<u32>().map_err(|_| bad)?),
                None => {
                    let n = range.trim().parse::<u32>().map_err(|_| bad)?;
                    (n, n)
                }
            };
            if last < first || last > MAX_CPU_ID {
                return Err(bad);
            }
            let (used, group) = match stride {
                Some(s) => {
                    let (u, g) = s.split_once('/').ok_or(bad)?;
                    let u = u.trim().parse::<u32>().map_err(|_| bad)?;
                    let g = g.trim().parse::<u32>().map_err(|_| bad)?;
                    if u == 0 || g == 0 || u > g {
                        return Err(bad);
                    }
                    (u, g)
                }
                None => (1, 1),
            };
            let mut cpu = first;
            while cpu <= last {
                if (cpu - first) % group < used {
                    cpus.push(cpu);
                }
                cpu = match cpu.checked_add(1) {
                    Some(next) => next,
                    None => break,
                };
            }
            offset += item.len() + 1;
        }
        Ok(CpuSet::new(cpus))
    }

    /// Parse the kernel's hex mask format (`/proc/irq/N/smp_affinity`: `ff,00000003`, most significant
    /// 32-bit group first), up to [`MAX_CPU_ID`].
    pub fn parse_mask(text: &str) -> Result<Self, CpuListError> {
        let trimmed = text.trim();
        let mut cpus = Vec::new();
        let groups: Vec<&str> = trimmed.split(',').collect();
        if groups.len() > (MAX_CPU_ID as usize + 1) / 32 {
            return Err(CpuListError { offset: 0 });
        }
        let n = groups.len() as u32;
        for (i, group) in groups.iter().enumerate() {
            let bits = u32::from_str_radix(group, 16).map_err(|_| CpuListError { offset: 0 })?;
            let base = (n - 1 - i as u32) * 32;
            cpus.extend((0..32).filter(|b| bits & (1 << b) != 0).map(|b| base + b));
        }
        Ok(CpuSet::new(cpus))
    }

    /// The CPUs, ascending.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// The CPUs, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    /// Number of CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no CPU is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }

    /// Add one CPU.
    pub fn insert(&mut self, cpu: u32) {
        if let Err(i) = self.0.binary_search(&cpu) {
            self.0.insert(i, cpu);
        }
    }

    /// CPUs in either set.
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        CpuSet::new(self.iter().chain(other.iter()))
    }

    /// CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.iter().filter(|&c| other.contains(c)).collect())
    }

    /// CPUs in `self` but not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.iter().filter(|&c| !other.contains(c)).collect())
    }

    /// True when every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.iter().all(|c| other.contains(c))
    }

    /// The hex mask form (`3`, `ff,00000003`), as `/proc/irq/*/smp_affinity` and `irqbalance` take it.
    pub fn to_mask(&self) -> alloc::string::String {
        use core::fmt::Write;
        let top = self.0.last().copied().unwrap_or(0);
        let groups = top / 32 + 1;
        let mut out = alloc::string::String::new();
        for g in (0..groups).rev() {
            let bits = self.iter().filter(|c| c / 32 == g).fold(0u32, |acc, c| acc | 1 << (c % 32));
            if g == groups - 1 {
                let _ = write!(out, "{bits:x}");
            } else {
                let _ = write!(out, ",{bits:08x}");
            }
        }
        out
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        CpuSet::new(iter)
    }
}

/// The list format, ranges collapsed: `0-3,8`. The empty set prints as nothing.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn list_round_trips() {
        for text in ["", "0", "0-3", "0-3,8,10-11", "1,3,5"] {
            assert_eq!(CpuSet::parse_list(text).unwrap().to_string(), text);
        }
        assert_eq!(CpuSet::parse_list("3,1-2\n").unwrap().as_slice(), &[1, 2, 3]);
        assert_eq!(CpuSet::parse_list("0-9:2/5").unwrap().as_slice(), &[0, 1, 5, 6]);
    }

    #[test]
    fn bad_lists_name_the_item() {
        assert_eq!(CpuSet::parse_list("0-3,x").unwrap_err().offset, 4);
        assert_eq!(CpuSet::parse_list("5-2").unwrap_err().offset, 0);
        assert!(CpuSet::parse_list("0-3:3/2").is_err());
        // A typo must not become a 16 GiB set.
        assert_eq!(CpuSet::parse_list("2,0-4294967295").unwrap_err().offset, 2);
        assert!(CpuSet::parse_list("65535").is_ok() && CpuSet::parse_list("65536").is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(CpuSet::parse_mask("3\n").unwrap().as_slice(), &[0, 1]);
        assert_eq!(CpuSet::parse_mask("1,00000002").unwrap().as_slice(), &[1, 32]);
        assert_eq!(CpuSet::new(vec![1, 32]).to_mask(), "1,00000002");
        assert_eq!(CpuSet::new(vec![0, 1]).to_mask(), "3");
        assert_eq!(CpuSet::empty().to_mask(), "0");
        assert!(CpuSet::parse_mask(&"ffffffff,".repeat(3000)).is_err());
    }

    #[test]
    fn set_algebra() {
        let a = CpuSet::new([0, 1, 2, 3]);
        let b = CpuSet::new([2, 3, 4]);
        assert_eq!(a.intersection(&b).to_string(), "2-3");
        assert_eq!(a.difference(&b).to_string(), "0-1");
        assert_eq!(a.union(&b).to_string(), "0-4");
        assert!(CpuSet::new([2]).is_subset(&a));
    }
}
