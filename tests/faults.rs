//! Fault injection on real captures: drop, duplicate, reorder, re-segment, truncate, reset, change
//! session, and split into A and B lines cut differently. What `replay` reports must equal what was
//! injected, exactly.

mod common;

use common::*;
use weir::replay::{ReplayReport, replay};
use weir_feeds::iex::{Segment, SegmentBuilder};

const DEEP: &str = "Sai271828-iex-parser/test.pcap.gz";
const TOPS: &str = "timpalpant-go-iex/TOPS16.pcapng.gz";

fn count(d: &Datagram) -> u64 {
    u64::from(Segment::parse(&d.payload).unwrap().message_count())
}

fn replay_datagrams(name: &str, a: &[Datagram], b: Option<&[Datagram]>) -> ReplayReport {
    let dir = scratch(name);
    let pa = dir.join("a.pcap");
    write_capture(&pa, a, Format::Pcap { big_endian: false, nanos: true });
    let pb = b.map(|b| {
        let p = dir.join("b.pcapng");
        write_capture(&p, b, Format::PcapNg { big_endian: false, tsresol: 9 });
        p
    });
    let r = replay(&pa, pb.as_deref(), &mut (), &mut |_| {}).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Indices of data segments (not heartbeats), every `step`-th from `start`, each directly
/// followed by another data segment.
fn victims(ds: &[Datagram], start: usize, step: usize) -> Vec<usize> {
    let data: Vec<usize> = (0..ds.len() - 1).filter(|&i| count(&ds[i]) > 0 && count(&ds[i + 1]) > 0).collect();
    data.into_iter().skip(start).step_by(step).collect()
}

/// All messages of a capture, in order, with the stream's identity and first offset.
fn messages(ds: &[Datagram]) -> (u16, u32, i64, Vec<Vec<u8>>) {
    let first = ds.iter().map(|d| Segment::parse(&d.payload).unwrap()).find(|s| !s.is_heartbeat()).unwrap();
    let (proto, session, offset) = (first.protocol_id(), first.session(), first.stream_offset());
    let mut out = Vec::new();
    for d in ds {
        let s = Segment::parse(&d.payload).unwrap();
        out.extend(s.blocks().map(|b| b.unwrap().bytes.to_vec()));
    }
    (proto, session, offset, out)
}

/// Re-cuts messages `[from, to)` (0-based) into segments whose sizes cycle through `sizes`,
/// skipping the message indices in `lose`.
fn resegment(ds: &[Datagram], sizes: &[usize], lose: &[std::ops::Range<usize>]) -> Vec<Datagram> {
    let (proto, session, offset, msgs) = messages(ds);
    assert_eq!(offset, 0, "the samples start at the beginning of the stream");
    let mut b = SegmentBuilder::new(proto, 1, session);
    let mut out = Vec::new();
    let (mut i, mut k) = (0, 0);
    let t0 = ds[0].ts_ns;
    while i < msgs.len() {
        let n = sizes[k % sizes.len()].min(msgs.len() - i);
        for m in &msgs[i..i + n] {
            b.push(m);
        }
        let seg = b.finish(t0 + i as i64 * 1000);
        if !lose.iter().any(|r| r.start <= i && i < r.end) {
            out.push(Datagram { ts_ns: t0 + i as i64 * 1000 + 7, payload: seg });
        }
        i += n;
        k += 1;
    }
    out
}

#[test]
fn dropped_segments_are_gaps_with_exact_ranges() {
    for capture in [DEEP, TOPS] {
        let ds = load(capture);
        let full = replay_datagrams("drop-full", &ds, None);
        let drop = victims(&ds, 50, 211);
        assert!(drop.len() >= 10);
        let missing: u64 = drop.iter().map(|&i| count(&ds[i])).sum();
        let kept: Vec<_> = ds.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, d)| d.clone()).collect();
        let r = replay_datagrams("drop", &kept, None);
        assert_eq!(r.gaps.count, drop.len() as u64, "{capture}");
        assert_eq!(r.gaps.messages_missing, missing, "{capture}");
        assert_eq!(r.messages, full.messages - missing, "{capture}");
        assert_eq!((r.duplicates.messages, r.resets, r.late_fill_messages), (0, 0, 0));
    }
}

#[test]
fn lost_tail_is_found_from_the_next_heartbeat() {
    let ds = load(DEEP);
    // The last data segment before a heartbeat.
    let i = (0..ds.len() - 1).rev().find(|&i| count(&ds[i]) > 0 && count(&ds[i + 1]) == 0).unwrap();
    let mut kept = ds.clone();
    kept.remove(i);
    let r = replay_datagrams("tail", &kept, None);
    assert_eq!((r.gaps.count, r.gaps.messages_missing), (1, count(&ds[i])));
}

#[test]
fn duplicated_segments_are_counted_and_dropped() {
    let ds = load(DEEP);
    let full = replay_datagrams("dup-full", &ds, None);
    let dup = victims(&ds, 10, 97);
    let mut out = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        out.push(d.clone());
        if dup.contains(&i) {
            out.push(d.clone());
        }
    }
    let r = replay_datagrams("dup", &out, None);
    let dup_msgs: u64 = dup.iter().map(|&i| count(&ds[i])).sum();
    assert_eq!((r.duplicates.segments, r.duplicates.messages), (dup.len() as u64, dup_msgs));
    assert_eq!((r.messages, r.gaps.count), (full.messages, 0));
}

#[test]
fn reordered_segments_are_a_gap_then_a_late_fill() {
    let ds = load(DEEP);
    let full = replay_datagrams("reorder-full", &ds, None);
    let swap = victims(&ds, 5, 150);
    let mut out = ds.clone();
    for &i in &swap {
        out.swap(i, i + 1);
    }
    let r = replay_datagrams("reorder", &out, None);
    let late: u64 = swap.iter().map(|&i| count(&ds[i])).sum();
    assert_eq!(r.gaps.count, swap.len() as u64);
    assert_eq!((r.gaps.messages_missing, r.late_fill_messages), (0, late));
    assert_eq!(r.messages, full.messages);
    assert_eq!(r.messages_by_type, full.messages_by_type);
}

#[test]
fn resegmented_stream_decodes_identically() {
    for capture in [DEEP, TOPS] {
        let ds = load(capture);
        let full = replay_datagrams("reseg-full", &ds, None);
        let out = resegment(&ds, &[1, 17, 3, 64, 5], &[]);
        let r = replay_datagrams("reseg", &out, None);
        assert_eq!(r.messages, full.messages, "{capture}");
        assert_eq!(r.messages_by_type, full.messages_by_type);
        assert_eq!((r.gaps.count, r.offset_mismatches, r.duplicates.messages, r.errors), (0, 0, 0, 0));
    }
}

#[test]
fn a_and_b_lines_cut_differently_fill_each_other() {
    let ds = load(DEEP);
    let full = replay_datagrams("ab-full", &ds, None);
    // A: the original with segments dropped. B: re-cut, losing other message ranges.
    let drop_a = victims(&ds, 30, 173);
    let a: Vec<_> = ds.iter().enumerate().filter(|(i, _)| !drop_a.contains(i)).map(|(_, d)| d.clone()).collect();
    let (_, _, _, msgs) = messages(&ds);
    // Message indices covered by A's drops, so B can avoid losing those.
    let mut first_index = Vec::new();
    let mut n = 0usize;
    for d in &ds {
        first_index.push(n);
        n += count(d) as usize;
    }
    let lost_in_a: Vec<std::ops::Range<usize>> =
        drop_a.iter().map(|&i| first_index[i]..first_index[i] + count(&ds[i]) as usize).collect();
    let lose_b: Vec<std::ops::Range<usize>> = (0..msgs.len())
        .step_by(2_000)
        .skip(1)
        .map(|s| s..s + 40)
        .filter(|r| !lost_in_a.iter().any(|a| a.start < r.end + 64 && r.start < a.end + 64))
        .collect();
    assert!(lose_b.len() > 5);
    let b = resegment(&ds, &[7, 2, 11], &lose_b);
    let r = replay_datagrams("ab", &a, Some(&b));
    assert_eq!((r.gaps.count, r.gaps.messages_missing), (0, 0));
    assert_eq!(r.messages, full.messages);
    assert_eq!(r.messages_by_type, full.messages_by_type);
    let arb = r.arbitration.unwrap();
    assert!(arb.taken_a > 0 && arb.taken_b > 0 && arb.dropped > 0, "{arb:?}");

    // Losses close together on both lines, partly overlapping: exactly the messages lost on both
    // are missing, everything else is delivered once.
    let overlapping: Vec<std::ops::Range<usize>> = lost_in_a.iter().map(|r| r.start + 1..r.end + 5).collect();
    let b3 = resegment(&ds, &[2, 9, 4], &overlapping);
    let arrived = |line: &[Datagram]| -> std::collections::BTreeSet<i64> {
        line.iter()
            .flat_map(|d| {
                let s = Segment::parse(&d.payload).unwrap();
                s.first_seq()..s.first_seq() + i64::from(s.message_count())
            })
            .collect()
    };
    let union: std::collections::BTreeSet<i64> = arrived(&a).union(&arrived(&b3)).copied().collect();
    let both = full.messages - union.len() as u64;
    assert!(both > 0 && both < 1_000, "{both}");
    let r = replay_datagrams("ab-close", &a, Some(&b3));
    assert_eq!(r.gaps.messages_missing, both);
    assert_eq!(r.messages, union.len() as u64);

    // Loss on both lines at once is a real gap, of exactly the common messages.
    let i = drop_a[3];
    let common = first_index[i]..first_index[i] + count(&ds[i]) as usize;
    let b2 = resegment(&ds, &[1], std::slice::from_ref(&common));
    let r = replay_datagrams("ab-both", &a, Some(&b2));
    assert_eq!((r.gaps.count, r.gaps.messages_missing), (1, common.len() as u64));
}

#[test]
fn stream_reset_and_session_change() {
    let ds = load(DEEP);
    let full = replay_datagrams("reset-full", &ds, None);
    let day = 86_400_000_000_000i64;
    // A second run under the same session id: seq and offset restart, timestamps are later.
    let rerun: Vec<Datagram> = ds
        .iter()
        .map(|d| {
            let mut p = d.payload.clone();
            let send = i64::from_le_bytes(p[32..40].try_into().unwrap()) + day;
            p[32..40].copy_from_slice(&send.to_le_bytes());
            let mut at = 40;
            while at + 2 <= p.len() {
                let len = usize::from(u16::from_le_bytes([p[at], p[at + 1]]));
                if len >= 10 {
                    let ts = i64::from_le_bytes(p[at + 4..at + 12].try_into().unwrap()) + day;
                    p[at + 4..at + 12].copy_from_slice(&ts.to_le_bytes());
                }
                at += 2 + len;
            }
            Datagram { ts_ns: d.ts_ns + day, payload: p }
        })
        .collect();
    let both: Vec<_> = ds.iter().chain(&rerun).cloned().collect();
    let r = replay_datagrams("reset", &both, None);
    assert_eq!((r.resets, r.sessions, r.gaps.count, r.duplicates.messages), (1, 1, 0, 0));
    assert_eq!(r.messages, 2 * full.messages);

    let other_session: Vec<Datagram> = rerun
        .iter()
        .map(|d| {
            let mut p = d.payload.clone();
            p[8..12].copy_from_slice(&0x4d00_0000u32.to_le_bytes());
            Datagram { ts_ns: d.ts_ns, payload: p }
        })
        .collect();
    let both: Vec<_> = ds.iter().chain(&other_session).cloned().collect();
    let r = replay_datagrams("session", &both, None);
    assert_eq!((r.resets, r.sessions, r.gaps.count), (0, 2, 0));
    assert_eq!(r.messages, 2 * full.messages);
}

#[test]
fn truncated_capture_keeps_every_whole_record() {
    let ds = load(TOPS);
    let dir = scratch("trunc");
    let p = dir.join("t.pcap");
    write_capture(&p, &ds, Format::Pcap { big_endian: false, nanos: false });
    let bytes = std::fs::read(&p).unwrap();
    // Cut in the middle of the file: almost surely inside a record.
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = replay(&cut, None, &mut (), &mut |_| {}).unwrap();
    assert_eq!(r.truncated_records, 1);
    let whole: u64 = ds[..r.packets as usize].iter().map(count).sum();
    assert_eq!(r.messages, whole);
    assert!(r.packets > 1000 && r.packets < ds.len() as u64);
}
