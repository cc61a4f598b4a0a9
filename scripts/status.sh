#!/usr/bin/env bash
# `make status`: which processes of run/*.pid run, and `goulette cluster
# status` if a sentinel does.
# With --require-stopped (used by `make clean`): prints nothing and succeeds
# when nothing runs, else says what runs and fails.
set -euo pipefail
ME=status
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

running=$(running_names)
if [ "${1:-}" = --require-stopped ]; then
  [ -n "$running" ] || exit 0
  die "a local cluster is running ($(one_line "$running")); run 'make stop-all' first"
fi

if [ -z "$running" ]; then
  log "no local cluster runs (no live process in $RUN_DIR/*.pid)"
  exit 0
fi
layout=$(current_layout)
echo "running (layout: ${layout:-started piece by piece}):"
for name in $running; do
  printf '  %-11s pid %-7s log %s\n' "$name" "$(pid_of "$name")" "$LOG_DIR/$name.log"
done
if grep -q '^sentinel-' <<<"$running"; then
  sentinels=$(for name in $running; do
    if [[ $name == sentinel-* ]]; then sentinel_address "${name#sentinel-}"; fi
  done | paste -sd, -)
  echo
  timeout 10 "$GOULETTE" --sentinels "$sentinels" cluster status
fi
