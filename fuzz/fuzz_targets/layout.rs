//! Layout files (`weir hw check`, `weir run --layout`): any bytes give a layout or a list of problems, never a
//! panic. A layout that parses is checked against the two fixture machines (two-socket and the 2-vCPU VM) and
//! every generator runs on it: each gives text or an error. CPU lists and masks (the same parser reads /sys
//! and `runtime.housekeeping`) round-trip through their printed form.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weir_hw::generate::{Target, generate};
use weir_hw::layout::{Layout, check};
use weir_hw::{CpuSet, Machine};

fn machines() -> &'static [Machine] {
    static MACHINES: OnceLock<Vec<Machine>> = OnceLock::new();
    MACHINES.get_or_init(|| {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw/tests/fixtures");
        ["two-socket", "vm-2cpu"].iter().map(|name| Machine::discover(&fixtures.join(name)).unwrap()).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(set) = CpuSet::parse_list(&text) {
        assert_eq!(CpuSet::parse_list(&set.to_string()).unwrap(), set);
        assert_eq!(CpuSet::parse_mask(&set.to_mask()).unwrap(), set);
    }
    let _ = CpuSet::parse_mask(&text);
    match Layout::parse(Path::new("fuzz.toml"), text) {
        Ok(layout) => {
            for machine in machines() {
                let problems = check(&layout, machine);
                for p in &problems {
                    assert!(!p.fix.is_empty(), "{p}");
                }
                for target in Target::ALL {
                    let _ = generate(*target, &layout, machine);
                }
            }
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
});
