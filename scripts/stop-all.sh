#!/usr/bin/env bash
# Stops exactly the processes recorded in run/*.pid (`make stop-all`):
# brokers first, then sentinels, then a standalone etcd. Each gets SIGTERM
# and up to STOP_TIMEOUT seconds (default 10) to exit, then SIGKILL. A pid
# file whose process is gone, or whose pid now belongs to another program, is
# only removed. Never signals anything by name. Succeeds when nothing runs.
set -euo pipefail
ME=stop-all
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

to_stop=$(pid_file_names)
if [ -z "$to_stop" ]; then
  rm -f "$RUN_DIR/layout"
  log "nothing to stop (no pid files in $RUN_DIR/)"
  exit 0
fi
# shellcheck disable=SC2086 # one name per word
stop_names $to_stop
log "stopped; logs stay in $LOG_DIR/, data in $DATA_DIR/"
