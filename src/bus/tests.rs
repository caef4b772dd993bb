//! In-process tests of the file layer (the multi-process ones are in `tests/bus.rs`).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use dbn::{RecordHeader, TradeMsg, rtype};

use super::*;

/// A fresh directory under /dev/shm, removed on drop.
pub(crate) struct ShmDir(pub(crate) PathBuf);

impl ShmDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(format!("/dev/shm/weir-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ShmDir(dir)
    }
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn trade(i: u64) -> TradeMsg {
    TradeMsg {
        hd: RecordHeader::new::<TradeMsg>(rtype::MBP_0, 1, (i % 7) as u32 + 1, i),
        price: i as i64 * 1_000_000,
        size: i as u32,
        sequence: i as u32,
        ..TradeMsg::default()
    }
}

fn small() -> PublisherOptions {
    PublisherOptions { capacity: 4096, ..PublisherOptions::default() }
}

#[test]
fn records_round_trip_through_the_file() {
    let dir = ShmDir::new("roundtrip");
    let path = dir.0.join("bus");
    let mut publisher = Publisher::create(&path, &small()).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    assert_eq!(sub.info().epoch, 1);
    assert_eq!(sub.info().pid, std::process::id());
    for i in 0..1000 {
        assert_eq!(publisher.publish(&trade(i)), i);
        match sub.poll() {
            Next::Record(d) => {
                assert_eq!((d.seq, d.lost), (i, 0));
                let t = d.record.get::<TradeMsg>().expect("a trade");
                assert_eq!(t, &trade(i));
            }
            other => panic!("{i}: {other:?}"),
        }
    }
    assert!(matches!(sub.poll(), Next::Empty));
    assert_eq!(sub.producer(), ProducerState::Live);
    publisher.finish();
    assert_eq!(sub.producer(), ProducerState::Ended);
    let s = sub.stats();
    assert_eq!((s.received, s.lost, s.laps), (1000, 0, 0));
}

#[test]
fn a_lapped_subscriber_counts_its_losses_exactly() {
    let dir = ShmDir::new("lapped");
    let path = dir.0.join("bus");
    let mut publisher = Publisher::create(&path, &small()).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    // 4096-byte ring, 64-byte entries: 64 fit; write 1000 unread.
    for i in 0..1000 {
        publisher.publish(&trade(i));
    }
    let mut got = Vec::new();
    loop {
        match sub.poll() {
            Next::Record(d) => got.push((d.seq, d.lost)),
            Next::Lapped => {}
            Next::Empty => break,
            Next::Corrupt { what, .. } => panic!("{what}"),
        }
    }
    let s = sub.stats();
    assert_eq!(s.received + s.lost, 1000, "{s:?}");
    assert_eq!(got.last().unwrap().0, 999);
    assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), s.lost);
    assert!(s.laps >= 1);
}

#[test]
fn files_are_private_and_mapped_read_only_by_subscribers() {
    let dir = ShmDir::new("perm");
    let path = dir.0.join("bus");
    let _p = Publisher::create(&path, &small()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let group = dir.0.join("group");
    let _g = Publisher::create(&group, &PublisherOptions { group_read: true, ..small() }).unwrap();
    assert_eq!(std::fs::metadata(&group).unwrap().permissions().mode() & 0o777, 0o640);
    let _sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let lines: Vec<&str> = maps.lines().filter(|l| l.ends_with(path.to_str().unwrap())).collect();
    // The publisher's mapping is rw, the subscriber's read-only.
    assert!(lines.iter().any(|l| l.split_whitespace().nth(1) == Some("r--s")), "{lines:?}");
    assert!(lines.iter().any(|l| l.split_whitespace().nth(1) == Some("rw-s")), "{lines:?}");
}

#[test]
fn foreign_and_damaged_files_are_refused_with_the_field() {
    let dir = ShmDir::new("foreign");
    let path = dir.0.join("bus");
    std::fs::write(&path, b"hello, not a bus").unwrap();
    let e = Subscriber::open(&path, &SubscriberOptions::default()).unwrap_err().to_string();
    assert!(e.contains("not a weir bus file") && e.contains("file length"), "{e}");
    // A publisher does not overwrite what is not a bus.
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    let e = Publisher::create(&path, &small()).unwrap_err().to_string();
    assert!(e.contains("magic (offset 0)"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 8192]);
    std::fs::remove_file(&path).unwrap();

    let good = Publisher::create(&path, &small()).unwrap();
    drop(good);
    let bytes = std::fs::read(&path).unwrap();
    for (offset, value, field) in [
        (8usize, 2u64, "layout version (offset 8)"),
        (12, 2, "DBN version (offset 12)"),
        (16, 100, "header length (offset 16)"),
        (24, 5000, "capacity (offset 24)"),
        (24, 1 << 20, "file length"),
    ] {
        let mut bad = bytes.clone();
        let width = if offset < 16 { 4 } else { 8 };
        bad[offset..offset + width].copy_from_slice(&value.to_le_bytes()[..width]);
        std::fs::write(&path, &bad).unwrap();
        let e = Subscriber::open(&path, &SubscriberOptions::default()).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    let missing = dir.0.join("nope");
    assert!(matches!(Subscriber::open(&missing, &SubscriberOptions::default()), Err(BusError::Missing(_))));
    assert!(matches!(
        Publisher::create(&missing, &PublisherOptions { capacity: 5000, ..small() }),
        Err(BusError::Capacity(5000))
    ));
}

#[test]
fn a_restarted_producer_supersedes_the_old_file_and_is_followed() {
    let dir = ShmDir::new("restart");
    let path = dir.0.join("bus");
    let mut first = Publisher::create(&path, &small()).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    first.publish(&trade(1));
    let second_opts = small();
    let mut second = Publisher::create(&path, &second_opts).unwrap();
    assert_eq!(second.epoch(), 2);
    // The old producer learns it at its next heartbeat.
    first.tick();
    second.tick();
    assert!(first.superseded() && !second.superseded());
    second.publish(&trade(2));
    // The old file still yields what it had, then says it was superseded.
    assert!(matches!(sub.poll(), Next::Record(d) if d.seq == 0));
    assert!(matches!(sub.poll(), Next::Empty));
    assert_eq!(sub.producer(), ProducerState::Superseded);
    let info = sub.reopen().unwrap().expect("a new file");
    assert_eq!(info.epoch, 2);
    // Joined at the oldest record of the new epoch.
    match sub.poll() {
        Next::Record(d) => assert_eq!((d.seq, d.record.get::<TradeMsg>().unwrap().price), (0, 2_000_000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(sub.stats().reopens, 1);
    assert_eq!(sub.stats().received, 2);
    assert!(sub.reopen().unwrap().is_none());
    drop(first);
    // The first producer's drop must not end the second's stream.
    assert_eq!(sub.producer(), ProducerState::Live);
    // Unread records when the next producer takes over: not `Superseded` until they are read;
    // and a reopen before that counts them lost.
    for i in 0..5 {
        second.publish(&trade(i));
    }
    let _third = Publisher::create(&path, &second_opts).unwrap();
    assert_ne!(sub.producer(), ProducerState::Superseded);
    assert_eq!(sub.reopen().unwrap().map(|i| i.epoch), Some(3));
    let s = sub.stats();
    assert_eq!((s.received, s.lost, s.reopens, s.lost_inexact), (2, 5, 2, false));
}

#[test]
fn a_silent_producer_is_dead_and_a_quiet_one_is_not() {
    let dir = ShmDir::new("heartbeat");
    let path = dir.0.join("bus");
    let opts = PublisherOptions { heartbeat_interval: Duration::from_millis(5), ..small() };
    let mut publisher = Publisher::create(&path, &opts).unwrap();
    let stale = SubscriberOptions { stale_after: Some(Duration::from_millis(100)), ..SubscriberOptions::default() };
    let sub = Subscriber::open(&path, &stale).unwrap();
    // Ticking but not publishing: quiet.
    let until = std::time::Instant::now() + Duration::from_millis(250);
    while std::time::Instant::now() < until {
        publisher.tick();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        matches!(sub.producer(), ProducerState::Quiet { idle_ns } if idle_ns > 100_000_000),
        "{:?}",
        sub.producer()
    );
    // Not ticking: dead.
    std::thread::sleep(Duration::from_millis(250));
    assert!(matches!(sub.producer(), ProducerState::Dead { heartbeat_age_ns } if heartbeat_age_ns > 100_000_000));
    publisher.tick();
    assert!(matches!(sub.producer(), ProducerState::Quiet { .. }));
}

#[test]
fn a_waiting_subscriber_is_woken_by_the_publisher() {
    let dir = ShmDir::new("wait");
    let path = dir.0.join("bus");
    let mut publisher = Publisher::create(&path, &small()).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    let waiter = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        loop {
            if let Next::Record(d) = sub.poll() {
                return (d.seq, start.elapsed());
            }
            sub.wait(Duration::from_secs(10));
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    publisher.publish(&trade(5));
    publisher.tick();
    let (seq, waited) = waiter.join().unwrap();
    assert_eq!(seq, 0);
    assert!(waited < Duration::from_secs(5), "woken by the futex, not the 10 s timeout: {waited:?}");
}

#[test]
fn records_shorter_than_their_type_are_refused_and_never_delivered() {
    let dir = ShmDir::new("short");
    let path = dir.0.join("bus");
    let mut publisher = Publisher::create(&path, &small()).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    // A 16-byte "MBP-1": a header alone.
    let mut short = [0u8; 16];
    short[0] = 4;
    short[1] = rtype::MBP_1;
    assert!(publisher.publish_bytes(&short).is_err());
    assert!(publisher.publish_bytes(&[3, 0, 0]).is_err());
    // Through the ring anyway (a foreign or buggy writer): counted, skipped, not delivered.
    publisher.publish_entry_unchecked(&short);
    publisher.publish(&trade(1));
    assert!(matches!(sub.poll(), Next::Corrupt { what: "record shorter than its rtype", .. }));
    // The record after it says one was lost (an autotrader marks its books).
    assert!(matches!(sub.poll(), Next::Record(d) if d.seq == 1 && d.lost == 1));
    let s = sub.stats();
    assert_eq!((s.received, s.lost, s.corrupt), (1, 1, 1));
}

#[test]
fn a_late_reopen_counts_what_the_new_producer_wrote_before_the_oldest_record() {
    let dir = ShmDir::new("late-reopen");
    let path = dir.0.join("bus");
    let mut first = Publisher::create(&path, &small()).unwrap();
    let mut sub = Subscriber::open(&path, &SubscriberOptions::default()).unwrap();
    first.publish(&trade(0));
    let mut second = Publisher::create(&path, &small()).unwrap();
    // The new producer wraps its 4 KiB ring many times before the consumer notices.
    for i in 0..1000 {
        second.publish(&trade(i));
    }
    second.finish();
    assert!(matches!(sub.poll(), Next::Record(d) if d.seq == 0));
    assert_eq!(sub.producer(), ProducerState::Superseded);
    sub.reopen().unwrap().expect("the new file");
    let mut first_lost = None;
    while let Next::Record(d) = sub.poll() {
        first_lost.get_or_insert(d.lost);
    }
    let s = sub.stats();
    assert_eq!(s.received + s.lost, 1 + 1000, "{s:?}");
    assert!(first_lost.unwrap() > 900, "the first delivery after the reopen reports the gap: {first_lost:?}");
    assert!(!s.lost_inexact);
    assert_eq!(sub.producer(), ProducerState::Ended);
}
