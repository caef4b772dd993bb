//! Every message of every real capture against an independent decoder (tshark 4.0.17 with the
//! Open Markets Initiative dissectors; see tests/data/iex/PROVENANCE.md §7).
//!
//! Our side is exactly what `weir replay --emit jsonl` writes, so this also pins the JSON format.
//! Rows are matched one to one in capture order on (frame, session, seq, type), then every field
//! the reference prints is compared: integers exactly, prices after the 10^4 scaling, flag bytes
//! bit by bit from the names the dissector prints (a flag field the dissector leaves out is 0).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;
use weir::capture::CaptureReader;
use weir::jsonl::write_message;
use weir_feeds::frame::peel_udp;
use weir_feeds::iex::{MsgContext, Segment, decode};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iex");

/// One message or heartbeat.
#[derive(Debug)]
struct Row {
    frame: u64,
    session: u32,
    seq: i64,
    msg_type: String,
    fields: BTreeMap<String, String>,
}

fn golden(name: &str) -> Vec<Row> {
    let f = std::fs::File::open(Path::new(DATA).join("golden-omi-tshark").join(name)).unwrap();
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut rows = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.unwrap();
        if i == 0 {
            assert!(line.starts_with("frame\tsession"), "{name}: unexpected header {line}");
            continue;
        }
        let cols: Vec<&str> = line.splitn(5, '\t').collect();
        assert_eq!(cols.len(), 5, "{name} line {}: {line}", i + 1);
        rows.push(Row {
            frame: cols[0].parse().unwrap(),
            session: cols[1].parse().unwrap(),
            seq: cols[2].parse().unwrap(),
            msg_type: cols[3].to_string(),
            fields: parse_fields(cols[4]),
        });
    }
    rows
}

/// `name=value` leaves separated by single spaces; values may hold spaces (flag names, a blank
/// code), keys are `[a-z0-9]+` and always follow a space.
fn parse_fields(s: &str) -> BTreeMap<String, String> {
    let mut starts = Vec::new(); // (key start, value start)
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if i == 0 || b[i - 1] == b' ' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_lowercase() || b[j].is_ascii_digit()) {
                j += 1;
            }
            if j > i && j < b.len() && b[j] == b'=' {
                starts.push((i, j + 1));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut out = BTreeMap::new();
    for (k, &(ks, vs)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(b.len(), |&(next, _)| next - 1);
        out.insert(s[ks..vs - 1].to_string(), s[vs..end.max(vs)].to_string());
    }
    out
}

/// Our rows: every segment of every UDP datagram, decoded without sequencing (the reference does
/// not sequence either), written as JSON lines.
fn ours(capture: &str) -> Vec<(u64, u32, i64, Value)> {
    let mut reader = CaptureReader::open(Path::new(DATA).join(capture)).unwrap();
    let mut rows = Vec::new();
    let mut frame = 0u64;
    let mut line = Vec::new();
    while let Some(pkt) = reader.next_packet().unwrap() {
        frame += 1;
        let udp = peel_udp(pkt.link, pkt.data).unwrap();
        let seg = Segment::parse(udp.payload).unwrap();
        if seg.is_heartbeat() {
            rows.push((frame, seg.session(), seg.first_seq(), Value::String("<heartbeat>".into())));
            continue;
        }
        for block in seg.blocks() {
            let block = block.unwrap();
            let msg = decode(seg.protocol(), block.bytes).unwrap();
            let ctx = MsgContext {
                protocol: seg.protocol(),
                channel: seg.channel(),
                session: seg.session(),
                seq: block.seq,
                send_time: seg.send_time(),
                recv_time: pkt.ts_ns,
                offset: block.offset,
                late: false,
            };
            line.clear();
            write_message(&mut line, &ctx, &msg);
            rows.push((frame, seg.session(), block.seq, serde_json::from_slice(&line).unwrap()));
        }
    }
    rows
}

/// Flag names as the dissector prints them, to bits.
fn flag_bits(field: &str, names: &str) -> u64 {
    names
        .split('|')
        .filter(|n| !n.is_empty())
        .map(|n| match (field, n) {
            ("saleconditionflags", "Intermarket Sweep") => 0x80,
            ("saleconditionflags", "Extended Hours") => 0x40,
            ("saleconditionflags", "Odd Lot") => 0x20,
            ("saleconditionflags", "Trade Through Exempt") => 0x10,
            ("saleconditionflags", "Singleprice Cross Trade") => 0x08,
            ("quoteupdateflags", "Symbol Availability") => 0x80,
            ("quoteupdateflags", "Market Session") => 0x40,
            ("securitydirectoryflags", "Test Security") => 0x80,
            ("securitydirectoryflags", "When Issued Security") => 0x40,
            ("securitydirectoryflags", "Etp") => 0x20,
            _ => panic!("unknown flag name {n:?} in {field}"),
        })
        .sum()
}

/// The reference's field → our JSON key, and how to compare.
enum Cmp {
    Int,
    Price,
    Text,
    Flags,
}

fn mapping(field: &str) -> Option<(&'static str, Cmp)> {
    Some(match field {
        "timestamp" => ("timestamp", Cmp::Int),
        "symbol" => ("symbol", Cmp::Text),
        "size" => ("size", Cmp::Int),
        "price" => ("price", Cmp::Price),
        "bidsize" => ("bid_size", Cmp::Int),
        "bidprice" => ("bid_price", Cmp::Price),
        "askprice" => ("ask_price", Cmp::Price),
        "asksize" => ("ask_size", Cmp::Int),
        "tradeid" => ("trade_id", Cmp::Int),
        "orderid" | "orderidreference" => ("order_id", Cmp::Int),
        "saleconditionflags" | "quoteupdateflags" | "securitydirectoryflags" => ("flags", Cmp::Flags),
        "eventflags" => ("flags", Cmp::Int),
        "systemevent" => ("system_event", Cmp::Text),
        "tradingstatus" => ("trading_status", Cmp::Text),
        "reason" => ("reason", Cmp::Text),
        "operationalhaltstatus" => ("operational_halt_status", Cmp::Text),
        "retailliquidityindicator" => ("retail_liquidity_indicator", Cmp::Text),
        "shortsalepriceteststatus" => ("short_sale_price_test_status", Cmp::Int),
        "detail" => ("detail", Cmp::Text),
        "securityevent" => ("security_event", Cmp::Text),
        "roundlotsize" => ("round_lot_size", Cmp::Int),
        "adjustedpocprice" => ("adjusted_poc_price", Cmp::Price),
        "luldtier" => ("luld_tier", Cmp::Int),
        "auctiontype" => ("auction_type", Cmp::Text),
        "pairedshares" => ("paired_shares", Cmp::Int),
        "referenceprice" => ("reference_price", Cmp::Price),
        "indicativeclearingprice" => ("indicative_clearing_price", Cmp::Price),
        "imbalanceshares" => ("imbalance_shares", Cmp::Int),
        "imbalanceside" => ("imbalance_side", Cmp::Text),
        "scheduledauctiontime" => ("scheduled_auction_time", Cmp::Int),
        "auctionbookclearingprice" => ("auction_book_clearing_price", Cmp::Price),
        "collarreferenceprice" => ("collar_reference_price", Cmp::Price),
        "lowerauctioncollar" => ("lower_auction_collar", Cmp::Price),
        "upperauctioncollar" => ("upper_auction_collar", Cmp::Price),
        "side" => ("side", Cmp::Text),
        // Reserved bytes are never validated; `payload` is the heartbeat's length (0).
        "reserved1" | "payload" => return None,
        other => panic!("the reference prints a field this test does not map: {other}"),
    })
}

/// The flag fields the dissector omits when the byte is 0, by message type.
fn omitted_flag_field(msg_type: &str) -> Option<&'static str> {
    match msg_type {
        "T" | "B" | "L" => Some("saleconditionflags"),
        "Q" => Some("quoteupdateflags"),
        "D" => Some("securitydirectoryflags"),
        _ => None,
    }
}

struct Diff {
    compared_fields: u64,
    mismatches: Vec<String>,
    counts: BTreeMap<String, u64>,
}

fn compare(capture: &str, golden_file: &str) -> Diff {
    let gold = golden(golden_file);
    let mine = ours(capture);
    let mut d = Diff { compared_fields: 0, mismatches: Vec::new(), counts: BTreeMap::new() };
    assert_eq!(mine.len(), gold.len(), "{capture}: {} rows decoded, the reference has {}", mine.len(), gold.len());
    for (g, (frame, session, seq, v)) in gold.iter().zip(&mine) {
        let ty = match v {
            Value::String(s) => s.clone(),
            v => v["type"].as_str().unwrap().to_string(),
        };
        let here = format!("{capture} frame {frame} seq {seq} type {ty}");
        if (g.frame, g.session, g.seq, g.msg_type.as_str()) != (*frame, *session, *seq, ty.as_str()) {
            d.mismatches.push(format!("{here}: reference row is frame {} seq {} type {}", g.frame, g.seq, g.msg_type));
            continue;
        }
        *d.counts.entry(ty.clone()).or_default() += 1;
        if ty == "<heartbeat>" {
            continue;
        }
        for (field, value) in &g.fields {
            let Some((key, cmp)) = mapping(field) else { continue };
            let got = &v[key];
            let ok = match cmp {
                Cmp::Int => got.as_i64().map(|x| x.to_string()) == Some(value.clone()),
                Cmp::Price => {
                    let want = (value.parse::<f64>().unwrap() * 10_000.0).round() as i64;
                    got.as_i64() == Some(want)
                }
                Cmp::Text => got.as_str() == Some(value.as_str()),
                Cmp::Flags => got.as_u64() == Some(flag_bits(field, value)),
            };
            d.compared_fields += 1;
            if !ok {
                d.mismatches.push(format!("{here}: {field}={value:?} but we have {key}={got}"));
            }
        }
        if let Some(flag_field) = omitted_flag_field(&ty)
            && !g.fields.contains_key(flag_field)
        {
            d.compared_fields += 1;
            if v["flags"].as_u64() != Some(0) {
                d.mismatches.push(format!("{here}: reference shows no {flag_field} but we have flags={}", v["flags"]));
            }
        }
    }
    d
}

fn check(capture: &str, golden_file: &str, expect_rows: usize) -> Diff {
    let d = compare(capture, golden_file);
    assert!(
        d.mismatches.is_empty(),
        "{} mismatches, first: {:#?}",
        d.mismatches.len(),
        &d.mismatches[..d.mismatches.len().min(20)]
    );
    assert_eq!(d.counts.values().sum::<u64>() as usize, expect_rows);
    assert!(d.compared_fields as usize >= expect_rows, "too few fields compared: {}", d.compared_fields);
    d
}

#[test]
fn deep_production_sample_matches_reference() {
    let d = check("Sai271828-iex-parser/test.pcap.gz", "Sai_test_DEEP.omi.tsv.gz", 49_589);
    assert_eq!(d.counts["8"], 1_526);
    assert_eq!(d.counts["5"], 1_226);
    assert_eq!(d.counts["<heartbeat>"], 1_264);
}

#[test]
fn tops16_sample_matches_reference() {
    let d = check("timpalpant-go-iex/TOPS16.pcapng.gz", "goiex_TOPS16.omi.tsv.gz", 57_911);
    assert_eq!(d.counts["Q"], 27_217);
    assert_eq!(d.counts["A"], 642);
}

#[test]
fn hist_pcapng_head_matches_reference() {
    check("lvfrazao-IEXTools/example1.pcap", "IEXTools_example1_TOPS.omi.tsv.gz", 54);
}

#[test]
fn deep_plus_every_message_type_matches_reference() {
    let d = check(
        "omi-data-packets/DeepPlus.IexTp.1.0.2/all_message_types.pcap",
        "omi_DeepPlus_all_message_types.omi.tsv.gz",
        447,
    );
    for t in ["a", "M", "R", "L", "T", "B", "D", "E", "S", "H", "I", "O", "P"] {
        assert!(d.counts.contains_key(t), "no {t}");
    }
}

#[test]
fn field_parser_handles_blank_values_and_flag_names() {
    let f = parse_fields("retailliquidityindicator=  timestamp=5 symbol=A");
    assert_eq!(f["retailliquidityindicator"], " ");
    assert_eq!(f["timestamp"], "5");
    let f = parse_fields("saleconditionflags=Odd Lot|Extended Hours timestamp=1 detail= ");
    assert_eq!(f["saleconditionflags"], "Odd Lot|Extended Hours");
    assert_eq!(f["detail"], " ");
}
