//! `propose` and `report` on the fixture machines: proposals pass their own check and follow the rules
//! (NIC-local rx cores, housekeeping on the first core, SMT siblings idle, isolated CPUs first); the tree
//! puts every PU, NIC and role where lstopo would.

use std::path::{Path, PathBuf};

use weir_hw::layout::{Layout, Severity, check};
use weir_hw::machine::NicInfo;
use weir_hw::propose::{Request, propose};
use weir_hw::{Machine, report};

fn fixture(name: &str) -> Machine {
    Machine::discover(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn parse(text: &str) -> Layout {
    Layout::parse(&PathBuf::from("proposed.toml"), text.to_string()).unwrap()
}

fn request(nics: &[&str], dag_workers: usize) -> Request {
    Request { nics: nics.iter().map(|s| s.to_string()).collect(), dag_workers, name: Some("t".into()) }
}

#[test]
fn two_socket_proposal_is_nic_local_isolated_and_clean() {
    let machine = fixture("two-socket");
    let proposal = propose(&machine, &request(&["ens1f0", "0000:af:00.0"], 6)).unwrap();
    let layout = parse(&proposal.toml);
    let rx: Vec<(u32, String)> =
        layout.cores.iter().map(|c| (*c.cpu.get_ref(), c.nic.as_ref().unwrap().get_ref().clone())).collect();
    // ens1f0 is on node 0, the vfio port on node 1: an isolated CPU of each node, a whole isolated core
    // first (15: its sibling 31 is offline), else the first.
    assert_eq!(rx, vec![(4, "ens1f0".to_string()), (15, "nic1".to_string())]);
    assert_eq!(layout.hot_cpus().to_string(), "4-7,12-15");
    assert_eq!(layout.runtime.housekeeping.as_ref().unwrap().get_ref(), "0,16");
    assert_eq!(*layout.telemetry.as_ref().unwrap().cpu.get_ref(), 0);
    // No two hot CPUs share a core.
    for a in layout.hot_cpus().iter() {
        for b in layout.hot_cpus().iter() {
            assert!(a == b || !machine.cpu(a).unwrap().smt_siblings.contains(b), "{a} and {b} are siblings");
        }
    }
    // Every hot CPU is isolated, so the proposal requires isolation, and its check has no error.
    assert!(proposal.toml.contains("isolation = \"require\""), "{}", proposal.toml);
    let problems = check(&layout, &machine);
    assert!(problems.iter().all(|p| p.severity == Severity::Warning), "{problems:#?}");
    assert_eq!(problems, proposal.warnings);
    // The warnings left are the fixture's real mistakes: an mlx5 IRQ on isolated cpu 12, and isolcpus
    // leaving out the hot CPUs' siblings 20-23 and 28-30 (15's sibling 31 is offline).
    let checks: Vec<&str> = problems.iter().map(|p| p.check).collect();
    assert_eq!(checks.iter().filter(|c| **c == "irq-on-hot-cpu").count(), 1, "{problems:#?}");
    let siblings: Vec<&str> =
        problems.iter().filter(|p| p.check == "sibling-quiet").map(|p| p.message.as_str()).collect();
    assert_eq!(siblings.len(), 7, "{problems:#?}");
    assert_eq!(problems.len(), 8, "{problems:#?}");
    assert!(
        siblings[0].starts_with("cpu 4 (role=rx) shares its core with cpu 20, which is not isolated"),
        "{siblings:?}"
    );
}

#[test]
fn whole_isolated_cores_come_first() {
    // Isolate cpu 13's sibling 29 too: core 13 is then isolated whole and takes node 1's rx before 12.
    let mut machine = fixture("two-socket");
    machine.isolated.insert(29);
    let proposal = propose(&machine, &request(&["0000:af:00.0"], 0)).unwrap();
    let layout = parse(&proposal.toml);
    assert_eq!(*layout.cores[0].cpu.get_ref(), 13, "{}", proposal.toml);
    assert!(proposal.warnings.iter().all(|p| !p.message.starts_with("cpu 13 ")), "{:#?}", proposal.warnings);
}

#[test]
fn without_isolated_cpus_the_proposal_warns_instead_of_requiring() {
    let machine = fixture("vm-2cpu");
    let proposal = propose(&machine, &request(&["eth0"], 0)).unwrap();
    assert!(proposal.toml.contains("isolation = \"warn\""), "{}", proposal.toml);
    let layout = parse(&proposal.toml);
    assert_eq!(layout.hot_cpus().to_string(), "1");
    assert!(proposal.warnings.iter().any(|p| p.check == "isolation"));
    assert!(check(&layout, &machine).iter().all(|p| p.severity == Severity::Warning));
}

#[test]
fn names_are_written_as_toml_strings() {
    let machine = fixture("vm-2cpu");
    let mut req = request(&["eth0"], 0);
    req.name = Some("fh \"a\" \\ b".into());
    let proposal = propose(&machine, &req).unwrap();
    assert_eq!(parse(&proposal.toml).runtime.name.unwrap().get_ref(), "fh \"a\" \\ b");
}

#[test]
fn what_does_not_fit_is_an_error_naming_it() {
    let machine = fixture("two-socket");
    let err = propose(&machine, &request(&["eth9"], 0)).unwrap_err();
    assert!(err.contains("eth9") && err.contains("0000:3b:00.0"), "{err}");
    // 16 usable cores (cpu31 offline, its sibling 15 is alone), one for housekeeping, one for rx.
    let err = propose(&machine, &request(&["ens1f0"], 15)).unwrap_err();
    assert!(err.contains("--dag-workers 15") && err.contains("14 free core"), "{err}");
    assert!(propose(&machine, &request(&["ens1f0"], 14)).is_ok());
    // Node 1 has 8 cores: a ninth NIC there finds no free core for its rx thread.
    let mut crowded = machine.clone();
    let port = crowded.nics.iter().find(|n| n.pci.as_deref() == Some("0000:af:00.0")).unwrap().clone();
    let many: Vec<String> = (1..=9).map(|f| format!("0000:d8:{f:02x}.0")).collect();
    crowded.nics.extend(many.iter().map(|a| NicInfo { pci: Some(a.clone()), ..port.clone() }));
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = propose(&crowded, &request(&many, 0)).unwrap_err();
    assert!(err.contains("node 1") && err.contains("no free core"), "{err}");
    let err = propose(&machine, &request(&["ens1f0", "0000:3b:00.0"], 0)).unwrap_err();
    assert!(err.contains("twice"), "{err}");
    let err = propose(&fixture("vm-2cpu"), &request(&["eth0"], 1)).unwrap_err();
    assert!(err.contains("only 0 free core"), "{err}");
}

#[test]
fn the_tree_places_pus_nics_and_roles() {
    let machine = fixture("two-socket");
    let layout_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/layouts/two-socket.toml");
    let layout = Layout::load(&layout_path).unwrap().unwrap();
    let text = report::text(&machine, Some(&layout));
    let lines: Vec<&str> = text.lines().collect();
    let at =
        |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}:\n{text}"));
    assert!(lines[0].starts_with("Machine (32 PUs, 31 online, 16 cores online, 2 packages, 2 NUMA nodes)"), "{text}");
    // Package 1 holds node 1, its L3, core 4 with PUs 12 (isolated, rx) and 28; the vfio port hangs off node 1.
    let (p1, n1, pu12) = (at("Package P#1"), at("NUMANode P#1"), at("PU P#12 "));
    assert!(p1 < n1 && n1 < pu12, "{text}");
    assert!(lines[pu12].contains("(isolated, nohz_full)") && lines[pu12].contains("<- rx feedA q0"), "{text}");
    assert!(lines[pu12 + 1].trim() == "PU P#28", "{text}");
    assert!(at("PCI 0000:af:00.0") > n1 && at("PCI 0000:3b:00.0") < p1, "{text}");
    assert!(lines[at("PU P#13 ")].contains("normalize; writes ring iex.deepplus.mbo"), "{text}");
    assert!(lines[at("PU P#1 ")].contains("telemetry"), "{text}");
    assert!(lines[at("PU P#4 ")].contains("dag-worker"), "{text}");
    assert!(text.contains("Offline: PU P#31 (NUMANode P#1)"), "{text}");
    assert!(
        text.contains("IRQs that may run on hot CPUs 4-7,12-15: 1\n  154 (mlx5_comp3@pci:0000:af:00.1) -> 12"),
        "{text}"
    );
    // Each PU once, each NIC once.
    for cpu in 0..31 {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.trim_start().starts_with(&format!("PU P#{cpu} ")) || l.trim() == format!("PU P#{cpu}"))
                .count(),
            1,
            "PU {cpu}:\n{text}"
        );
    }
    assert_eq!(text.matches("PCI 0000:af:00.1").count(), 1, "{text}");

    let json = report::json(&machine, Some(&layout));
    assert_eq!(json["cpus"].as_array().unwrap().len(), 32);
    assert_eq!(json["cpus"][12]["roles"][0], "rx feedA q0");
    assert_eq!(json["nodes"][1]["distances"], serde_json::json!([21, 10]));
    assert_eq!(json["nics"].as_array().unwrap().len(), 3);
}
