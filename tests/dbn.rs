//! DBN output on the real captures: `weir replay --out` files read back by the `dbn` crate's own
//! decoder (plain and zstd), record for record equal to what the normalizer made in process,
//! with the header a DBN tool needs, trade counts equal to the decoded trade messages, and books
//! that never cross outside a transaction.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use dbn::decode::{DbnMetadata, DecodeRecordRef, DynDecoder};
use dbn::{Mbp1Msg, RecordRefEnum, UNDEF_PRICE, VersionUpgradePolicy, rtype};
use weir_feeds::normalize::{Normalizer, NormalizerConfig, rtype_name};

mod common;

/// Every real capture in the repository, with the dataset it is and the book errors expected.
/// OMI's DEEP+ sample is one packet per message type, cut from a day: its execute, modify and
/// delete name orders whose adds are not in it (and the one add it has comes after its delete),
/// so 5 operations find no order. Everything else must apply cleanly.
const CAPTURES: &[(&str, &str, u64)] = &[
    ("Sai271828-iex-parser/test.pcap.gz", "IEXG.DEEP", 0),
    ("lvfrazao-IEXTools/example1.pcap", "IEXG.TOPS", 0),
    ("timpalpant-go-iex/TOPS16.pcapng.gz", "IEXG.TOPS", 0),
    ("omi-data-packets/DeepPlus.IexTp.1.0.2/all_message_types.pcap", "IEXG.DEEPPLUS", 5),
    ("omi-data-packets/Tops.IexTp.v1.5/QuoteUpdateMessage.pcap", "IEXG.TOPS", 0),
];

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir")).args(args).output().unwrap()
}

/// The records the library makes for a capture, in process.
fn in_process(capture: &Path) -> Vec<u8> {
    let mut n = Normalizer::new(NormalizerConfig::default(), Vec::new());
    weir::replay::replay(capture, None, &mut n, &mut |_| {}).unwrap();
    n.into_sink()
}

/// Decodes a DBN file: its metadata and every record's bytes.
fn read_back(path: &Path) -> (dbn::Metadata, Vec<Vec<u8>>) {
    let mut d = DynDecoder::from_file(path, VersionUpgradePolicy::AsIs).unwrap();
    let meta = d.metadata().clone();
    let mut recs = Vec::new();
    while let Some(r) = d.decode_record_ref().unwrap() {
        recs.push(r.as_ref().to_vec());
    }
    (meta, recs)
}

fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = usize::from(bytes[at]) * 4;
        out.push(bytes[at..at + len].to_vec());
        at += len;
    }
    out
}

#[test]
fn dbn_files_round_trip_through_the_dbn_crate() {
    for &(rel, dataset, book_errors) in CAPTURES {
        let capture = common::data(rel);
        let expected = split(&in_process(&capture));
        assert!(!expected.is_empty(), "{rel}: no records");
        for ext in ["dbn", "dbn.zst"] {
            let out = common::scratch("dbn").join(format!("roundtrip.{ext}"));
            let stats = out.with_extension("json");
            let run = weir(&[
                "replay",
                capture.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--stats-json",
                stats.to_str().unwrap(),
                "-q",
            ]);
            assert!(run.status.success(), "{rel}: {}", String::from_utf8_lossy(&run.stderr));
            let (meta, recs) = read_back(&out);
            assert_eq!(meta.version, 3, "{rel}");
            assert_eq!(meta.dataset, dataset, "{rel}");
            assert_eq!(meta.schema, None, "{rel}: records of several schemas");
            assert_eq!(meta.stype_out, dbn::SType::InstrumentId);
            assert_eq!(recs.len(), expected.len(), "{rel} .{ext}: record count");
            assert!(recs == expected, "{rel} .{ext}: records differ from the in-process ones");

            // The header maps every symbol to the instrument id its records carry.
            let mapping: BTreeMap<u32, String> =
                meta.mappings.iter().map(|m| (m.intervals[0].symbol.parse().unwrap(), m.raw_symbol.clone())).collect();
            let mut seen = 0;
            let mut d = DynDecoder::from_file(&out, VersionUpgradePolicy::AsIs).unwrap();
            while let Some(r) = d.decode_record_ref().unwrap() {
                if let Some(sm) = r.get::<dbn::SymbolMappingMsg>() {
                    assert_eq!(mapping[&sm.hd.instrument_id], sm.stype_out_symbol().unwrap(), "{rel}");
                    seen += 1;
                }
            }
            assert_eq!(seen, mapping.len(), "{rel}: one SymbolMapping record per symbol");

            // --stats-json counts what is in the file.
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
            let mut by_type = BTreeMap::<String, u64>::new();
            for r in &recs {
                *by_type.entry(rtype_name(r[1]).unwrap().to_owned()).or_default() += 1;
            }
            let reported: BTreeMap<String, u64> = serde_json::from_value(v["dbn_records"].clone()).unwrap();
            assert_eq!(reported, by_type, "{rel}");

            // Every trade message is one trade record: TOPS/DEEP `T`, DEEP+ `L` and `T`.
            let decoded_trades = ["T", "L"].iter().filter_map(|t| v["messages_by_type"][t].as_u64()).sum::<u64>();
            assert_eq!(by_type.get("trades").copied().unwrap_or(0), decoded_trades, "{rel}");

            // No book crossed outside a transaction; no book operation refused but those explained.
            assert_eq!(v["books"]["crossed_books"], 0, "{rel}");
            assert_eq!(v["books"]["book_errors"], book_errors, "{rel}");
            assert!(!std::path::PathBuf::from(format!("{}.partial", out.display())).exists());
        }
    }
}

/// Independently of the counters: every MBP-1 record (a DEEP BBO published at a transaction
/// close, or a TOPS quote) has bid < ask when both sides are there.
#[test]
fn published_bbos_never_cross() {
    let mut checked = 0;
    for &(rel, _, _) in CAPTURES {
        for rec in split(&in_process(&common::data(rel))) {
            if rec[1] != rtype::MBP_1 {
                continue;
            }
            let mut d = dbn::decode::dbn::RecordDecoder::new(&rec[..]);
            let r = d.decode_ref().unwrap().unwrap();
            let RecordRefEnum::Mbp1(m) = r.as_enum().unwrap() else { panic!() };
            let m: &Mbp1Msg = m;
            let l = m.levels[0];
            if l.bid_px != UNDEF_PRICE && l.ask_px != UNDEF_PRICE {
                assert!(l.bid_px < l.ask_px, "{rel}: crossed {m:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1_000, "only {checked} two-sided BBOs checked");
}

#[test]
fn prices_are_exact_nanodollars() {
    // The DEEP sample's first price level: IEX 252000 (25.20) is DBN 25_200_000_000.
    let recs = split(&in_process(&common::data("Sai271828-iex-parser/test.pcap.gz")));
    let first_mbo = recs.iter().find(|r| r[1] == rtype::MBO).unwrap();
    let mut d = dbn::decode::dbn::RecordDecoder::new(&first_mbo[..]);
    let r = d.decode_ref().unwrap().unwrap();
    let m = r.get::<dbn::MboMsg>().unwrap();
    assert_eq!((m.price, m.size, m.side as u8, m.action as u8), (25_200_000_000, 2982, b'B', b'A'));
    assert!(m.flags.is_mbp() && m.flags.is_last());
    assert_eq!(m.hd.publisher_id, 0xF001);
}

#[test]
fn unwritable_output_is_an_error_and_bad_book_arguments_exit_2() {
    let capture = common::data("lvfrazao-IEXTools/example1.pcap");
    let out = weir(&["replay", capture.to_str().unwrap(), "--out", "/nonexistent/dir/x.dbn", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/x.dbn"));
    for (args, needle) in [
        (vec!["--symbol", "NOSUCH"], "does not appear"),
        (vec!["--symbol", "TOOLONGSYMBOL"], "1 to 8 characters"),
        (vec!["--symbol", "AAPL", "--at", "noon"], "RFC 3339"),
        (vec!["--symbol", "AAL", "--at", "2099-01-01T00:00:00Z"], "no transaction close at or after"),
        (vec!["--symbol", "AAPL", "--depth", "0"], "at least one level"),
        (vec!["--symbol", "AAPL", "--depth", "many"], "invalid value"),
    ] {
        let mut a = vec!["book", capture.to_str().unwrap()];
        a.extend(args.iter().copied());
        let out = weir(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn book_shows_levels_order_counts_bbo_and_status() {
    // DEEP+: the OMI sample's one add rests (its delete came first); the level shows its order
    // count, and the book is flagged: messages arrived out of order and named unknown orders.
    let capture = common::data("omi-data-packets/DeepPlus.IexTp.1.0.2/all_message_types.pcap");
    let out = weir(&["book", capture.to_str().unwrap(), "--symbol", "IBKR", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["symbol"], "IBKR");
    let f = &v["feeds"][0];
    assert_eq!(f["feed"], "deep+");
    assert_eq!(f["asks"][0]["price"], "136.5000");
    assert_eq!((f["asks"][0]["size"].as_u64(), f["asks"][0]["orders"].as_u64()), (Some(100), Some(1)));
    assert_eq!(f["bids"].as_array().map(Vec::len), Some(0));
    assert_eq!(f["maybe_bad_book"], true);

    // DEEP, at a time: the book as of the first transaction close at or after it.
    let capture = common::data("Sai271828-iex-parser/test.pcap.gz");
    let out = weir(&["book", capture.to_str().unwrap(), "--symbol", "VOO", "--at", "1696248001004113493", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["when"], "at");
    assert!(v["ts_event"].as_i64().unwrap() >= 1696248001004113493);
    let f = &v["feeds"][0];
    assert_eq!((f["feed"].as_str(), f["in_transition"].as_bool()), (Some("deep"), Some(false)));
    assert_eq!(f["bid"]["price"], "392.1500");
    assert_eq!(f["status"]["trading"], true);

    let text = weir(&["book", capture.to_str().unwrap(), "--symbol", "VOO", "--depth", "3"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("BBO: 10 @ 392.1100  x  10 @ 392.2100"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(" | ") && l.contains('.')).count(), 3, "{text}");
}

#[test]
fn symbols_that_are_not_ascii_are_escaped_not_fatal() {
    use weir_feeds::iex::SegmentBuilder;
    use weir_feeds::iex::builder::msg;
    let mut b = SegmentBuilder::new(0x8005, 1, 1);
    let mut add = msg::add_order(1, "A", 7, false, 100, 10_000);
    add[11] = 0xff; // the symbol's second byte
    b.push(&add);
    b.push(&msg::add_order(2, "ZIEXT", 8, true, 100, 10_100));
    let dir = common::scratch("dbn-escape");
    let capture = dir.join("odd.pcap");
    let datagrams = [common::Datagram { ts_ns: 5, payload: b.finish(3) }];
    common::write_capture(&capture, &datagrams, common::Format::Pcap { big_endian: false, nanos: true });
    let out = dir.join("odd.dbn");
    let run = weir(&["replay", capture.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (meta, recs) = read_back(&out);
    assert_eq!(meta.symbols, [r"A\xff", "ZIEXT"]);
    assert_eq!(recs.len(), 4);
}
