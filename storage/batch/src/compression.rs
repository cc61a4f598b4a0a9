//! Compression codecs for the records section of a batch.
//!
//! The codec id lives in bits 0–2 of the batch attributes. Decompression is
//! bounded by a caller-given limit: a few bytes of hostile input can never make
//! it allocate more than `limit` bytes.
//!
//! | id | codec  | framing                                                  |
//! |----|--------|----------------------------------------------------------|
//! | 0  | none   | records as they are                                      |
//! | 1  | gzip   | one gzip member (RFC 1952)                               |
//! | 2  | snappy | raw snappy block (its varint length prefix included)     |
//! | 3  | lz4    | lz4 block, prefixed by the uncompressed length (u32 LE)  |
//! | 4  | zstd   | one zstd frame                                           |

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
    /// Snappy raw block.
    Snappy,
    /// LZ4 block.
    Lz4,
    /// Zstandard, level 3.
    Zstd,
}

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
        let failed = |e: std::io::Error| BatchError::Compress { context: format!("compress with {self:?}"), source: e };
        match self {
            Compression::None => Ok(input.to_vec()),
            Compression::Gzip => {
                use std::io::Write;
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                enc.write_all(input).map_err(failed)?;
                enc.finish().map_err(failed)
            }
            Compression::Snappy => {
                snap::raw::Encoder::new().compress_vec(input).map_err(|e| failed(std::io::Error::other(e)))
            }
            Compression::Lz4 => {
                let len = u32::try_from(input.len())
                    .map_err(|_| BatchError::BatchTooLarge { size: input.len(), max: u32::MAX as usize })?;
                let mut out = Vec::with_capacity(4 + lz4_flex::block::get_maximum_output_size(input.len()));
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&lz4_flex::block::compress(input));
                Ok(out)
            }
            Compression::Zstd => zstd::stream::encode_all(input, 3).map_err(failed),
        }
    }

    /// Decompresses `input`, failing if the output would exceed `limit` bytes.
    pub(crate) fn decompress(self, input: &[u8], limit: usize) -> Result<Vec<u8>> {
        let corrupt = |what: &dyn std::fmt::Display| {
            BatchError::invalid_batch(format!("cannot decompress {self:?} records: {what}"))
        };
        let too_large = |size: usize| BatchError::BatchTooLarge { size, max: limit };
        match self {
            Compression::None => {
                if input.len() > limit {
                    return Err(too_large(input.len()));
                }
                Ok(input.to_vec())
            }
            Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(input), limit).map_err(|e| match e {
                Bounded::TooLarge => too_large(limit + 1),
                Bounded::Io(e) => corrupt(&e),
            }),
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(&e))?;
                read_bounded(decoder, limit).map_err(|e| match e {
                    Bounded::TooLarge => too_large(limit + 1),
                    Bounded::Io(e) => corrupt(&e),
                })
            }
            Compression::Snappy => {
                let len = snap::raw::decompress_len(input).map_err(|e| corrupt(&e))?;
                if len > limit {
                    return Err(too_large(len));
                }
                snap::raw::Decoder::new().decompress_vec(input).map_err(|e| corrupt(&e))
            }
            Compression::Lz4 => {
                let (len, block) = match input {
                    [a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, rest),
                    _ => return Err(corrupt(&"missing length prefix")),
                };
                if len > limit {
                    return Err(too_large(len));
                }
                let mut out = vec![0u8; len];
                let written = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| corrupt(&e))?;
                if written != len {
                    return Err(corrupt(&format!("{written} bytes decoded, {len} announced")));
                }
                Ok(out)
            }
        }
    }
}

enum Bounded {
    TooLarge,
    Io(std::io::Error),
}

/// Reads a whole stream, growing the buffer only as data actually arrives.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, Bounded> {
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out).map_err(Bounded::Io)?;
    if out.len() > limit {
        return Err(Bounded::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for codec in Compression::ALL {
            let packed = codec.compress(&input).unwrap();
            assert_eq!(codec.decompress(&packed, input.len()).unwrap(), input, "{codec:?}");
            assert_eq!(Compression::from_id(codec.id()), Some(codec));
        }
    }

    #[test]
    fn decompression_beyond_the_limit_is_refused() {
        let input = vec![0u8; 1 << 20];
        for codec in Compression::ALL {
            let packed = codec.compress(&input).unwrap();
            let err = codec.decompress(&packed, 1000).unwrap_err();
            assert!(matches!(err, BatchError::BatchTooLarge { .. }), "{codec:?}: {err}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03];
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            assert!(codec.decompress(&garbage, 1 << 20).is_err(), "{codec:?}");
        }
    }
}
