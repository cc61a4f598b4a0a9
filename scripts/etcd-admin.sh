#!/usr/bin/env bash
# `make etcd-*`: `goulette etcd ARGS...` on the local cluster's metadata.
#
# While a local cluster runs (or ETCD_ENDPOINTS names another etcd), on the
# etcd at ETCD_ENDPOINTS. When nothing runs, on the stopped layout's etcd
# data directory, through a temporary etcd the CLI starts and stops
# (--etcd-data-dir): the default layout keeps its metadata in the sentinel's
# embedded etcd, which runs only with the sentinel, and backing up, wiping
# or restoring it must work with the cluster stopped (docs/operations.md,
# "Disaster recovery"). LAYOUT (embedded, the default, or with-etcd) names
# the stopped layout; the 3-sentinel layout needs its quorum running.
set -euo pipefail
ME=etcd
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

endpoints=${ETCD_ENDPOINTS:-$ETCD_CLIENT_URL}
remove_stale_pid_files >/dev/null
if [ -n "$(running_names)" ] || [ "$endpoints" != "$ETCD_CLIENT_URL" ]; then
  exec "$GOULETTE" etcd "$@" --etcd-endpoints "$endpoints"
fi
layout=${LAYOUT:-embedded}
case $layout in
  embedded) dir="$DATA_DIR/etcd-sentinel-1" name=sentinel-1 ;;
  with-etcd) dir="$DATA_DIR/etcd" name=etcd-1 ;;
  sentinel-cluster)
    die "no cluster runs, and the 3-sentinel layout's etcd needs a quorum of its members: start it (make run-sentinel-cluster-embedded), then run this again" ;;
  *) die "unknown LAYOUT '$layout' (embedded or with-etcd)" ;;
esac
warn "no local cluster runs: using the $layout layout's metadata in $dir (a temporary etcd on it, stopped after)"
exec "$GOULETTE" etcd "$@" --etcd-data-dir "$dir" --etcd-name "$name" --etcd-peer-port 2380
