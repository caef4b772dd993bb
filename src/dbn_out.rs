//! DBN files: the normalized records of a replay, behind a correct Metadata header.
//!
//! DBN puts the symbol mappings in the header, which comes first, and the symbols are known only
//! at the end of a capture. So the records stream to `OUT.partial` as they are made (no memory
//! held per record), and [`DbnFile::finish`] writes the header, then copies the records behind it,
//! zstd-compressed when the name ends in `.zst`. Records also carry their own
//! `SymbolMappingMsg`s, so a live consumer of the same bytes needs no header at all.

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
    writer: BufWriter<File>,
    error: Option<io::Error>,
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
        Ok(DbnFile {
            by_rtype: [0; 256],
            out: Some(Output {
                path: path.to_owned(),
                partial,
                writer: BufWriter::with_capacity(1 << 20, file),
                error: None,
            }),
        })
    }

    /// Gives up: removes the partial file, writes nothing.
    pub fn abandon(self) {
        if let Some(out) = self.out {
            drop(out.writer);
            let _ = std::fs::remove_file(&out.partial);
        }
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
            writer.into_inner().map_err(|e| io_err(&partial)(e.into_error()))?;
            let metadata = metadata(normalizer);
            let file = File::create(&path).map_err(io_err(&path))?;
            created = true;
            let mut records = File::open(&partial).map_err(io_err(&partial))?;
            let encode_err = |source| DbnFileError::Metadata { path: path.clone(), source };
            if path.extension().is_some_and(|e| e == "zst") {
                let mut z = zstd::Encoder::new(BufWriter::with_capacity(1 << 20, file), 3).map_err(io_err(&path))?;
                MetadataEncoder::new(&mut z).encode(&metadata).map_err(encode_err)?;
                io::copy(&mut records, &mut z).map_err(io_err(&path))?;
                z.finish().map_err(io_err(&path))?.flush().map_err(io_err(&path))?;
            } else {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                MetadataEncoder::new(&mut w).encode(&metadata).map_err(encode_err)?;
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
    let (start, end) = n.time_span().unwrap_or((0, 0));
    let date = |ns: u64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).map(|t| t.date()).unwrap_or(time::Date::MIN)
    };
    let (d0, d1) = (date(start), date(end).next_day().unwrap_or(time::Date::MAX));
    let symbols: Vec<String> = n.symbols().iter().map(|s| s.to_string()).collect();
    let mappings = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| SymbolMapping {
            raw_symbol: s.clone(),
            intervals: vec![MappingInterval { start_date: d0, end_date: d1, symbol: (i + 1).to_string() }],
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
