//! A log file that rotates by size or by day, keeping a bounded number of
//! archives: `server.log` is the live file, `server.log.1` the newest
//! archive, up to `server.log.N`; older ones are deleted.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// When the live file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Never: the file grows (rotate it from outside, e.g. logrotate with copytruncate).
    Never,
    /// Before a write would take the file past this many bytes.
    Size(u64),
    /// At the first write of each new UTC day.
    Daily,
}

impl std::str::FromStr for Rotation {
    type Err = String;

    /// `never`, `daily`, or `size:64MiB` (B, KiB, MiB, GiB).
    fn from_str(s: &str) -> Result<Rotation, String> {
        match s {
            "never" => Ok(Rotation::Never),
            "daily" => Ok(Rotation::Daily),
            _ => {
                let size =
                    s.strip_prefix("size:").ok_or_else(|| format!("{s:?}: expected never, daily or size:64MiB"))?;
                let (digits, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len()));
                let n: u64 = digits.parse().map_err(|_| format!("{s:?}: expected a number of bytes after size:"))?;
                let scale = match unit {
                    "" | "B" => 1,
                    "KiB" => 1 << 10,
                    "MiB" => 1 << 20,
                    "GiB" => 1 << 30,
                    _ => return Err(format!("{s:?}: unit must be B, KiB, MiB or GiB")),
                };
                match n.checked_mul(scale) {
                    Some(bytes) if bytes >= 1024 => Ok(Rotation::Size(bytes)),
                    _ => Err(format!("{s:?}: at least 1KiB")),
                }
            }
        }
    }
}

/// The live log file and its archives.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    keep: usize,
    file: File,
    len: u64,
    day: u64,
    /// When a rotation last failed: the next try waits a minute (each try
    /// moves archives, so retrying at every line would eat them).
    failed_at: Option<std::time::Instant>,
}

fn utc_day() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400)
}

fn archive(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl RotatingFile {
    /// Opens (appending to) `path`, keeping at most `keep` archives.
    pub fn open(path: impl Into<PathBuf>, rotation: Rotation, keep: usize) -> std::io::Result<RotatingFile> {
        let path = path.into();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let meta = file.metadata()?;
        let day = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(utc_day(), |d| d.as_secs() / 86_400);
        Ok(RotatingFile { path, rotation, keep, len: meta.len(), file, day, failed_at: None })
    }

    fn due(&self, incoming: usize) -> bool {
        if self.failed_at.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60)) {
            return false;
        }
        match self.rotation {
            Rotation::Never => false,
            Rotation::Size(max) => self.len > 0 && self.len + incoming as u64 > max,
            Rotation::Daily => self.len > 0 && utc_day() != self.day,
        }
    }

    /// `path` → `path.1` → … → `path.keep`; the oldest goes.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(archive(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = archive(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, archive(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, archive(&self.path, 1))?;
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.len = 0;
        self.day = utc_day();
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.due(buf.len()) {
            // A failed rotation must not lose lines: write to a live file
            // at `path` again (reopened, or created if it was renamed away)
            // and try rotating once that one is due.
            if let Err(e) = self.rotate() {
                eprintln!("log rotation of {} failed: {e}", self.path.display());
                if let Ok(file) = OpenOptions::new().create(true).append(true).open(&self.path) {
                    self.len = file.metadata().map_or(0, |m| m.len());
                    self.file = file;
                }
                self.failed_at = Some(std::time::Instant::now());
            }
        }
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_size_rotation_it_should_keep_the_configured_number_of_archives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.log");
        let mut log = RotatingFile::open(&path, Rotation::Size(1024), 3).unwrap();
        let line = [b'x'; 99];
        for i in 0..100 {
            log.write_all(&line).unwrap();
            log.write_all(format!("{i}\n").as_bytes()).unwrap();
        }
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        names.sort();
        assert_eq!(names, ["broker.log", "broker.log.1", "broker.log.2", "broker.log.3"]);
        for name in &names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 1024, "{name}: {len} bytes");
        }
        // The newest lines are in the live file, the ones before in .1.
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("99\n"));
        let previous = std::fs::read_to_string(dir.path().join("broker.log.1")).unwrap();
        let live_first = std::fs::read_to_string(&path).unwrap();
        let first_live: u32 = live_first.lines().next().unwrap().trim_start_matches('x').parse().unwrap();
        assert!(previous.ends_with(&format!("{}\n", first_live - 1)), "archives hold the lines just before");
    }

    #[test]
    fn rotation_parses_and_refuses_nonsense() {
        assert_eq!("size:64MiB".parse(), Ok(Rotation::Size(64 << 20)));
        assert_eq!("daily".parse(), Ok(Rotation::Daily));
        assert_eq!("never".parse(), Ok(Rotation::Never));
        assert!("size:10".parse::<Rotation>().is_err());
        assert!("hourly".parse::<Rotation>().is_err());
        assert!("size:1TB".parse::<Rotation>().is_err());
    }
}
