//! gzip inflate through Intel ISA-L (`igzip`): the fastest inflate available here (about 1.75×
//! zlib-rs on this project's machines; see `docs/capture.md`). Behind the `isal` feature, which
//! needs Debian's `libisal-dev`.
//!
//! The C side (`isal.c`) keeps `struct inflate_state` opaque, so this module does not depend on its
//! layout. Semantics match `flate2::read::MultiGzDecoder`: members are decoded one after another,
//! and a stream cut short yields every byte before the cut, then an `UnexpectedEof` error.

use std::ffi::c_int;
use std::io::{self, Read};
use std::ptr::NonNull;

#[repr(C)]
struct State {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    fn weir_isal_new() -> *mut State;
    fn weir_isal_free(s: *mut State);
    fn weir_isal_reset(s: *mut State);
    fn weir_isal_member_done(s: *const State) -> c_int;
    fn weir_isal_inflate(
        s: *mut State,
        input: *const u8,
        in_len: u32,
        consumed: *mut u32,
        out: *mut u8,
        out_len: u32,
        produced: *mut u32,
    ) -> c_int;
}

const IN_BUF: usize = 1 << 20;

/// A multi-member gzip decoder over any reader.
pub(crate) struct IsalGzDecoder<R> {
    inner: R,
    state: NonNull<State>,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes of the current member consumed or produced: a member that has started must finish.
    in_member: bool,
    /// Corruption found while also producing output: reported on the next call.
    failed: Option<i32>,
}

// SAFETY: the state is owned exclusively by this value and ISA-L keeps no thread-local state.
unsafe impl<R: Send> Send for IsalGzDecoder<R> {}

impl<R: Read> IsalGzDecoder<R> {
    pub(crate) fn new(inner: R) -> io::Result<Self> {
        // SAFETY: no preconditions; returns null only when allocation fails.
        let state = NonNull::new(unsafe { weir_isal_new() })
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "ISA-L inflate state"))?;
        Ok(IsalGzDecoder {
            inner,
            state,
            input: vec![0; IN_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            in_member: false,
            failed: None,
        })
    }

    /// Reads more compressed input: at least one byte, unless the input is over or the buffer full.
    fn refill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        while self.end < self.input.len() && !self.eof {
            match self.inner.read(&mut self.input[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for IsalGzDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let out_len = out.len().min(u32::MAX as usize) as u32;
        if let Some(rc) = self.failed {
            return Err(corrupt(rc));
        }
        loop {
            if self.start == self.end {
                self.refill()?;
            }
            // SAFETY: `state` is a live state from `weir_isal_new`.
            if unsafe { weir_isal_member_done(self.state.as_ptr()) } != 0 {
                if self.start == self.end && self.eof {
                    return Ok(0);
                }
                // Another member follows.
                // SAFETY: as above.
                unsafe { weir_isal_reset(self.state.as_ptr()) };
                self.in_member = false;
            }
            if self.start == self.end && self.eof {
                return if self.in_member { Err(cut_short()) } else { Ok(0) };
            }
            let (mut consumed, mut produced) = (0u32, 0u32);
            let input = &self.input[self.start..self.end];
            // SAFETY: `state` is live; the input and output pointers are valid for the lengths given
            // for the duration of the call, and ISA-L writes only within `out[..out_len]`.
            let rc = unsafe {
                weir_isal_inflate(
                    self.state.as_ptr(),
                    input.as_ptr(),
                    input.len() as u32,
                    &mut consumed,
                    out.as_mut_ptr(),
                    out_len,
                    &mut produced,
                )
            };
            self.start += consumed as usize;
            if consumed > 0 || produced > 0 {
                self.in_member = true;
            }
            if rc < 0 {
                // Whatever came out before the fault is delivered; the fault is reported next time.
                self.failed = Some(rc);
                return if produced > 0 { Ok(produced as usize) } else { Err(corrupt(rc)) };
            }
            if produced > 0 {
                return Ok(produced as usize);
            }
            if consumed == 0 && self.start < self.end {
                // Stalled with input in hand: it needs more at once. Compact and read more; if no more
                // comes, the stream was cut.
                self.input.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                let had = self.end;
                self.refill()?;
                if self.end == had {
                    return Err(cut_short());
                }
            }
        }
    }
}

fn corrupt(rc: i32) -> io::Error {
    let what = match rc {
        -6 => "checksum mismatch",
        -4 | -5 => "bad gzip header",
        _ => "invalid deflate data",
    };
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt gzip stream: {what} (ISA-L status {rc})"))
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "gzip stream ends inside a member")
}

impl<R> Drop for IsalGzDecoder<R> {
    fn drop(&mut self) {
        // SAFETY: the state came from `weir_isal_new` and is freed once.
        unsafe { weir_isal_free(self.state.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn inflate(bytes: &[u8]) -> (Vec<u8>, Option<io::Error>) {
        let mut d = IsalGzDecoder::new(bytes).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match d.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn matches_flate2_on_multi_member_and_cut_streams() {
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x3f).collect();
        let mut two = gz(&data[..700_000]);
        two.extend_from_slice(&gz(&data[700_000..]));
        let (out, err) = inflate(&two);
        assert!(err.is_none());
        assert_eq!(out, data);
        for cut in [10, 5_000, two.len() / 3, two.len() - 3] {
            let (out, err) = inflate(&two[..cut]);
            assert!(err.is_some(), "cut at {cut}");
            assert!(data.starts_with(&out), "cut at {cut}: output must be a prefix");
            let mut reference = Vec::new();
            let _ = flate2::read::MultiGzDecoder::new(&two[..cut]).read_to_end(&mut reference);
            // Nothing that flate2 recovers is lost here (ISA-L may flush a little more).
            assert!(out.len() + 65_536 >= reference.len(), "cut at {cut}: {} vs {}", out.len(), reference.len());
        }
        let mut corrupt = two.clone();
        corrupt[20_000] ^= 0xff;
        let (out, err) = inflate(&corrupt);
        assert!(
            err.is_some(),
            "corrupt input not reported; {} of {} bytes out, equal: {}",
            out.len(),
            data.len(),
            out == data
        );
        assert_eq!(inflate(&[]).0, b"");
    }
}
