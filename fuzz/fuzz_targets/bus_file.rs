//! Bus files (`weir::bus::Subscriber`): a file with a valid header page whose ring counters and
//! data are arbitrary bytes (a corrupt file, a foreign writer, a torn restart) is read without a
//! panic or an out-of-bounds access; and arbitrary bytes as a whole file are refused or read the
//! same way.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use weir::bus::{Next, Subscriber, SubscriberOptions};

const HEADER_LEN: usize = 4096;
const CAPACITY: usize = 4096;

fn read_all(bytes: &[u8]) {
    let path = std::env::temp_dir().join(format!("weir-fuzz-bus-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("temp file");
    f.write_all(bytes).expect("temp file");
    drop(f);
    for opts in [SubscriberOptions::default(), SubscriberOptions { join: weir::bus::Join::Oldest, ..Default::default() }]
    {
        if let Ok(mut sub) = Subscriber::open(&path, &opts) {
            for _ in 0..64 {
                match sub.poll() {
                    Next::Record(d) => {
                        // What is delivered is one whole DBN record.
                        assert_eq!(usize::from(d.bytes()[0]) * 4, d.bytes().len());
                    }
                    Next::Empty => break,
                    Next::Lapped | Next::Corrupt { .. } => {}
                }
            }
            let _ = sub.producer();
            let _ = sub.stats();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // A valid header page, then the fuzz bytes from the ring counters (offset 256) on.
    let mut file = vec![0u8; HEADER_LEN + CAPACITY];
    file[..8].copy_from_slice(b"WEIRBUS\0");
    file[8..12].copy_from_slice(&1u32.to_le_bytes());
    file[12..16].copy_from_slice(&3u32.to_le_bytes());
    file[16..24].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    file[24..32].copy_from_slice(&(CAPACITY as u64).to_le_bytes());
    let n = data.len().min(file.len() - 256);
    file[256..256 + n].copy_from_slice(&data[..n]);
    read_all(&file);
    read_all(data);
});
