//! `--nic` values: any string parses to a spec or to an error that quotes it; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::nic::spec::NicSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match NicSpec::parse(text) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.spec, text),
    }
});
