//! Any byte string fed to the batch decoder must either parse or fail with an
//! error: no panic, no allocation beyond what the input justifies (libFuzzer's
//! -rss_limit_mb catches those), and a batch that parses must decode its
//! records without panicking. The same bytes are also tried as a parsed batch
//! whose CRC is made valid, so the fuzzer reaches the record decoder.
#![no_main]

use bytes::Bytes;
use goulette_batch::Batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = Batch::parse(Bytes::copy_from_slice(data)) {
        let _ = batch.records();
    }
    // Fix up length, magic, last offset delta and CRC (Kafka RecordBatch
    // v2, big-endian) so that mutations exercise the records section.
    if data.len() >= goulette_batch::batch::HEADER_LEN {
        use goulette_batch::batch::{BATCH_MAGIC, LOG_OVERHEAD, OFF_LAST_OFFSET_DELTA, OFF_RECORD_COUNT};
        let mut fixed = data.to_vec();
        let len = (fixed.len() - LOG_OVERHEAD) as i32;
        fixed[8..12].copy_from_slice(&len.to_be_bytes());
        fixed[16] = BATCH_MAGIC;
        let count = i32::from_be_bytes([
            fixed[OFF_RECORD_COUNT],
            fixed[OFF_RECORD_COUNT + 1],
            fixed[OFF_RECORD_COUNT + 2],
            fixed[OFF_RECORD_COUNT + 3],
        ]);
        fixed[OFF_LAST_OFFSET_DELTA..OFF_LAST_OFFSET_DELTA + 4].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
        let crc = crc32c(&fixed[21..]);
        fixed[17..21].copy_from_slice(&crc.to_be_bytes());
        if let Ok(batch) = Batch::parse(Bytes::from(fixed)) {
            let _ = batch.records();
        }
    }
});

fn crc32c(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32C (Castagnoli), to avoid another dependency in the fuzz crate.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}
