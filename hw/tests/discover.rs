//! Discovery on the fixture trees, on this machine, and on broken trees.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use weir_hw::machine::HugePages;
use weir_hw::{CpuSet, DiscoverError, Machine};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn set(list: &str) -> CpuSet {
    CpuSet::parse_list(list).unwrap()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("weir-hw-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn live_machine_print() {
    let m = Machine::discover(Path::new("/")).unwrap();
    eprintln!("{m:#?}");
}

#[test]
fn snapshot_of_the_live_machine_discovers_the_same() {
    let out = TempDir::new("snap");
    let n = weir_hw::snapshot(Path::new("/"), &out.0).unwrap();
    assert!(n > 10, "{n}");
    let live = Machine::discover(Path::new("/")).unwrap();
    let copy = Machine::discover(&out.0).unwrap();
    assert_eq!(copy.root, out.0);
    assert_eq!(Machine { root: PathBuf::new(), ..copy }, Machine { root: PathBuf::new(), ..live });
}
