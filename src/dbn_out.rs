//! DBN files: the normalized records of a replay, behind a correct Metadata header.
//!
//! DBN puts the symbol mappings in the header, which comes first, and the symbols are known only
//! at the end of a capture. So the records stream to `OUT.partial` as they are made (no memory
//! held per record), and [`DbnFile::finish`] writes the header, then copies the records behind it,
//! zstd-compressed when the name ends in `.zst`. Records also carry their own
//! `SymbolMappingMsg`s, so a live consumer of the same bytes needs no header at all.
//!
//! The records are written by a thread of their own ([`ChunkWriter`]): the poll loop fills 1 MiB
//! chunks in memory and hands full ones over, so it makes no system call for its output.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use dbn::encode::dbn::MetadataEncoder;
use dbn::{MappingInterval, Metadata, SType, SymbolMapping};
use weir_feeds::normalize::{Feed, Normalizer, RecordSink, rtype_name};

/// Records counted by type; written to a file when one is open.
#[derive(Debug)]
pub struct DbnFile {
    by_rtype: [u64; 256],
    out: Option<Output>,
}

#[derive(Debug)]
struct Output {
    path: PathBuf,
    partial: PathBuf,
    writer: ChunkWriter,
    error: Option<io::Error>,
}

/// Bytes per chunk handed to the writer thread.
const CHUNK: usize = 1 << 20;
/// Chunks made up front; the poll loop allocates another only when the writer falls this far
/// behind (counted in [`DbnFile::extra_chunks`]).
const CHUNKS: usize = 8;

/// A file written by a thread of its own. The caller appends to a chunk in memory; a full chunk
/// goes to the writer over a bounded channel and comes back empty. The writer polls its channel
/// (sleeping 1 ms when it is empty) rather than blocking on it, so a hand-over never has to wake
/// a sleeping thread: the caller makes no system call, and allocates only when every chunk is in
/// flight.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk: Vec<u8>,
    full: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    extra_chunks: u64,
}

impl ChunkWriter {
    /// Starts the writer thread on `file`.
    pub fn new(file: File, name: &str) -> io::Result<Self> {
        use std::sync::mpsc::{TryRecvError, sync_channel};
        // Room for every chunk there may ever be in flight at once, extras included, so that a
        // hand-over never waits.
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(1024);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(CHUNKS);
        for _ in 1..CHUNKS {
            let _ = empty_tx.try_send(Vec::with_capacity(CHUNK));
        }
        let mut out = BufWriter::with_capacity(CHUNK, file);
        let thread = std::thread::Builder::new().name(format!("weir-write-{name}")).spawn(move || {
            loop {
                match full_rx.try_recv() {
                    Ok(mut chunk) => {
                        out.write_all(&chunk)?;
                        chunk.clear();
                        // A full pool (extra chunks came back): this one is dropped.
                        let _ = empty_tx.try_send(chunk);
                    }
                    Err(TryRecvError::Empty) => std::thread::sleep(std::time::Duration::from_millis(1)),
                    Err(TryRecvError::Disconnected) => return out.flush(),
                }
            }
        })?;
        Ok(ChunkWriter {
            chunk: Vec::with_capacity(CHUNK),
            full: Some(full_tx),
            empty: empty_rx,
            thread: Some(thread),
            extra_chunks: 0,
        })
    }

    /// Appends `bytes` (no system call; see the type's docs).
    #[inline]
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.chunk.len() + bytes.len() > self.chunk.capacity() {
            self.ship()?;
        }
        self.chunk.extend_from_slice(bytes);
        Ok(())
    }

    #[cold]
    fn ship(&mut self) -> io::Result<()> {
        let next = match self.empty.try_recv() {
            Ok(c) => c,
            Err(_) => {
                self.extra_chunks += 1;
                Vec::with_capacity(CHUNK)
            }
        };
        let full = std::mem::replace(&mut self.chunk, next);
        if full.is_empty() {
            return Ok(());
        }
        let sender = self.full.as_ref().ok_or_else(|| io::Error::other("writer finished"))?;
        sender.try_send(full).map_err(|_| io::Error::other("the writer thread stopped (an earlier write failed)"))
    }

    /// Chunks allocated because the writer was behind.
    pub fn extra_chunks(&self) -> u64 {
        self.extra_chunks
    }

    /// Hands over the last chunk, waits for the writer, and returns its first error.
    pub fn finish(mut self) -> io::Result<()> {
        let shipped = self.ship();
        self.full = None;
        let written = match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the writer thread panicked")),
            None => Ok(()),
        };
        written.and(shipped)
    }
}

/// What went wrong writing a DBN file.
#[derive(Debug, thiserror::Error)]
pub enum DbnFileError {
    /// An I/O error, with the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The header could not be encoded.
    #[error("{path}: DBN metadata: {source}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The error.
        source: dbn::Error,
    },
}

impl DbnFile {
    /// Counting only.
    pub fn counting() -> Self {
        DbnFile { by_rtype: [0; 256], out: None }
    }

    /// Records go to `path` (`.dbn`, or `.dbn.zst` for zstd) once [`finish`](Self::finish)ed.
    pub fn create(path: &Path) -> Result<Self, DbnFileError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|source| DbnFileError::Io { path: partial.clone(), source })?;
        let writer =
            ChunkWriter::new(file, "dbn").map_err(|source| DbnFileError::Io { path: partial.clone(), source })?;
        Ok(DbnFile { by_rtype: [0; 256], out: Some(Output { path: path.to_owned(), partial, writer, error: None }) })
    }

    /// Gives up: removes the partial file, writes nothing.
    pub fn abandon(self) {
        if let Some(out) = self.out {
            drop(out.writer);
            let _ = std::fs::remove_file(&out.partial);
        }
    }

    /// Output chunks allocated on the recording thread because the writer thread was behind (0
    /// when it keeps up).
    pub fn extra_chunks(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.writer.extra_chunks())
    }

    /// Records written so far, by `rtype`.
    pub fn by_rtype(&self) -> &[u64; 256] {
        &self.by_rtype
    }

    /// Counts by schema name (`mbo`, `trades`, ...), as `--stats-json` reports them.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (rtype, &n) in self.by_rtype.iter().enumerate() {
            if n > 0 {
                let name = rtype_name(rtype as u8).map_or_else(|| format!("0x{rtype:02x}"), str::to_owned);
                m.insert(name, n);
            }
        }
        m
    }

    /// Writes the file: header (dataset, time span, symbols and their instrument ids from the
    /// normalizer), then the records. Returns the path written, if any.
    pub fn finish<R>(self, normalizer: &Normalizer<R>) -> Result<Option<PathBuf>, DbnFileError> {
        if self.out.is_none() {
            return Ok(None);
        }
        self.finish_with(&metadata(normalizer))
    }

    /// [`finish`](Self::finish) with a header built by the caller (e.g. from the
    /// `SymbolMappingMsg`s of a bus, see [`metadata_from`]).
    pub fn finish_with(self, metadata: &Metadata) -> Result<Option<PathBuf>, DbnFileError> {
        let Some(out) = self.out else { return Ok(None) };
        let Output { path, partial, writer, error } = out;
        let io_err = |p: &Path| {
            let p = p.to_owned();
            move |source| DbnFileError::Io { path: p, source }
        };
        // Whatever happens below, the partial file goes, and a failed output is not left
        // half-written.
        let mut created = false;
        let result = (|| {
            if let Some(e) = error {
                return Err(io_err(&partial)(e));
            }
            writer.finish().map_err(io_err(&partial))?;
            let file = File::create(&path).map_err(io_err(&path))?;
            created = true;
            let mut records = File::open(&partial).map_err(io_err(&partial))?;
            let encode_err = |source| DbnFileError::Metadata { path: path.clone(), source };
            if path.extension().is_some_and(|e| e == "zst") {
                let mut z = zstd::Encoder::new(BufWriter::with_capacity(1 << 20, file), 3).map_err(io_err(&path))?;
                MetadataEncoder::new(&mut z).encode(metadata).map_err(encode_err)?;
                io::copy(&mut records, &mut z).map_err(io_err(&path))?;
                z.finish().map_err(io_err(&path))?.flush().map_err(io_err(&path))?;
            } else {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                MetadataEncoder::new(&mut w).encode(metadata).map_err(encode_err)?;
                io::copy(&mut records, &mut w).map_err(io_err(&path))?;
                w.flush().map_err(io_err(&path))?;
            }
            Ok(())
        })();
        let _ = std::fs::remove_file(&partial);
        if result.is_err() && created {
            let _ = std::fs::remove_file(&path);
        }
        result.map(|()| Some(path))
    }
}

impl RecordSink for DbnFile {
    #[inline]
    fn record<R: dbn::Record>(&mut self, rec: &R) {
        let bytes = rec.as_ref();
        self.by_rtype[usize::from(bytes[1])] += 1;
        if let Some(out) = &mut self.out
            && out.error.is_none()
            && let Err(e) = out.writer.write_all(bytes)
        {
            out.error = Some(e);
        }
    }
}

/// The DBN header for what a normalizer saw: one dataset per feed (`IEXG` when several), records
/// of mixed schemas, raw symbols mapped to the instrument ids assigned in this run.
pub fn metadata<R>(n: &Normalizer<R>) -> Metadata {
    let feeds: Vec<Feed> = n.feeds_seen().collect();
    let dataset = match feeds[..] {
        [one] => one.dataset(),
        _ => "IEXG",
    };
    let symbols = n.symbols().iter().enumerate().map(|(i, s)| (i as u32 + 1, s.to_string()));
    metadata_from(dataset, n.time_span(), symbols)
}

/// The DBN header for records of mixed schemas from `dataset` spanning `span` (first and last
/// timestamp, ns; `None`: no records), with raw symbols mapped to instrument ids (in the order
/// given, which becomes the order of the header's symbols).
pub fn metadata_from(
    dataset: &str,
    span: Option<(u64, u64)>,
    symbols: impl IntoIterator<Item = (u32, String)>,
) -> Metadata {
    let (start, end) = span.unwrap_or((0, 0));
    let date = |ns: u64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).map(|t| t.date()).unwrap_or(time::Date::MIN)
    };
    let (d0, d1) = (date(start), date(end).next_day().unwrap_or(time::Date::MAX));
    let (ids, symbols): (Vec<u32>, Vec<String>) = symbols.into_iter().unzip();
    let mappings = symbols
        .iter()
        .zip(&ids)
        .map(|(s, id)| SymbolMapping {
            raw_symbol: s.clone(),
            intervals: vec![MappingInterval { start_date: d0, end_date: d1, symbol: id.to_string() }],
        })
        .collect();
    Metadata::builder()
        .dataset(dataset)
        .schema(None)
        .start(start)
        .end(NonZeroU64::new(end.saturating_add(1)))
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .symbols(symbols)
        .mappings(mappings)
        .build()
}
