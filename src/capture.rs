//! Capture files: classic pcap and pcapng, gzip-compressed or not, read as a stream.
//!
//! The format is found from the magic bytes, never from the file name (IEX's own sample files are
//! misnamed). An uncompressed file is memory-mapped and read in place; a gzip file is inflated
//! through a fixed buffer, so a multi-GB `.pcap.gz` never sits in memory.
//!
//! - classic pcap: µs and ns magics, both byte orders;
//! - pcapng: several sections (each with its own byte order), several interfaces, each with its
//!   link type, `if_tsresol` (powers of 10 or 2) and `if_tsoffset`; Enhanced, Simple and obsolete
//!   Packet blocks; every other block skipped by length;
//! - a file cut inside its last record or block ends the stream cleanly and is reported in
//!   [`CaptureStats::truncated_records`]; a record whose captured length is below its original
//!   length is delivered and counted in [`CaptureStats::short_captures`].
//!
//! Why not the `pcap-file` crate: errors here must name the byte offset of the record at fault,
//! a truncated tail must end the stream without losing what came before, and the reader must lend
//! packets straight out of the mapping or inflate buffer. Framing is ~300 lines; we own it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use weir_feeds::frame::LinkType;

#[cfg(feature = "isal")]
mod isal;

/// A record larger than this is not a packet but corruption.
const MAX_RECORD: usize = 16 << 20;
/// Inflate buffer.
const STREAM_BUFFER: usize = 4 << 20;

/// Capture-level errors: the file cannot be read as a capture at all, or stops being one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Uncompressed byte offset reached.
        offset: u64,
        /// The OS error.
        source: io::Error,
    },
    /// The magic bytes are not pcap, pcapng or gzip.
    #[error("{path}: not a capture file: magic bytes {magic} are neither pcap, pcapng nor gzip")]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// The first bytes, in hex.
        magic: String,
    },
    /// A structure inside the capture is impossible; nothing after it can be trusted.
    #[error("{path}: byte {offset}: {what}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Uncompressed byte offset of the record or block at fault.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

/// One captured frame, lent from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture timestamp, ns since the epoch.
    pub ts_ns: i64,
    /// The captured bytes.
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()`).
    pub orig_len: u32,
    /// Link type of the interface it was captured on.
    pub link: LinkType,
    /// Interface index (pcapng), 0 for classic pcap.
    pub interface: u32,
    /// Offset of the record or block in the uncompressed file.
    pub file_offset: u64,
}

/// What the reader counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets delivered.
    pub packets: u64,
    /// Packets whose captured length is below their original length.
    pub short_captures: u64,
    /// Records or blocks cut off by the end of the file (0 or 1).
    pub truncated_records: u64,
    /// pcapng blocks skipped (statistics, name resolution, custom, ...).
    pub skipped_blocks: u64,
    /// Uncompressed bytes consumed.
    pub bytes: u64,
}

/// The container found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// Classic pcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Where the bytes come from: in place, or through a buffer.
trait Source {
    /// Makes at least `n` bytes available at `data()`, unless the input ends first; returns how
    /// many are available.
    fn fill(&mut self, n: usize) -> io::Result<usize>;
    fn data(&self) -> &[u8];
    /// Why the input ended early, if it did (a gzip stream cut short or corrupt, a read error).
    /// The bytes before the fault stay readable.
    fn input_error(&mut self) -> Option<io::Error> {
        None
    }
    /// Consumes `n` available bytes and lends them out; they stay in place until the next `fill`.
    fn take(&mut self, n: usize) -> &[u8];
}

struct Mapped {
    map: memmap2::Mmap,
    pos: usize,
}

impl Source for Mapped {
    #[inline]
    fn fill(&mut self, _n: usize) -> io::Result<usize> {
        Ok(self.map.len() - self.pos)
    }
    #[inline]
    fn data(&self) -> &[u8] {
        &self.map[self.pos..]
    }
    #[inline]
    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.pos;
        self.pos += n;
        &self.map[start..start + n]
    }
}

struct Streamed<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    error: Option<io::Error>,
}

impl<R: Read> Streamed<R> {
    fn new(inner: R, prefix: &[u8]) -> Self {
        let mut buf = vec![0u8; STREAM_BUFFER];
        buf[..prefix.len()].copy_from_slice(prefix);
        Streamed { inner, buf, start: 0, end: prefix.len(), eof: false, error: None }
    }
}

impl<R: Read> Source for Streamed<R> {
    #[inline]
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n || self.eof {
            return Ok(self.end - self.start);
        }
        self.refill(n)
    }
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn input_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
    #[inline]
    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.start;
        self.start += n;
        &self.buf[start..start + n]
    }
}

impl<R: Read> Streamed<R> {
    #[cold]
    fn refill(&mut self, n: usize) -> io::Result<usize> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if n > self.buf.len() {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Keep what was read; the reader reports the cut as a truncated record.
                    self.eof = true;
                    self.error = Some(e);
                    break;
                }
            }
        }
        Ok(self.end)
    }
}

#[derive(Clone, Copy, Debug)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    #[inline]
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(v),
            Endian::Big => u16::from_be_bytes(v),
        }
    }
    #[inline]
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(v),
            Endian::Big => u32::from_be_bytes(v),
        }
    }
}

/// Timestamp units → ns.
#[derive(Clone, Copy, Debug)]
enum TsScale {
    Mul(i64),
    Div(i64),
    Shift(u32),
}

impl TsScale {
    /// From a pcapng `if_tsresol` byte: 10^-n, or 2^-n when the top bit is set. `None` for
    /// 10^-n finer than 10^-18, which no 64-bit timestamp can use.
    fn from_tsresol(r: u8) -> Option<Self> {
        Some(if r & 0x80 != 0 {
            TsScale::Shift(u32::from(r & 0x7f))
        } else if r <= 9 {
            TsScale::Mul(10i64.pow(9 - u32::from(r)))
        } else if r <= 18 {
            TsScale::Div(10i64.pow(u32::from(r) - 9))
        } else {
            return None;
        })
    }
    #[inline]
    fn to_ns(self, units: u64) -> i64 {
        match self {
            TsScale::Mul(m) => (units as i64).wrapping_mul(m),
            TsScale::Div(d) => (units / d as u64) as i64,
            TsScale::Shift(n) => ((u128::from(units) * 1_000_000_000) >> n) as i64,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    scale: TsScale,
    offset_ns: i64,
}

enum Framing {
    Pcap { endian: Endian, nanos: bool, link: LinkType },
    PcapNg { endian: Endian, interfaces: Vec<Interface> },
}

struct Reader<S> {
    src: S,
    framing: Framing,
    offset: u64,
    stats: CaptureStats,
    done: bool,
    /// How the input ended, when it ended inside a record.
    tail: Option<String>,
}

type ReadResult<'a> = Result<Option<Packet<'a>>, (u64, String)>;

impl<S: Source> Reader<S> {
    /// Nothing after an impossible structure can be framed: the capture ends here.
    #[cold]
    fn fail<T>(&mut self, offset: u64, what: String) -> Result<T, (u64, String)> {
        self.done = true;
        Err((offset, what))
    }

    fn io(&self, e: io::Error) -> (u64, String) {
        (self.offset, format!("read error: {e}"))
    }

    /// The input ended on a record boundary: a clean end, unless reading failed there (a gzip
    /// stream cut or corrupt exactly between records is still a cut).
    fn end_of_input(&mut self) -> ReadResult<'_> {
        if let Some(e) = self.src.input_error() {
            self.stats.truncated_records += 1;
            self.tail = Some(format!("input ends early at uncompressed byte {}: {e}", self.offset));
        }
        self.done = true;
        Ok(None)
    }

    /// Marks a record cut by the end of the file.
    fn truncated(&mut self) -> ReadResult<'_> {
        self.stats.truncated_records += 1;
        self.done = true;
        self.tail = Some(match self.src.input_error() {
            Some(e) => {
                format!("input ends early at uncompressed byte {}: {e}", self.offset + self.src.data().len() as u64)
            }
            None => format!("file ends inside the record at byte {}", self.offset),
        });
        Ok(None)
    }

    #[inline]
    fn next_packet(&mut self) -> ReadResult<'_> {
        if self.done {
            return Ok(None);
        }
        match self.framing {
            Framing::Pcap { endian, nanos, link } => self.next_pcap(endian, nanos, link),
            Framing::PcapNg { .. } => self.next_pcapng(),
        }
    }

    #[inline]
    fn next_pcap(&mut self, endian: Endian, nanos: bool, link: LinkType) -> ReadResult<'_> {
        let have = self.src.fill(16).map_err(|e| self.io(e))?;
        if have == 0 {
            return self.end_of_input();
        }
        if have < 16 {
            return self.truncated();
        }
        let h = &self.src.data()[..16];
        let (sec, frac) = (endian.u32(h, 0), endian.u32(h, 4));
        let (caplen, orig_len) = (endian.u32(h, 8) as usize, endian.u32(h, 12));
        if caplen > MAX_RECORD {
            return self.fail(self.offset, format!("record captured length {caplen} is implausible"));
        }
        let have = self.src.fill(16 + caplen).map_err(|e| self.io(e))?;
        if have < 16 + caplen {
            return self.truncated();
        }
        let ts_ns = i64::from(sec) * 1_000_000_000 + i64::from(frac) * if nanos { 1 } else { 1000 };
        let file_offset = self.offset;
        self.offset += (16 + caplen) as u64;
        self.stats.packets += 1;
        if (caplen as u64) < u64::from(orig_len) {
            self.stats.short_captures += 1;
        }
        let data = &self.src.take(16 + caplen)[16..];
        Ok(Some(Packet { ts_ns, data, orig_len, link, interface: 0, file_offset }))
    }

    fn next_pcapng(&mut self) -> ReadResult<'_> {
        // Blocks are looked at in place; only a packet block is taken out and lent.
        let (len, data_at, caplen, packet) = loop {
            let have = self.src.fill(12).map_err(|e| self.io(e))?;
            if have == 0 {
                return self.end_of_input();
            }
            if have < 12 {
                return self.truncated();
            }
            let d = self.src.data();
            if d[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                // A new section: its byte order comes from its own magic.
                let endian = match &d[8..12] {
                    [0x4d, 0x3c, 0x2b, 0x1a] => Endian::Little,
                    [0x1a, 0x2b, 0x3c, 0x4d] => Endian::Big,
                    other => {
                        return self
                            .fail(self.offset, format!("section header byte-order magic {other:02x?} is invalid"));
                    }
                };
                self.framing = Framing::PcapNg { endian, interfaces: Vec::new() };
            }
            let Framing::PcapNg { endian, .. } = &self.framing else {
                return Ok(None);
            };
            let endian = *endian;
            let d = self.src.data();
            let block_type = endian.u32(d, 0);
            let len = endian.u32(d, 4) as usize;
            if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD {
                return self
                    .fail(self.offset, format!("pcapng block type 0x{block_type:08x} has invalid length {len}"));
            }
            let have = self.src.fill(len).map_err(|e| self.io(e))?;
            if have < len {
                return self.truncated();
            }
            let trailing = endian.u32(self.src.data(), len - 4) as usize;
            if trailing != len {
                let at = self.offset;
                return self.fail(
                    at,
                    format!(
                        "pcapng block type 0x{block_type:08x}: length {len} at its start but {trailing} at its end"
                    ),
                );
            }
            let Framing::PcapNg { interfaces, .. } = &mut self.framing else {
                return Ok(None);
            };
            let block_offset = self.offset;
            let body = &self.src.data()[8..len - 4];
            match block_type {
                6 | 2 => {
                    if body.len() < 20 {
                        return self.fail(block_offset, "packet block shorter than its fixed fields".into());
                    }
                    let interface = if block_type == 6 { endian.u32(body, 0) } else { u32::from(endian.u16(body, 0)) };
                    let units = (u64::from(endian.u32(body, 4)) << 32) | u64::from(endian.u32(body, 8));
                    let caplen = endian.u32(body, 12) as usize;
                    let orig_len = endian.u32(body, 16);
                    if 20 + caplen > body.len() {
                        return self
                            .fail(block_offset, format!("packet block captured length {caplen} exceeds the block"));
                    }
                    let Some(iface) = interfaces.get(interface as usize).copied() else {
                        return self.fail(
                            block_offset,
                            format!("packet block names interface {interface}, which was never described"),
                        );
                    };
                    let ts_ns = iface.scale.to_ns(units).saturating_add(iface.offset_ns);
                    break (
                        len,
                        28,
                        caplen,
                        Packet { ts_ns, data: &[], orig_len, link: iface.link, interface, file_offset: block_offset },
                    );
                }
                3 => {
                    if body.len() < 4 {
                        return self.fail(block_offset, "simple packet block shorter than 16 bytes".into());
                    }
                    let orig_len = endian.u32(body, 0);
                    let caplen = (orig_len as usize).min(body.len() - 4);
                    let Some(iface) = interfaces.first().copied() else {
                        return self.fail(block_offset, "simple packet block before any interface description".into());
                    };
                    break (
                        len,
                        12,
                        caplen,
                        Packet {
                            ts_ns: 0,
                            data: &[],
                            orig_len,
                            link: iface.link,
                            interface: 0,
                            file_offset: block_offset,
                        },
                    );
                }
                1 => {
                    if body.len() < 8 {
                        return self.fail(block_offset, "interface description block shorter than 20 bytes".into());
                    }
                    match parse_idb(endian, body) {
                        Ok(iface) => interfaces.push(iface),
                        Err(what) => return self.fail(block_offset, what),
                    }
                }
                0x0A0D_0D0A => {}
                _ => self.stats.skipped_blocks += 1,
            }
            self.src.take(len);
            self.offset += len as u64;
        };
        self.offset += len as u64;
        self.stats.packets += 1;
        if (caplen as u64) < u64::from(packet.orig_len) {
            self.stats.short_captures += 1;
        }
        let block = self.src.take(len);
        Ok(Some(Packet { data: &block[data_at..data_at + caplen], ..packet }))
    }
}

/// An Interface Description Block body: link type, then options (`if_tsresol`, `if_tsoffset`).
fn parse_idb(endian: Endian, body: &[u8]) -> Result<Interface, String> {
    let link = LinkType::from_raw(u32::from(endian.u16(body, 0)));
    let mut iface = Interface { link, scale: TsScale::Mul(1000), offset_ns: 0 };
    let mut opts = &body[8..];
    while opts.len() >= 4 {
        let (code, olen) = (endian.u16(opts, 0), usize::from(endian.u16(opts, 2)));
        if code == 0 || opts.len() < 4 + olen {
            break;
        }
        let val = &opts[4..4 + olen];
        match (code, val) {
            (9, &[r]) => {
                iface.scale =
                    TsScale::from_tsresol(r).ok_or_else(|| format!("interface if_tsresol {r} is unsupported"))?
            }
            (14, &[a, b, c, d, e, f, g, h]) => {
                let v = [a, b, c, d, e, f, g, h];
                let secs = match endian {
                    Endian::Little => i64::from_le_bytes(v),
                    Endian::Big => i64::from_be_bytes(v),
                };
                iface.offset_ns = secs.saturating_mul(1_000_000_000);
            }
            _ => {}
        }
        opts = opts.get(4 + ((olen + 3) & !3)..).unwrap_or(&[]);
    }
    Ok(iface)
}

fn framing_from_magic(magic: [u8; 4]) -> Option<Framing> {
    let pcap = |endian, nanos| Framing::Pcap { endian, nanos, link: LinkType::Ethernet };
    Some(match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => pcap(Endian::Little, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => pcap(Endian::Big, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => pcap(Endian::Little, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => pcap(Endian::Big, true),
        [0x0a, 0x0d, 0x0d, 0x0a] => Framing::PcapNg { endian: Endian::Little, interfaces: Vec::new() },
        _ => return None,
    })
}

fn reader<S: Source>(mut src: S, path: &Path, magic: [u8; 4]) -> Result<Reader<S>, CaptureError> {
    let Some(mut framing) = framing_from_magic(magic) else {
        return Err(CaptureError::NotACapture { path: path.to_owned(), magic: hex(&magic) });
    };
    let mut offset = 0;
    if let Framing::Pcap { endian, link, .. } = &mut framing {
        let have = src.fill(24).map_err(|e| CaptureError::Io { path: path.to_owned(), offset: 0, source: e })?;
        if have < 24 {
            return Err(CaptureError::Malformed {
                path: path.to_owned(),
                offset: 0,
                what: "pcap global header is cut short".into(),
            });
        }
        let header = src.take(24);
        // The upper bits of the link-type word carry FCS information.
        *link = LinkType::from_raw(endian.u32(header, 20) & 0x0fff_ffff);
        offset = 24;
    }
    Ok(Reader { src, framing, offset, stats: CaptureStats::default(), done: false, tail: None })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

enum Inner {
    Mapped(Reader<Mapped>),
    Streamed(Box<Reader<Streamed<Box<dyn Read + Send>>>>),
}

/// Reads packets from a capture file. See the module docs.
pub struct CaptureReader {
    inner: Inner,
    path: PathBuf,
    container: Container,
    gzip: bool,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("container", &self.container)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl CaptureReader {
    /// Opens a capture, finding its format from its first bytes. An uncompressed file is mapped;
    /// a gzip file is inflated as it is read.
    ///
    /// The file must not be modified or truncated while the reader is open (it is memory-mapped).
    /// For a file still being written, use [`CaptureReader::from_reader`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let io_err = |e| CaptureError::Io { path: path.to_owned(), offset: 0, source: e };
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(io_err)?;
        if n < 4 || magic[..2] == [0x1f, 0x8b] || !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            // gzip, a pipe, or too short to be anything: the streaming path says which.
            return Self::from_reader(path, Box::new(io::Cursor::new(magic[..n].to_vec()).chain(file)));
        }
        // SAFETY: `Mmap::map` makes a shared, read-only mapping; the slices lent out of it are sound
        // only while no one modifies or truncates the file. That is a documented requirement of
        // `open` (a capture being replayed must not be written: copy a file still being captured,
        // or read it through `from_reader`).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        let _ = map.advise(memmap2::Advice::Sequential);
        let container = container_of(magic);
        let reader = reader(Mapped { map, pos: 0 }, path, magic)?;
        Ok(CaptureReader { inner: Inner::Mapped(reader), path: path.to_owned(), container, gzip: false })
    }

    /// Reads a capture from any byte stream (a pipe, memory, a fuzzer's input). `name` is used in
    /// error messages.
    pub fn from_reader(name: impl AsRef<Path>, mut input: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let path = name.as_ref();
        let io_err = |e| CaptureError::Io { path: path.to_owned(), offset: 0, source: e };
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut input, &mut magic).map_err(io_err)?;
        // `magic` has been consumed: it becomes the stream buffer's first bytes, or, for gzip, is
        // put back in front of the compressed stream.
        let (mut input, gzip): (Box<dyn Read + Send>, bool) = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            let inflate = gunzip(Box::new(io::Cursor::new(magic[..n].to_vec()).chain(input))).map_err(io_err)?;
            (Box::new(ReadAhead::spawn(inflate).map_err(io_err)?), true)
        } else {
            (input, false)
        };
        let n = if gzip { read_up_to(&mut input, &mut magic).map_err(io_err)? } else { n };
        let inside = if gzip { " (inside gzip)" } else { "" };
        if n == 0 {
            let magic = if gzip { "(empty gzip stream)" } else { "(empty file)" };
            return Err(CaptureError::NotACapture { path: path.to_owned(), magic: magic.into() });
        }
        if n < 4 {
            return Err(CaptureError::NotACapture {
                path: path.to_owned(),
                magic: format!("{}{inside}", hex(&magic[..n])),
            });
        }
        let src = Streamed::new(input, &magic);
        let reader = reader(src, path, magic).map_err(|e| match e {
            CaptureError::NotACapture { path, magic } => {
                CaptureError::NotACapture { path, magic: format!("{magic}{inside}") }
            }
            other => other,
        })?;
        Ok(CaptureReader {
            inner: Inner::Streamed(Box::new(reader)),
            path: path.to_owned(),
            container: container_of(magic),
            gzip,
        })
    }

    /// The next packet; `Ok(None)` at the end (a truncated last record also ends the stream and is
    /// counted in [`CaptureStats::truncated_records`]). After an error the capture is over: every
    /// later call returns `Ok(None)`.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let r = match &mut self.inner {
            Inner::Mapped(r) => r.next_packet(),
            Inner::Streamed(r) => r.next_packet(),
        };
        r.map_err(|(offset, what)| CaptureError::Malformed { path: self.path.clone(), offset, what })
    }

    /// Counters so far.
    pub fn stats(&self) -> CaptureStats {
        let (mut stats, offset) = match &self.inner {
            Inner::Mapped(r) => (r.stats, r.offset),
            Inner::Streamed(r) => (r.stats, r.offset),
        };
        stats.bytes = offset;
        stats
    }

    /// Where and why the input ended inside a record, if it did (counted in
    /// [`CaptureStats::truncated_records`]).
    pub fn truncation(&self) -> Option<&str> {
        match &self.inner {
            Inner::Mapped(r) => r.tail.as_deref(),
            Inner::Streamed(r) => r.tail.as_deref(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// pcap or pcapng.
    pub fn container(&self) -> Container {
        self.container
    }

    /// Whether the file is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Size of the file on disk, for progress reports.
    pub fn file_len(&self) -> Option<u64> {
        std::fs::metadata(&self.path).ok().map(|m| m.len())
    }
}

/// A gzip decoder (all members, in order) with the fastest inflate this build has: ISA-L with the
/// `isal` feature, else zlib-rs (via flate2). See [`GZIP_BACKEND`].
pub fn gunzip(compressed: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    #[cfg(feature = "isal")]
    return Ok(Box::new(isal::IsalGzDecoder::new(compressed)?));
    #[cfg(not(feature = "isal"))]
    Ok(Box::new(flate2::read::MultiGzDecoder::new(compressed)))
}

/// Runs a reader (the inflater) on its own thread, a few chunks ahead of the consumer, so that
/// inflating and decoding overlap instead of taking turns.
struct ReadAhead {
    full: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

const READ_AHEAD_CHUNK: usize = 1 << 20;
const READ_AHEAD_CHUNKS: usize = 4;

impl ReadAhead {
    fn spawn(mut inner: Box<dyn Read + Send>) -> io::Result<Self> {
        let (full_tx, full) = std::sync::mpsc::sync_channel(READ_AHEAD_CHUNKS);
        let (empty, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_CHUNKS + 1);
        std::thread::Builder::new().name("weir-inflate".into()).spawn(move || {
            loop {
                let mut buf = empty_rx.try_recv().unwrap_or_default();
                buf.resize(READ_AHEAD_CHUNK, 0);
                let mut n = 0;
                let mut failure = None;
                while n < buf.len() {
                    match inner.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                buf.truncate(n);
                let last = n < READ_AHEAD_CHUNK;
                // A closed channel means the reader was dropped: stop quietly.
                if n > 0 && full_tx.send(Ok(buf)).is_err() {
                    return;
                }
                if let Some(e) = failure {
                    let _ = full_tx.send(Err(e));
                    return;
                }
                if last {
                    return;
                }
            }
        })?;
        Ok(ReadAhead { full, empty, chunk: Vec::new(), pos: 0 })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.full.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.chunk, next);
                    let _ = self.empty.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Which inflate backend gzip captures go through.
pub const GZIP_BACKEND: &str = if cfg!(feature = "isal") { "ISA-L igzip" } else { "zlib-rs (flate2)" };

fn container_of(magic: [u8; 4]) -> Container {
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] { Container::PcapNg } else { Container::Pcap }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
