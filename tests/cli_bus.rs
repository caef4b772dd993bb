//! `weir tail` and `weir record` as a user runs them, against a producer in another process (this
//! test, through `weir::bus::Publisher`): a recorder started before its producer writes exactly
//! the records published, `tail --symbol` shows one symbol, a restart is followed, a signal
//! stops cleanly, and a damaged bus file is refused with the field named.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dbn::decode::{DbnMetadata, DecodeRecordRef, DynDecoder};
use dbn::{
    BidAskPair, FlagSet, Mbp1Msg, RecordHeader, SType, StatusMsg, SymbolMappingMsg, TradeMsg, UNDEF_TIMESTAMP,
    VersionUpgradePolicy, rtype,
};
use weir::bus::{Publisher, PublisherOptions};

/// A directory under /dev/shm for the bus files (`WEIR_BUS_DIR`) and outputs; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = PathBuf::from(format!("/dev/shm/weir-cli-bus-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn weir(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
        c.args(args).env("WEIR_BUS_DIR", &self.0);
        c
    }
    fn spawn(&self, args: &[&str]) -> Child {
        self.weir(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }
    fn publisher(&self, name: &str) -> Publisher {
        Publisher::create(&self.0.join(name), &PublisherOptions { capacity: 1 << 20, ..PublisherOptions::default() })
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for `child` to exit (killing it after `secs`) and collects its output.
fn finish(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s; stdout {} stderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const TOPS: u16 = 38;
const SYMBOLS: [&str; 3] = ["AAA", "BBB", "CC.W"];
const T0: u64 = 1_700_000_000_000_000_000;

fn mapping(id: u32, sym: &str, ts: u64) -> SymbolMappingMsg {
    let mut m = SymbolMappingMsg {
        hd: RecordHeader::new::<SymbolMappingMsg>(rtype::SYMBOL_MAPPING, TOPS, id, ts),
        stype_in: SType::RawSymbol as u8,
        stype_out: SType::RawSymbol as u8,
        start_ts: ts,
        end_ts: UNDEF_TIMESTAMP,
        ..SymbolMappingMsg::default()
    };
    for (i, b) in sym.bytes().enumerate() {
        m.stype_in_symbol[i] = b as std::ffi::c_char;
        m.stype_out_symbol[i] = b as std::ffi::c_char;
    }
    m
}

fn bytes<R: dbn::Record>(r: &R) -> Vec<u8> {
    r.as_ref().to_vec()
}

/// The known sequence: three symbol mappings, then trades and quotes of the three, and one
/// feed-wide status record (instrument 0). As record bytes, in order.
fn published() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (i, s) in SYMBOLS.iter().enumerate() {
        out.push(bytes(&mapping(i as u32 + 1, s, T0 + i as u64)));
    }
    for n in 0..300u64 {
        let id = (n % 3) as u32 + 1;
        let ts = T0 + 1000 + n * 1000;
        if n % 2 == 0 {
            let t = TradeMsg {
                hd: RecordHeader::new::<TradeMsg>(rtype::MBP_0, TOPS, id, ts),
                price: 10_000_000_000 + n as i64 * 10_000_000,
                size: n as u32 + 1,
                action: b'T' as std::ffi::c_char,
                side: b'N' as std::ffi::c_char,
                ts_recv: ts + 5,
                sequence: n as u32,
                ..TradeMsg::default()
            };
            out.push(bytes(&t));
        } else {
            let q = Mbp1Msg {
                hd: RecordHeader::new::<Mbp1Msg>(rtype::MBP_1, TOPS, id, ts),
                price: dbn::UNDEF_PRICE,
                action: b'M' as std::ffi::c_char,
                side: b'N' as std::ffi::c_char,
                flags: FlagSet::new(dbn::flags::LAST | dbn::flags::TOB),
                ts_recv: ts + 5,
                sequence: n as u32,
                levels: [BidAskPair {
                    bid_px: 9_990_000_000,
                    ask_px: 10_010_000_000,
                    bid_sz: 100 + n as u32,
                    ask_sz: 200,
                    bid_ct: 1,
                    ask_ct: 1,
                }],
                ..Mbp1Msg::default()
            };
            out.push(bytes(&q));
        }
        if n == 150 {
            let s = StatusMsg {
                hd: RecordHeader::new::<StatusMsg>(rtype::STATUS, TOPS, 0, ts),
                ts_recv: ts,
                action: dbn::StatusAction::Trading as u16,
                ..StatusMsg::default()
            };
            out.push(bytes(&s));
        }
    }
    out
}

fn publish_all(p: &mut Publisher, recs: &[Vec<u8>]) {
    for (i, r) in recs.iter().enumerate() {
        p.publish_bytes(r).unwrap();
        if i % 50 == 49 {
            p.tick();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    p.tick();
}

/// Every record of a DBN file, as bytes, and its header.
fn decode(path: &Path) -> (dbn::Metadata, Vec<Vec<u8>>) {
    let mut d = DynDecoder::from_file(path, VersionUpgradePolicy::AsIs).unwrap();
    let meta = d.metadata().clone();
    let mut recs = Vec::new();
    while let Some(r) = d.decode_record_ref().unwrap() {
        recs.push(r.as_ref().to_vec());
    }
    (meta, recs)
}

#[test]
fn record_started_before_the_producer_writes_exactly_what_was_published() {
    let s = Scratch::new("record");
    let plain = s.0.join("out.dbn");
    let zst = s.0.join("out.dbn.zst");
    // Both started before the bus exists: one stops at the end of the stream, the other when idle.
    let a = s.spawn(&["record", "feed", plain.to_str().unwrap()]);
    let b = s.spawn(&["record", "feed", zst.to_str().unwrap(), "--idle-exit", "1500", "--wait", "30000"]);
    std::thread::sleep(Duration::from_millis(300));
    let recs = published();
    let mut p = s.publisher("feed");
    publish_all(&mut p, &recs);
    let b = finish(b, 30);
    p.finish();
    let a = finish(a, 30);
    for (out, file) in [(a, &plain), (b, &zst)] {
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains(&format!("wrote {} records (3 symbols, dataset IEXG.TOPS)", recs.len())), "{stdout}");
        assert!(stdout.contains("lost 0 "), "{stdout}");
        let (meta, got) = decode(file);
        assert_eq!(got.len(), recs.len(), "{}", file.display());
        for (i, (g, r)) in got.iter().zip(&recs).enumerate() {
            assert_eq!(g, r, "{}: record {i}", file.display());
        }
        assert_eq!(meta.dataset, "IEXG.TOPS");
        assert_eq!(meta.symbols, SYMBOLS);
        let ids: Vec<(&str, &str)> =
            meta.mappings.iter().map(|m| (m.raw_symbol.as_str(), m.intervals[0].symbol.as_str())).collect();
        assert_eq!(ids, [("AAA", "1"), ("BBB", "2"), ("CC.W", "3")]);
        // The span runs from the first mapping's ts_event to the last record's ts_recv.
        assert_eq!(meta.start, T0);
        assert_eq!(meta.end.map(|e| e.get()), Some(T0 + 1000 + 299 * 1000 + 5 + 1));
        assert!(!s.0.join(format!("{}.partial", file.file_name().unwrap().to_str().unwrap())).exists());
    }
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    text(stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

#[test]
fn tail_symbol_shows_that_symbol_only_and_reports_its_counters() {
    let s = Scratch::new("tail");
    let recs = published();
    let mut p = s.publisher("feed");
    publish_all(&mut p, &recs);
    p.finish();
    // A late starter: `--symbol` joins at the oldest record, so it still sees BBB's mapping.
    let out = s.weir(&["tail", "feed", "--json", "--symbol", "BBB"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines = json_lines(&out.stdout);
    let expected = recs.iter().filter(|r| u32::from_le_bytes(r[4..8].try_into().unwrap()) == 2).count();
    assert_eq!(lines.len(), expected, "{stderr}");
    assert!(expected > 100);
    for l in &lines {
        assert_eq!(l["hd"]["instrument_id"], 2, "{l}");
        assert_eq!(l["symbol"], "BBB", "{l}");
    }
    assert_eq!(lines[0]["hd"]["rtype"], rtype::SYMBOL_MAPPING);
    // BBB is instrument 2: n = 1 (a quote), n = 4 (a trade), ...
    assert_eq!(lines[1]["levels"][0]["bid_sz"], 101, "{}", lines[1]);
    assert_eq!(lines[2]["size"], 5, "{}", lines[2]);
    assert!(stderr.contains("the producer ended its stream"), "{stderr}");
    assert!(
        stderr
            .contains(&format!("received {}  shown {expected}  lost 0  laps 0  overwritten 0  corrupt 0", recs.len())),
        "{stderr}"
    );

    // Text, joined at the tail of an ended stream: nothing to show, and it says so.
    let out = s.weir(&["tail", "feed"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("received 0  shown 0"), "{}", text(&out.stderr));

    // Text from the oldest, first five records: one line each, symbols resolved.
    let out = s.weir(&["tail", "feed", "--join", "oldest", "--count", "5"]).output().unwrap();
    assert!(out.status.success());
    let t = text(&out.stdout);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 5, "{t}");
    assert!(lines[0].contains("symbol_mapping") && lines[0].contains("AAA = instrument 1"), "{t}");
    assert!(lines[3].contains("trades") && lines[3].contains("AAA") && lines[3].contains("1 @ 10.000000000"), "{t}");
    assert!(lines[4].contains("mbp-1") && lines[4].contains("BBB") && lines[4].contains("101 @ 9.990000000"), "{t}");

    // An unknown symbol: nothing, and a note saying why.
    let out = s.weir(&["tail", "feed", "--symbol", "ZZZ"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("symbol ZZZ was not seen"), "{}", text(&out.stderr));
}

#[test]
fn tail_follows_a_restarted_producer_and_stops_on_sigterm() {
    let s = Scratch::new("restart");
    let mut first = s.publisher("feed");
    let mut tail = s.spawn(&["tail", "feed"]);
    // Wait until it has joined (it says so on stderr).
    let mut err = BufReader::new(tail.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("joined at the tail"), "{line}");
    first.publish(&mapping(1, "OLD", T0));
    first.tick();
    let mut second = s.publisher("feed");
    assert_eq!(second.epoch(), 2);
    second.publish(&mapping(1, "NEW", T0 + 1));
    second.tick();
    drop(first);
    // Wait for both lines, then stop it.
    let mut out = tail.stdout.take().unwrap();
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while got.lines().count() < 2 {
        assert!(Instant::now() < deadline, "{got}");
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed: {got}");
        got.push_str(&text(&buf[..n]));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) }, 0);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = tail.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "SIGTERM did not stop it");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    let lines: Vec<&str> = got.lines().collect();
    assert!(lines[0].contains("OLD = instrument 1"), "{got}");
    assert!(lines[1].contains("NEW = instrument 1"), "{got}");
    assert!(rest.contains("producer restarted: epoch 2"), "{rest}");
    assert!(rest.contains("stopped: signalled"), "{rest}");
    assert!(rest.contains("received 2  shown 2  lost 0") && rest.contains("reopens 1"), "{rest}");
    drop(second);
}

#[test]
fn damaged_or_missing_buses_are_refused_with_status_2() {
    let s = Scratch::new("bad");
    let path = s.0.join("feed");
    drop(s.publisher("feed"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let out = s.weir(&["tail", "feed"]).output().unwrap();
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("not a weir bus file: layout version (offset 8) is 9, expected 1"), "{e}");
    assert!(e.contains(path.to_str().unwrap()), "{e}");

    std::fs::write(&path, b"not a bus at all, and long enough to have a magic").unwrap();
    let out = s.weir(&["tail", "--json", "feed"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("magic (offset 0)"), "{}", text(&out.stderr));

    let out = s.weir(&["tail", "nope", "--wait", "50"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such bus"), "{}", text(&out.stderr));

    // The recorder gives up on a bus that never appears, leaving no file behind.
    let dbn = s.0.join("x.dbn");
    let out = s.weir(&["record", "nope", dbn.to_str().unwrap(), "--wait", "100"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!dbn.exists() && !s.0.join("x.dbn.partial").exists());
    // ... and refuses a damaged one the same way.
    let out = s.weir(&["record", "feed", dbn.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("magic (offset 0)"));
    assert!(!dbn.exists() && !s.0.join("x.dbn.partial").exists());

    let out = s.weir(&["tail", "feed", "--count", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex");

#[test]
fn record_of_a_replay_on_the_bus_has_the_records_and_symbols_of_replay_out() {
    let s = Scratch::new("replay");
    for (i, rel) in ["Sai271828-iex-parser/test.pcap.gz", "timpalpant-go-iex/TOPS16.pcapng.gz"].iter().enumerate() {
        let name = format!("replay{i}");
        let (recorded, reference) = (s.0.join(format!("rec{i}.dbn.zst")), s.0.join(format!("ref{i}.dbn")));
        let recorder = s.spawn(&["record", &name, recorded.to_str().unwrap()]);
        let capture = format!("{DATA}/{rel}");
        let out = s
            .weir(&["replay", &capture, "--bus", &name, "--bus-capacity", "64M", "--out", reference.to_str().unwrap()])
            .arg("--quiet")
            .output()
            .unwrap();
        assert!(out.status.success(), "{rel}: {}", text(&out.stderr));
        let rec = finish(recorder, 60);
        let stdout = text(&rec.stdout);
        assert!(rec.status.success(), "{rel}: {stdout}{}", text(&rec.stderr));
        assert!(stdout.contains("lost 0 ") && stdout.contains("the producer ended its stream"), "{rel}: {stdout}");
        let (meta, got) = decode(&recorded);
        let (want_meta, want) = decode(&reference);
        assert!(want.len() > 1000, "{rel}: {} records", want.len());
        assert_eq!(got.len(), want.len(), "{rel}");
        assert!(got == want, "{rel}: records differ");
        assert_eq!(meta.symbols, want_meta.symbols, "{rel}");
        assert_eq!(meta.mappings, want_meta.mappings, "{rel}");
        assert_eq!(meta.dataset, want_meta.dataset, "{rel}");
        assert!(
            stdout.contains(&format!("wrote {} records ({} symbols", want.len(), want_meta.symbols.len())),
            "{stdout}"
        );
    }
}

#[test]
fn a_record_too_short_for_its_type_is_skipped_not_fatal() {
    let s = Scratch::new("short");
    let mut p = s.publisher("feed");
    p.publish(&mapping(1, "AAA", T0));
    // A whole frame, but an MBP-1 of 16 bytes: typed access would read past it (or panic).
    let mut short = bytes(&mapping(1, "AAA", T0))[..16].to_vec();
    (short[0], short[1]) = (4, rtype::MBP_1);
    assert!(p.publish_bytes(&short).is_err(), "the publisher refuses it");
    p.publish_entry_unchecked(&short).unwrap();
    let recs = published();
    p.publish_bytes(&recs[3]).unwrap();
    p.finish();
    let out = s.weir(&["tail", "feed", "--json", "--join", "oldest"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(json_lines(&out.stdout).len(), 2, "{stderr}");
    // The subscriber refuses it (before any typed access), counts it corrupt and lost.
    assert!(stderr.contains("record shorter than its rtype at stream position"), "{stderr}");
    assert!(stderr.contains("shown 2  lost 1  laps 0  overwritten 0  corrupt 1  malformed 0"), "{stderr}");
    let file = s.0.join("out.dbn");
    let out = s.weir(&["record", "feed", file.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("wrote 2 records") && text(&out.stdout).contains("corrupt 1"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(decode(&file).1, [bytes(&mapping(1, "AAA", T0)), recs[3].clone()]);
}
