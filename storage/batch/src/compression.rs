//! Compression codecs for the records section of a batch, with Kafka's
//! framings so that any Kafka client can read what Goulette writes and the
//! other way round.
//!
//! The codec id lives in bits 0–2 of the batch attributes.
//!
//! | id | codec  | written as                                             | read as                                 |
//! |----|--------|--------------------------------------------------------|-----------------------------------------|
//! | 0  | none   | the records as they are                                | the same                                |
//! | 1  | gzip   | one gzip stream (RFC 1952)                             | the same                                |
//! | 2  | snappy | xerial framing (below)                                 | xerial framing, or one raw snappy block |
//! | 3  | lz4    | one LZ4 frame: independent 64 KiB blocks, no checksums | any LZ4 frame                           |
//! | 4  | zstd   | one zstd frame                                         | the same                                |
//!
//! Snappy in xerial framing (snappy-java's `SnappyOutputStream`, what Kafka's
//! Java client writes and expects), big-endian:
//!
//! ```text
//! magic     8 bytes  0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0
//! version   i32      1
//! compat    i32      1
//! blocks    (length i32, raw snappy block of that length) …, each of at most 32 KiB uncompressed
//! ```
//!
//! librdkafka writes one raw snappy block instead (and reads both), so both
//! are read: input that starts with the magic is xerial, anything else raw.
//!
//! Decompression is bounded by a caller-given limit: however hostile the
//! input, the output never grows past `limit` bytes, and every length the
//! input announces (a snappy block's, an xerial block's) is checked against
//! what is left of the limit before anything is allocated for it. The
//! decoders' own working memory is bounded by the codec, not by the input's
//! claims: for LZ4, buffers for the block size the frame header names (two
//! of 64 KiB for what Kafka's clients write with their defaults, at most
//! 24 MiB for lz4_flex's largest, 8 MiB blocks in linked mode); for gzip, a
//! 32 KiB window; for zstd, the window the frame declares, capped at 2^27
//! bytes (128 MiB, zstd's own default maximum; Kafka's producers use 2 MiB
//! at their default level). All are below the production limit,
//! `MAX_UNCOMPRESSED_LEN`.

use std::io::Read;

use crate::error::{BatchError, Result};

/// The compression applied to a batch's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records stored as they are.
    #[default]
    None,
    /// gzip (deflate), level 6.
    Gzip,
    /// Snappy, in xerial framing.
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard, level 3.
    Zstd,
}

/// Start of snappy-java's stream header.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// The whole header: magic, version 1, compatible version 1.
const XERIAL_HEADER: [u8; 16] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
/// Uncompressed bytes per xerial block (snappy-java's default).
const XERIAL_BLOCK: usize = 32 << 10;
/// Largest window a zstd frame may ask for (log2), zstd's default limit.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

impl Compression {
    /// All codecs, for tests and benchmarks.
    pub const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    /// The 3-bit id stored in batch attributes.
    pub fn id(self) -> u16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec for an attribute id, if it is a known one.
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// Compresses `input`.
    pub(crate) fn compress(self, input: &[u8]) -> Result<Vec<u8>> {
        use std::io::Write;
        let failed = |e: std::io::Error| BatchError::Compress { context: format!("compress with {self:?}"), source: e };
        match self {
            Compression::None => Ok(input.to_vec()),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                enc.write_all(input).map_err(failed)?;
                enc.finish().map_err(failed)
            }
            Compression::Snappy => {
                let blocks = input.len().div_ceil(XERIAL_BLOCK);
                let mut out = Vec::with_capacity(
                    XERIAL_HEADER.len()
                        + blocks * 4
                        + snap::raw::max_compress_len(input.len().min(XERIAL_BLOCK)) * blocks,
                );
                out.extend_from_slice(&XERIAL_HEADER);
                let mut encoder = snap::raw::Encoder::new();
                for block in input.chunks(XERIAL_BLOCK) {
                    let packed = encoder.compress_vec(block).map_err(|e| failed(std::io::Error::other(e)))?;
                    // At most 32 KiB in, so the block length fits an i32.
                    out.extend_from_slice(&(packed.len() as i32).to_be_bytes());
                    out.extend_from_slice(&packed);
                }
                Ok(out)
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent)
                    .block_checksums(false)
                    .content_checksum(false);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
                enc.write_all(input).map_err(failed)?;
                enc.finish().map_err(|e| failed(std::io::Error::other(e)))
            }
            Compression::Zstd => zstd::stream::encode_all(input, 3).map_err(failed),
        }
    }

    /// Decompresses `input`, failing if the output would exceed `limit` bytes.
    pub(crate) fn decompress(self, input: &[u8], limit: usize) -> Result<Vec<u8>> {
        let corrupt = |what: &dyn std::fmt::Display| {
            BatchError::invalid_batch(format!("cannot decompress {self:?} records: {what}"))
        };
        let bounded = |e: Bounded| match e {
            Bounded::TooLarge => BatchError::BatchTooLarge { size: limit + 1, max: limit },
            Bounded::Io(e) => corrupt(&e),
        };
        match self {
            Compression::None => {
                if input.len() > limit {
                    return Err(BatchError::BatchTooLarge { size: input.len(), max: limit });
                }
                Ok(input.to_vec())
            }
            Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(input), limit).map_err(bounded),
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(&e))?;
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|e| corrupt(&e))?;
                read_bounded(decoder, limit).map_err(bounded)
            }
            Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), limit).map_err(bounded),
            Compression::Snappy => match input.strip_prefix(&XERIAL_MAGIC) {
                Some(framed) => decompress_xerial(framed, limit),
                None => {
                    let mut out = Vec::new();
                    decompress_snappy_block(input, &mut out, limit)?;
                    Ok(out)
                }
            },
        }
    }
}

/// Decodes one raw snappy block onto the end of `out`, checking the length
/// the block announces against `limit` (for all of `out`) first.
fn decompress_snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
    let corrupt = |e: snap::Error| BatchError::invalid_batch(format!("cannot decompress Snappy records: {e}"));
    let len = snap::raw::decompress_len(block).map_err(corrupt)?;
    let total = out.len().saturating_add(len);
    if total > limit {
        return Err(BatchError::BatchTooLarge { size: total, max: limit });
    }
    let from = out.len();
    reserve_within(out, len, limit);
    out.resize(total, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[from..]).map_err(corrupt)?;
    out.truncate(from + written);
    Ok(())
}

/// Decodes snappy in xerial framing; `framed` is what follows the magic.
fn decompress_xerial(framed: &[u8], limit: usize) -> Result<Vec<u8>> {
    let corrupt = |what: String| BatchError::invalid_batch(format!("cannot decompress Snappy records: {what}"));
    // Version and compatible version: snappy-java has only ever written 1
    // for both, and readers do not depend on them.
    let mut rest = framed.get(8..).ok_or_else(|| corrupt("xerial header cut short".into()))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) =
            rest.split_first_chunk::<4>().ok_or_else(|| corrupt("xerial block length cut short".into()))?;
        let len = i32::from_be_bytes(*len);
        let block = usize::try_from(len)
            .ok()
            .and_then(|len| tail.get(..len))
            .ok_or_else(|| corrupt(format!("xerial block of {len} bytes, {} present", tail.len())))?;
        decompress_snappy_block(block, &mut out, limit)?;
        rest = &tail[block.len()..];
    }
    Ok(out)
}

/// Makes room for `n` more bytes in `out` (whose length plus `n` must not
/// pass `limit`) without letting its capacity pass `limit`: the usual
/// doubling, clamped.
fn reserve_within(out: &mut Vec<u8>, n: usize, limit: usize) {
    if out.capacity() - out.len() < n {
        let target = out.capacity().saturating_mul(2).clamp(out.len() + n, limit);
        out.reserve_exact(target - out.len());
    }
}

enum Bounded {
    TooLarge,
    Io(std::io::Error),
}

/// Reads a whole stream into a buffer that never grows past `limit` bytes
/// (capacity included), and only as data actually arrives.
fn read_bounded(mut reader: impl Read, limit: usize) -> Result<Vec<u8>, Bounded> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Bounded::Io(e)),
        };
        if n > limit - out.len() {
            return Err(Bounded::TooLarge);
        }
        reserve_within(&mut out, n, limit);
        out.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use super::*;

    /// Counts, per thread, the bytes allocated and not yet freed and their
    /// peak, so that a test can tell the most one call held at once.
    struct Counting;

    thread_local! {
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    fn count(grown: usize, shrunk: usize) {
        // `try_with`: a thread's storage may be gone while it exits. Frees of
        // what was allocated before the count started saturate at zero, so
        // the count can only overestimate.
        let _ = LIVE.try_with(|live| {
            let now = live.get().saturating_sub(shrunk) + grown;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    // SAFETY: every call is forwarded unchanged to the system allocator,
    // which upholds `GlobalAlloc`'s contract; counting touches no memory
    // handed out.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 0);
            // SAFETY: the caller's contract for `alloc` is passed on as it is.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 0);
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(0, layout.size());
            // SAFETY: `ptr` came from `System` through this allocator, with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size, layout.size());
            // SAFETY: `ptr` came from `System` through this allocator, with `layout`.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// Runs `f` and returns its result with the most bytes it held allocated at once.
    fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
        LIVE.with(|live| live.set(0));
        PEAK.with(|peak| peak.set(0));
        let out = f();
        (out, PEAK.with(Cell::get))
    }

    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for codec in Compression::ALL {
            let packed = codec.compress(&input).unwrap();
            assert_eq!(codec.decompress(&packed, input.len()).unwrap(), input, "{codec:?}");
            assert_eq!(codec.decompress(&codec.compress(&[]).unwrap(), 0).unwrap(), b"", "{codec:?}");
            assert_eq!(Compression::from_id(codec.id()), Some(codec));
        }
    }

    /// What Kafka's Java client expects: snappy-java's stream header, and an
    /// LZ4 frame with independent blocks of at most 64 KiB.
    #[test]
    fn snappy_and_lz4_are_written_in_kafka_framings() {
        let input = vec![7u8; 100 * KIB];
        let snappy = Compression::Snappy.compress(&input).unwrap();
        assert_eq!(snappy[..16], [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        // 100 KiB in blocks of 32 KiB: four length-prefixed raw blocks.
        let mut rest = &snappy[16..];
        let mut blocks = Vec::new();
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            blocks.push(snap::raw::decompress_len(&rest[4..4 + len]).unwrap());
            rest = &rest[4 + len..];
        }
        assert_eq!(blocks, [32 * KIB, 32 * KIB, 32 * KIB, 4 * KIB]);

        let lz4 = Compression::Lz4.compress(&input).unwrap();
        // Magic, then FLG: version 01, independent blocks, no checksums, no
        // content size; BD: 64 KiB blocks.
        assert_eq!(lz4[..6], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40]);
        assert_eq!(lz4[lz4.len() - 4..], [0, 0, 0, 0], "end mark, and no content checksum after it");
    }

    /// librdkafka sends one raw snappy block, the Java client xerial framing:
    /// both decode.
    #[test]
    fn snappy_decodes_raw_blocks_and_xerial_framing() {
        let input = b"goulette goulette goulette".repeat(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(Compression::Snappy.decompress(&raw, input.len()).unwrap(), input);

        // Hand-framed with uneven blocks and an empty one, as a writer may.
        let mut framed = XERIAL_HEADER.to_vec();
        for part in [&input[..10], &input[10..10], &input[10..]] {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            framed.extend_from_slice(&(block.len() as i32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        assert_eq!(Compression::Snappy.decompress(&framed, input.len()).unwrap(), input);
        assert_eq!(Compression::Snappy.decompress(&XERIAL_HEADER, 0).unwrap(), b"");
    }

    #[test]
    fn decompression_beyond_the_limit_is_refused() {
        let input = vec![0u8; MIB];
        for codec in Compression::ALL {
            let packed = codec.compress(&input).unwrap();
            let err = codec.decompress(&packed, 1000).unwrap_err();
            assert!(matches!(err, BatchError::BatchTooLarge { .. }), "{codec:?}: {err}");
            assert_eq!(codec.decompress(&packed, MIB).unwrap().len(), MIB, "{codec:?}: exactly at the limit");
        }
    }

    /// Inputs that claim (or expand to) far more than the limit: the call
    /// fails, and what it allocated stays within the limit plus the codec's
    /// own working memory (see the module doc), whatever the claim. zstd's
    /// C library allocates outside Rust's allocator, so for zstd the count
    /// covers the output only; its window is capped instead (the 2 GiB case).
    #[test]
    fn hostile_inputs_never_allocate_beyond_the_limit() {
        let limit = 64 * KIB;
        let bomb = vec![0u8; 32 * MIB];
        let snappy_header = |len: u32| {
            let mut raw = Vec::new();
            let mut v = len;
            while v >= 0x80 {
                raw.push(v as u8 | 0x80);
                v >>= 7;
            }
            raw.push(v as u8);
            raw.extend_from_slice(&[0; 16]);
            raw
        };
        let xerial = |blocks: &[(i32, &[u8])]| {
            let mut framed = XERIAL_HEADER.to_vec();
            for (len, block) in blocks {
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(block);
            }
            framed
        };
        let huge_raw = snappy_header(u32::MAX);
        let lz4_big_block = {
            let info = lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max4MB);
            let header = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new()).finish().unwrap();
            // Magic, FLG, BD, header checksum; then the end mark, replaced.
            assert_eq!(header.len(), 11);
            [&header[..7], &((4 * MIB - 1) as u32).to_le_bytes(), &[0; 16]].concat()
        };
        let just_over = snappy_header(limit as u32 + 1);
        let cases: Vec<(&str, Compression, Vec<u8>, usize)> = vec![
            ("raw snappy claiming 4 GiB", Compression::Snappy, huge_raw.clone(), 0),
            ("raw snappy claiming limit + 1", Compression::Snappy, just_over.clone(), 0),
            ("xerial block claiming 4 GiB", Compression::Snappy, xerial(&[(huge_raw.len() as i32, &huge_raw)]), 0),
            ("xerial block length past the input", Compression::Snappy, xerial(&[(i32::MAX, &[0; 8])]), 0),
            ("xerial negative block length", Compression::Snappy, xerial(&[(-1, &[0; 8])]), 0),
            (
                "xerial blocks adding up past the limit",
                Compression::Snappy,
                Compression::Snappy.compress(&bomb).unwrap(),
                0,
            ),
            ("gzip bomb", Compression::Gzip, Compression::Gzip.compress(&bomb).unwrap(), 256 * KIB),
            ("zstd bomb", Compression::Zstd, Compression::Zstd.compress(&bomb).unwrap(), 0),
            // Magic, frame header descriptor (no content size), window
            // descriptor 10 + 21: a 2 GiB window, past the cap.
            (
                "zstd frame asking for a 2 GiB window",
                Compression::Zstd,
                vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 1, 0, 0],
                0,
            ),
            ("lz4 bomb", Compression::Lz4, Compression::Lz4.compress(&bomb).unwrap(), 256 * KIB),
            // A frame header for 4 MiB blocks, then a block announcing 4 MiB
            // of which 16 bytes are present: the decoder's buffers are
            // sized by the header, never by the input's claims.
            ("lz4 frame announcing a 4 MiB block, cut short", Compression::Lz4, lz4_big_block, 8 * MIB + 64 * KIB),
        ];
        for (name, codec, input, working_memory) in cases {
            let (result, peak) = peak_allocation(|| codec.decompress(&input, limit));
            assert!(result.is_err(), "{name}: decoded {} bytes", result.map_or(0, |v| v.len()));
            assert!(peak <= limit + working_memory + 16 * KIB, "{name}: {peak} bytes allocated");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03];
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            assert!(codec.decompress(&garbage, 1 << 20).is_err(), "{codec:?}");
        }
        // A truncated xerial header.
        assert!(Compression::Snappy.decompress(&XERIAL_HEADER[..12], 1 << 20).is_err());
    }
}
