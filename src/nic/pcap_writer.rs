//! A receive queue that writes every frame it passes on to a pcap file (nanosecond timestamps).
//!
//! For recording what a live queue delivered, to replay it later through the `pcap` backend.
//! Writing goes through a buffered file: fine for a drill or a capture session, not for the
//! production hot path. Frames from a kernel socket ([`Framing::UdpPayload`]) are given
//! synthetic Ethernet/IPv4/UDP headers addressed to the queue's group, so the file replays.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::TsResolution;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter as Writer};
use weir_feeds::frame::LinkType;

use super::spec::Group;
use super::{Frame, Framing, QueueStats, RxQueue};

/// Wraps a queue; every frame of every burst is appended to a pcap file.
///
/// The file's link type is the first frame's (Ethernet for UDP payloads). A later frame of another
/// link type cannot go in the same pcap file: it is counted in [`PcapWriter::skipped`] and passed
/// on. A write error stops the writing (the frames still pass on) and is kept for
/// [`PcapWriter::finish`].
#[derive(Debug)]
pub struct PcapWriter<Q> {
    inner: Q,
    out: Output,
}

struct Output {
    /// The file until the first frame says which link type its header carries.
    file: Option<BufWriter<File>>,
    writer: Option<Writer<BufWriter<File>>>,
    path: PathBuf,
    link: Option<LinkType>,
    /// Destination for synthetic headers on UDP payloads.
    group: Group,
    scratch: Vec<u8>,
    written: u64,
    skipped: u64,
    error: Option<String>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").field("path", &self.path).field("written", &self.written).finish_non_exhaustive()
    }
}

impl<Q: RxQueue> PcapWriter<Q> {
    /// Writes `inner`'s frames to `path`. `group` addresses the synthetic headers given to UDP
    /// payloads (unused for link-layer frames).
    pub fn create(inner: Q, path: &Path, group: Group) -> io::Result<Self> {
        let file = File::create(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(PcapWriter {
            inner,
            out: Output {
                file: Some(BufWriter::with_capacity(1 << 20, file)),
                writer: None,
                path: path.to_owned(),
                link: None,
                group,
                scratch: Vec::with_capacity(2048),
                written: 0,
                skipped: 0,
                error: None,
            },
        })
    }

    /// Frames written.
    pub fn written(&self) -> u64 {
        self.out.written
    }

    /// Frames not written because their link type differs from the file's, or because they are
    /// longer than the file's snap length (256 KiB).
    pub fn skipped(&self) -> u64 {
        self.out.skipped
    }

    /// Flushes the file and gives the queue back; the first write error, if any, names the file.
    pub fn finish(self) -> io::Result<Q> {
        let PcapWriter { inner, mut out } = self;
        if let Some(e) = out.error.take() {
            return Err(io::Error::other(e));
        }
        let path = out.path.display().to_string();
        let mut file = match (out.writer.take(), out.file.take()) {
            (Some(w), _) => w.into_writer(),
            // No frame came: an empty pcap file with an Ethernet header still opens.
            (None, Some(f)) => Writer::with_header(f, header(LinkType::Ethernet))
                .map_err(|e| io::Error::other(format!("{path}: {e}")))?
                .into_writer(),
            (None, None) => return Ok(inner),
        };
        file.flush().map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        Ok(inner)
    }
}

impl Output {
    fn write(&mut self, frame: &Frame<'_>) {
        if self.error.is_some() {
            return;
        }
        let (link, data) = match frame.framing {
            Framing::Link(l) => (l, frame.data),
            Framing::UdpPayload => {
                let dst = (self.group.addr.octets(), self.group.port);
                weir_feeds::frame::write_udp_frame(&mut self.scratch, dst, 0, 0, frame.data);
                (LinkType::Ethernet, &self.scratch[..])
            }
        };
        if self.writer.is_none() {
            let Some(file) = self.file.take() else { return };
            match Writer::with_header(file, header(link)) {
                Ok(w) => {
                    self.writer = Some(w);
                    self.link = Some(link);
                }
                Err(e) => {
                    self.error = Some(format!("{}: {e}", self.path.display()));
                    return;
                }
            }
        }
        if self.link != Some(link) || data.len() > SNAPLEN as usize {
            self.skipped += 1;
            return;
        }
        let Some(w) = self.writer.as_mut() else { return };
        let ts = Duration::from_nanos(frame.rx_ns.max(0) as u64);
        match w.write_packet(&PcapPacket::new(ts, data.len() as u32, data)) {
            Ok(_) => self.written += 1,
            Err(e) => self.error = Some(format!("{}: frame {}: {e}", self.path.display(), self.written)),
        }
    }
}

/// The file's snap length: libpcap's maximum. Longer frames are skipped and counted.
const SNAPLEN: u32 = 262_144;

fn header(link: LinkType) -> PcapHeader {
    let raw = match link {
        LinkType::Ethernet => 1,
        LinkType::RawIpv4 => 101,
        LinkType::LinuxSll => 113,
        LinkType::Other(n) => n,
    };
    PcapHeader {
        datalink: DataLink::from(raw),
        ts_resolution: TsResolution::NanoSecond,
        snaplen: SNAPLEN,
        ..PcapHeader::default()
    }
}

impl<Q: RxQueue> RxQueue for PcapWriter<Q> {
    fn rx_burst(&mut self) -> usize {
        let n = self.inner.rx_burst();
        for i in 0..n {
            self.out.write(&self.inner.frame(i));
        }
        n
    }

    #[inline]
    fn frame(&self, i: usize) -> Frame<'_> {
        self.inner.frame(i)
    }

    fn stats(&mut self) -> QueueStats {
        self.inner.stats()
    }

    fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    fn has_pending(&self) -> bool {
        self.inner.has_pending()
    }

    fn source_stats(&self) -> super::SourceStats {
        self.inner.source_stats()
    }

    fn name(&self) -> String {
        format!("{} (written to {})", self.inner.name(), self.out.path.display())
    }

    fn faults(&self) -> Vec<String> {
        let mut f = self.inner.faults();
        f.extend(self.out.error.clone());
        f
    }
}
