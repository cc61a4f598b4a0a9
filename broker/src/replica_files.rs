//! Opening a replica's files: its log (recovered, or repaired when it was
//! found damaged) and the timer index of delayed delivery fitted to it.

use std::path::Path;

use goulette_storage::timers::TimerIndex;
use goulette_storage::{LogConfig, PartitionLog, identity};

/// Opens the log in `dir` (writing its topic id first when `new_id`
/// gives one), repairing it when `repair`, and its timer index, which fits
/// itself to the log as opened before anything is appended.
pub(crate) fn open(
    dir: &Path,
    config: LogConfig,
    new_id: Option<u64>,
    repair: bool,
) -> anyhow::Result<(PartitionLog, TimerIndex)> {
    if let Some(incarnation) = new_id {
        identity::write(dir, incarnation)?;
    }
    let log = if repair {
        let (log, cuts) = goulette_storage::repair::open_repairing(dir, config)?;
        for cut in cuts {
            tracing::warn!(dir = %dir.display(), file = cut.file, position = cut.position, reason = cut.reason,
                "repaired a damaged replica: cut before its first bad batch; the rest comes from the leader");
        }
        log
    } else {
        PartitionLog::open(dir, config)?
    };
    let timers = TimerIndex::open(dir, log.log_start_offset(), log.log_end_offset())?;
    Ok((log, timers))
}
