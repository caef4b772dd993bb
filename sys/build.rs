//! Builds `dpdk-sys`: finds DPDK with pkg-config, generates narrow bindings with bindgen, compiles
//! the C shim, and links DPDK shared (default) or a curated static set (feature `static`).
//!
//! The cflags come from `pkg-config --cflags libdpdk` verbatim: Debian's carry
//! `-include rte_config.h` and `-march=corei7`, which the `pkg-config` crate does not expose and
//! which both clang (bindgen) and the C compiler must see.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_VERSION: &str = "22.11";
const INSTALL_HINT: &str = "apt-get install libdpdk-dev pkg-config libclang-dev";

/// Functions bindgen emits. Keep it narrow: a wide `rte_.*` list does not compile (packed types
/// that contain aligned ones) and takes minutes.
const FUNCTIONS: &[&str] = &[
    // EAL and threads
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_strerror",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_socket_id",
    // virtual devices
    "rte_vdev_init",
    "rte_vdev_uninit",
    // ethdev control plane
    "rte_eth_dev_count_avail",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_info_get",
    "rte_eth_dev_configure",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_dev_socket_id",
    "rte_eth_promiscuous_enable",
    "rte_eth_allmulticast_enable",
    "rte_eth_dev_set_mc_addr_list",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_eth_link_get_nowait",
    "rte_eth_macaddr_get",
    "rte_eth_read_clock",
    // mbufs and pools
    "rte_pktmbuf_pool_create",
    "rte_mempool_free",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_pktmbuf_free_bulk",
    "rte_mbuf_dyn_rx_timestamp_register",
    "rte_mbuf_dynfield_lookup",
    "rte_mbuf_dynflag_lookup",
];

/// Types bindgen emits (their members come along).
const TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_mempool",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_stats",
    "rte_eth_link",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_ether_addr",
];

/// Constants bindgen emits (plain `#define N` numbers and strings; `RTE_BIT64(n)` flags are not:
/// those are restated in `src/lib.rs` and checked by `_Static_assert`s in `shim.c`).
const VARS: &[&str] = &[
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "RTE_MEMPOOL_NAMESIZE",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_MBUF_DEFAULT_DATAROOM",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MBUF_DYNFIELD_TIMESTAMP_NAME",
    "RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME",
];

/// Drivers linked whole (`+whole-archive`) in a static build: they register themselves from
/// constructors the linker would otherwise drop.
const STATIC_DRIVERS: &[&str] = &[
    "rte_bus_vdev",
    "rte_mempool_ring",
    "rte_net_pcap",
    "rte_net_null",
    "rte_net_ring",
    "rte_net_af_packet",
    "rte_net_tap",
    "rte_net_memif",
];

/// Libraries those drivers and weir need, in link order.
const STATIC_LIBS: &[&str] = &[
    "rte_gso",
    "rte_ethdev",
    "rte_meter",
    "rte_net",
    "rte_mbuf",
    "rte_mempool",
    "rte_ring",
    "rte_rcu",
    "rte_hash",
    "rte_eal",
    "rte_telemetry",
    "rte_kvargs",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    // Without `bindings` the crate is empty (see Cargo.toml): nothing to find, generate or link.
    if env::var_os("CARGO_FEATURE_BINDINGS").is_none() {
        return;
    }
    let is_static = env::var_os("CARGO_FEATURE_STATIC").is_some();

    // 1. Is DPDK there? Links are emitted by hand (step 5), after the shim, so that the shim's
    //    references resolve against libraries that come later on the link line.
    let lib = match pkg_config::Config::new().atleast_version(MIN_VERSION).cargo_metadata(false).probe("libdpdk") {
        Ok(lib) => lib,
        Err(e) => panic!(
            "\n\nfeature `dpdk` needs DPDK >= {MIN_VERSION} found through pkg-config (libdpdk.pc), \
             and libclang for bindgen.\nOn Debian/Ubuntu: {INSTALL_HINT}\n\npkg-config said: {e}\n\n"
        ),
    };

    // 2. The cflags, verbatim, plus the experimental-API switch.
    let mut cflags = pkg_config_cflags();
    cflags.push("-DALLOW_EXPERIMENTAL_API".into());

    // 3. Bindings.
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .rust_edition(bindgen::RustEdition::Edition2024)
        .layout_tests(false)
        .generate_comments(false)
        .derive_default(true)
        .derive_debug(true)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = builder
        .generate()
        .unwrap_or_else(|e| panic!("bindgen over DPDK's headers failed: {e}\n(libclang missing? {INSTALL_HINT})"));
    bindings.write_to_file(out.join("bindings.rs")).expect("write bindings.rs");

    // 4. The shim.
    let mut cc = cc::Build::new();
    cc.file("shim.c").opt_level(3).flag("-Wno-deprecated-declarations");
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("weir_dpdk_shim");

    // 5. Link.
    if is_static {
        let libdir = pkg_config::get_variable("libdpdk", "libdir").expect("pkg-config libdpdk libdir");
        println!("cargo:rustc-link-search=native={libdir}");
        for l in STATIC_DRIVERS {
            println!("cargo:rustc-link-lib=static:+whole-archive={l}");
        }
        for l in STATIC_LIBS {
            println!("cargo:rustc-link-lib=static={l}");
        }
        for l in ["pcap", "numa", "bsd"] {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
    } else {
        for p in &lib.link_paths {
            println!("cargo:rustc-link-search=native={}", p.display());
        }
        // `rte_vdev_init` lives in a driver library that `--libs libdpdk` does not list.
        println!("cargo:rustc-link-lib=rte_bus_vdev");
        for l in &lib.libs {
            println!("cargo:rustc-link-lib={l}");
        }
    }
}

/// `pkg-config --cflags libdpdk`, split on whitespace (Debian's paths have no spaces).
fn pkg_config_cflags() -> Vec<String> {
    let pc = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let out = Command::new(&pc)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("running `{pc} --cflags libdpdk`: {e}\n{INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "`{pc} --cflags libdpdk` failed: {}\n{INSTALL_HINT}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cflags are UTF-8").split_whitespace().map(str::to_owned).collect()
}
