//! `goulette storage inspect DIR`: what a partition directory holds.
//!
//! By default the directory is opened with the storage engine, which takes
//! its lock (refused while a broker runs on it) and runs its recovery, as a
//! broker would on start. `--read-only` instead reads the files as they
//! are, changing nothing and taking no lock: the way to look at a live
//! broker's partition, or at a damaged one before anything is cut.

use std::fmt::Write as _;
use std::path::Path;

use goulette_storage::read_only::ReadOnlyLog;
use goulette_storage::{Batch, FlushPolicy, LogConfig, PartitionLog};

/// What to print of the records.
#[derive(Debug, Clone, Copy)]
pub struct RecordsWanted {
    /// First offset to print (default: the log start).
    pub from: Option<u64>,
    /// Most records to print.
    pub limit: usize,
}

/// Renders a report of the partition log in `dir`: its offsets and size,
/// and with `records`, some of its records.
pub fn inspect(dir: &Path, read_only: bool, records: Option<RecordsWanted>) -> anyhow::Result<String> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    if read_only {
        return inspect_read_only(dir, records);
    }
    // Never fsync on behalf of an inspection; recovery still truncates a torn
    // tail exactly as a broker would on start.
    let config = LogConfig { flush: FlushPolicy::Never, retention_age: None, ..LogConfig::default() };
    let log = PartitionLog::open(dir, config)?;
    let mut out = String::new();
    writeln!(out, "partition directory: {}", dir.display())?;
    writeln!(out, "log start offset:    {}", log.log_start_offset())?;
    writeln!(out, "log end offset:      {}", log.log_end_offset())?;
    writeln!(out, "fragments:           {}", log.fragment_count())?;
    writeln!(out, "bytes on disk:       {}", log.size_bytes())?;
    if let Some(wanted) = records {
        let mut printer = Printer::new(wanted, log.log_start_offset());
        let mut offset = printer.from;
        while !printer.done() && offset < log.log_end_offset() {
            let batches = log.read(offset, 1 << 20)?;
            if batches.is_empty() {
                break;
            }
            for bytes in batches {
                let batch = Batch::parse_sparse(bytes)?;
                if !printer.print(&batch, &mut out)? {
                    break;
                }
                offset = batch.next_offset();
            }
        }
    }
    log.close()?;
    Ok(out)
}

/// The report of `--read-only`: every file with what checks out of it.
fn inspect_read_only(dir: &Path, records: Option<RecordsWanted>) -> anyhow::Result<String> {
    let scan = ReadOnlyLog::scan(dir)?;
    let mut out = String::new();
    writeln!(out, "partition directory: {} (read-only: no recovery, no lock)", dir.display())?;
    writeln!(out, "log start offset:    {}", scan.log_start_offset())?;
    writeln!(out, "log end offset:      {}", scan.log_end_offset())?;
    writeln!(out, "files:")?;
    for file in &scan.files {
        let kind = if file.is_wal { "wal " } else { "frag" };
        let state = match &file.bad_frame {
            None => "ok".to_owned(),
            Some((at, why)) if file.is_wal => {
                format!("stops at byte {at} ({why}): a torn tail, or a write in progress")
            }
            Some((at, why)) => format!("CORRUPT at byte {at}: {why}"),
        };
        let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        writeln!(
            out,
            "  {kind} {name}  offsets {}..{}  {} bytes  {state}",
            file.base_offset, file.next_offset, file.len
        )?;
    }
    for (end, next) in scan.gaps() {
        writeln!(out, "GAP: a file ends at offset {end}, the next starts at {next}")?;
    }
    if let Some(wanted) = records {
        let mut printer = Printer::new(wanted, scan.log_start_offset());
        let mut failed = None;
        scan.for_each_batch(printer.from, |batch| match printer.print(batch, &mut out) {
            Ok(more) => more,
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(out)
}

/// Prints records, one line each, from an offset up to a limit.
struct Printer {
    from: u64,
    limit: usize,
    printed: usize,
}

impl Printer {
    fn new(wanted: RecordsWanted, log_start: u64) -> Printer {
        Printer { from: wanted.from.unwrap_or(log_start), limit: wanted.limit, printed: 0 }
    }

    fn done(&self) -> bool {
        self.printed >= self.limit
    }

    /// Prints the batch's records from `from` on; false once the limit is reached.
    fn print(&mut self, batch: &Batch, out: &mut String) -> anyhow::Result<bool> {
        for r in batch.records()? {
            if r.offset < self.from {
                continue;
            }
            if self.done() {
                return Ok(false);
            }
            let key = r.record.key.as_deref().map(String::from_utf8_lossy);
            writeln!(
                out,
                "{:>10} ts={} key={:?} value={:?} headers={}",
                r.offset,
                r.record.timestamp,
                key,
                String::from_utf8_lossy(&r.record.value),
                r.record.headers.len()
            )?;
            self.printed += 1;
        }
        Ok(!self.done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goulette_storage::{BatchBuilder, Compression, Record};

    fn log_of_three(dir: &Path) -> PartitionLog {
        let log = PartitionLog::open(dir, LogConfig::default()).unwrap();
        for i in 0..3 {
            let mut b = BatchBuilder::new(Compression::Lz4);
            b.push(&Record { timestamp: 1000 + i, value: format!("m{i}").into(), ..Record::default() });
            log.append(&Batch::parse(b.build().unwrap()).unwrap(), 0).unwrap();
        }
        log
    }

    #[test]
    fn inspect_reports_offsets_and_records() {
        let dir = tempfile::tempdir().unwrap();
        log_of_three(dir.path()).close().unwrap();
        let report = inspect(dir.path(), false, Some(RecordsWanted { from: Some(1), limit: 10 })).unwrap();
        assert!(report.contains("log end offset:      3"), "{report}");
        assert!(report.contains("\"m1\"") && report.contains("\"m2\"") && !report.contains("\"m0\""), "{report}");
    }

    #[test]
    fn an_open_log_is_refused_unless_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of_three(dir.path());
        let refused = inspect(dir.path(), false, None).unwrap_err().to_string();
        assert!(refused.contains("in use by another process") && refused.contains("--read-only"), "{refused}");
        let report = inspect(dir.path(), true, Some(RecordsWanted { from: None, limit: 2 })).unwrap();
        assert!(report.contains("log end offset:      3") && report.contains("  ok"), "{report}");
        assert!(report.contains("\"m0\"") && report.contains("\"m1\"") && !report.contains("\"m2\""), "{report}");
        log.close().unwrap();
        inspect(dir.path(), false, None).unwrap();
    }
}
