//! Parallel, deterministic gzip (pigz's idea): the input is cut into fixed 1 MiB chunks, each
//! compressed on its own (raw deflate, ending in a sync flush, the last one in the final block),
//! and the pieces are concatenated behind one gzip header with one CRC-32 and size trailer.
//!
//! The output depends only on the input, the level and the chunk size — never on the number of
//! threads or the machine — so a layer's digest stays reproducible while every core compresses.
//! Memory is bounded: at most `threads` chunks (and their outputs) are held at once.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per independently compressed chunk (part of the output format: changing it
/// changes digests).
pub const CHUNK: usize = 1 << 20;

/// A `Write` that gzips into `inner` using `threads` threads.
pub struct ParallelGz<W: Write> {
    inner: W,
    level: u32,
    threads: usize,
    pending: Vec<Vec<u8>>,
    current: Vec<u8>,
    /// Emptied input buffers and output buffers, reused: fresh megabyte buffers cost a page fault
    /// per 4 KiB, which was most of the time spent here.
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
    crc: crc32fast::Hasher,
    size: u64,
    header_written: bool,
}

impl<W: Write> ParallelGz<W> {
    /// A writer at gzip `level` on `threads` threads (at least 1).
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        Self {
            inner,
            level,
            threads: threads.max(1),
            pending: Vec::new(),
            current: Vec::with_capacity(CHUNK),
            spare_in: Vec::new(),
            spare_out: Vec::new(),
            crc: crc32fast::Hasher::new(),
            size: 0,
            header_written: false,
        }
    }

    /// The number of threads worth using here.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // magic, deflate, no flags, mtime 0, XFL (4 = fastest, 2 = best), OS unknown (255)
            let xfl = match self.level {
                0 | 1 => 4,
                9 => 2,
                _ => 0,
            };
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Compresses the pending chunks in parallel and writes them in order. `last` marks the final
    /// chunk of the stream (it ends the deflate stream).
    fn drain(&mut self, last: bool) -> io::Result<()> {
        self.header()?;
        let mut chunks = std::mem::take(&mut self.pending);
        let n = chunks.len();
        let level = self.level;
        let mut outs: Vec<Vec<u8>> = (0..n)
            .map(|_| self.spare_out.pop().unwrap_or_default())
            .collect();
        let results: Vec<io::Result<()>> = if n <= 1 {
            chunks
                .iter()
                .zip(outs.iter_mut())
                .map(|(c, o)| deflate_chunk(c, level, last, o))
                .collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = chunks
                    .iter()
                    .zip(outs.iter_mut())
                    .enumerate()
                    .map(|(i, (c, o))| {
                        s.spawn(move || deflate_chunk(c, level, last && i + 1 == n, o))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(io::Error::other("compression thread panicked"))
                        })
                    })
                    .collect()
            })
        };
        for (r, o) in results.into_iter().zip(outs) {
            r?;
            self.inner.write_all(&o)?;
            self.spare_out.push(o);
        }
        for mut c in chunks.drain(..) {
            c.clear();
            self.spare_in.push(c);
        }
        Ok(())
    }

    /// Ends the stream (last chunk, CRC-32 and size trailer) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let cur = std::mem::take(&mut self.current);
        self.pending.push(cur);
        self.drain(true)?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE: the input size modulo 2^32 (RFC 1952)
        self.inner
            .write_all(&((self.size & 0xffff_ffff) as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Bytes per sub-block: each is looked at on its own and sent stored when it does not compress
/// (random or already-compressed data), so the CPU goes only where it pays.
const SUB: usize = 64 << 10;
/// How much of a sub-block the compressibility probe compresses.
const PROBE: usize = 4 << 10;

/// Whether `sub` looks incompressible: its first [`PROBE`] bytes, deflated alone at `level`,
/// save less than 3%. Deterministic (it depends on the bytes only).
fn incompressible(sub: &[u8], level: u32) -> io::Result<bool> {
    if sub.len() < 512 || level == 0 {
        return Ok(false);
    }
    let probe = &sub[..sub.len().min(PROBE)];
    let mut c = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(probe.len() + probe.len() / 8 + 64);
    run(&mut c, probe, &mut out, FlushCompress::Finish)?;
    Ok(out.len() * 100 >= probe.len() * 97)
}

/// Feeds all of `input` with `flush`, growing `out` as needed.
fn run(c: &mut Compress, input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> io::Result<()> {
    let start = c.total_in();
    loop {
        let consumed = (c.total_in() - start) as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = c
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = (c.total_in() - start) as usize == input.len();
        match (status, flush) {
            (Status::StreamEnd, _) => return Ok(()),
            // with no flush, done once the input is in; with a sync flush, once the output
            // also had room to spare (the flush marker was written)
            (_, FlushCompress::None) if all_in => return Ok(()),
            (_, FlushCompress::Sync) if all_in && out.len() < out.capacity() => return Ok(()),
            _ => {}
        }
    }
}

/// Raw deflate of one chunk: a sync flush at its end (byte-aligned, so pieces concatenate), or
/// the final block when `last`. Runs of sub-blocks that do not compress are written as stored
/// blocks; each run that does gets its own compressor (history restarts after stored data).
fn deflate_chunk(input: &[u8], level: u32, last: bool, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.reserve(input.len() + input.len() / 8 + 1024);
    if input.is_empty() {
        if last {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]); // final empty stored block
        }
        return Ok(());
    }
    // (stored?, range) runs of consecutive sub-blocks with the same decision
    let mut runs: Vec<(bool, std::ops::Range<usize>)> = Vec::new();
    for (k, sub) in input.chunks(SUB).enumerate() {
        let stored = incompressible(sub, level)?;
        let range = k * SUB..k * SUB + sub.len();
        match runs.last_mut() {
            Some((st, r)) if *st == stored => r.end = range.end,
            _ => runs.push((stored, range)),
        }
    }
    let n = runs.len();
    for (i, (stored, range)) in runs.into_iter().enumerate() {
        let data = &input[range];
        let final_run = last && i + 1 == n;
        if stored {
            let pieces: Vec<&[u8]> = data.chunks(u16::MAX as usize).collect();
            let m = pieces.len();
            for (j, piece) in pieces.into_iter().enumerate() {
                let len = piece.len() as u16;
                // byte-aligned here: BFINAL + BTYPE 00 in the low bits, then LEN, NLEN, bytes
                out.push(u8::from(final_run && j + 1 == m));
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&(!len).to_le_bytes());
                out.extend_from_slice(piece);
            }
        } else {
            let mut c = Compress::new(Compression::new(level), false);
            let flush = if final_run {
                FlushCompress::Finish
            } else {
                FlushCompress::Sync
            };
            run(&mut c, data, out, flush)?;
        }
    }
    Ok(())
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.current.len();
        let n = buf.len().min(room);
        self.current.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        if self.current.len() == CHUNK {
            let next = self
                .spare_in
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK));
            let full = std::mem::replace(&mut self.current, next);
            self.pending.push(full);
            if self.pending.len() >= self.threads * 2 {
                self.drain(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunk boundaries are part of the format: flushing never cuts a chunk short.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // half compressible, half random
                if (i / 4096) % 2 == 0 {
                    (i % 251) as u8
                } else {
                    x as u8
                }
            })
            .collect()
    }

    fn gz(input: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut w = ParallelGz::new(Vec::new(), 1, threads);
        for piece in input.chunks(write_size.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn random_data_is_stored_and_text_is_compressed() {
        let mut x = 99u64;
        let random: Vec<u8> = (0..3 * CHUNK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let out = gz(&random, 2, 1 << 16);
        // stored: 5 bytes per 64 KiB block plus flush markers, never the ~5% of static codes
        assert!(
            out.len() < random.len() + random.len() / 500,
            "{}",
            out.len()
        );
        let text: Vec<u8> = (0..CHUNK)
            .flat_map(|i| format!("line {i} of a log\n").into_bytes())
            .take(2 * CHUNK)
            .collect();
        let out = gz(&text, 2, 1 << 16);
        assert!(out.len() < text.len() / 3, "{}", out.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn same_bytes_whatever_the_thread_count_and_write_sizes() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let input = data(len, 7 + len as u64);
            let one = gz(&input, 1, 8192);
            for (threads, ws) in [(2, 1 << 20), (3, 999), (8, 65536)] {
                assert_eq!(gz(&input, threads, ws), one, "len {len} threads {threads}");
            }
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input, "len {len} round trip");
            // and the system gzip agrees (multi-member-free, valid trailer)
            let mut multi = Vec::new();
            flate2::read::MultiGzDecoder::new(&one[..])
                .read_to_end(&mut multi)
                .unwrap();
            assert_eq!(multi.len(), input.len());
        }
    }
}
