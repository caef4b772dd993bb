//! PCI addresses as the kernel and DPDK write them: `DDDD:BB:DD.F` (domain, bus, device, function in hex), or
//! `BB:DD.F` with domain 0 implied (what `-a` and `lspci` accept).

use alloc::format;
use alloc::string::String;

/// True for `0000:3b:00.0` and `3b:00.0`.
pub fn is_pci_address(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut parts = name.split(':');
    let (bus, devfn) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(dom), Some(bus), Some(devfn), None) if hex(dom, 4) => (bus, devfn),
        (Some(bus), Some(devfn), None, None) => (bus, devfn),
        _ => return false,
    };
    matches!(devfn.split_once('.'), Some((d, f)) if hex(d, 2) && hex(f, 1)) && hex(bus, 2)
}

/// True for the full form only (`0000:3b:00.0`), as `/sys/bus/pci/devices` names devices.
pub fn is_full_pci_address(name: &str) -> bool {
    name.len() == 12 && is_pci_address(name)
}

/// The full form of a PCI address (`3b:00.0` → `0000:3b:00.0`); anything else unchanged.
pub fn full_pci_address(name: &str) -> String {
    if is_pci_address(name) && name.len() == 7 { format!("0000:{name}") } else { String::from(name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        for yes in ["0000:3b:00.0", "3b:00.0", "abcd:ff:1f.7"] {
            assert!(is_pci_address(yes), "{yes}");
        }
        for no in ["net_pcap0", "3b:00", "0000:3b:00.10", "x000:3b:00.0", "eth0", "", "virtio2", "pci0000:00"] {
            assert!(!is_pci_address(no), "{no}");
        }
        assert!(is_full_pci_address("0000:af:00.1"));
        assert!(!is_full_pci_address("af:00.1"));
        assert_eq!(full_pci_address("3b:00.0"), "0000:3b:00.0");
        assert_eq!(full_pci_address("0000:af:00.1"), "0000:af:00.1");
        assert_eq!(full_pci_address("net_pcap0"), "net_pcap0");
    }
}
