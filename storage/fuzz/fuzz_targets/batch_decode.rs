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
    // Fix up length and CRC so that mutations exercise the records section.
    if data.len() >= goulette_batch::batch::HEADER_LEN {
        let mut fixed = data.to_vec();
        let len = fixed.len() as u32;
        fixed[8..12].copy_from_slice(&len.to_le_bytes());
        fixed[16] = goulette_batch::batch::BATCH_MAGIC;
        let crc = crc32(&fixed[21..]);
        fixed[17..21].copy_from_slice(&crc.to_le_bytes());
        if let Ok(batch) = Batch::parse(Bytes::from(fixed)) {
            let _ = batch.records();
        }
    }
});

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), to avoid another dependency in the fuzz crate.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
