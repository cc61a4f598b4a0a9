#!/usr/bin/env bash
# Starts one component in the background and waits until it is ready. Used
# by `make run-etcd`, `make run-sentinel` and `make run-broker`; pieces
# started this way are stopped by `make stop-all` like the rest.
#
# Usage: scripts/run-one.sh etcd
#          a standalone etcd: 127.0.0.1:2379 (peer 2380), data/etcd
#        scripts/run-one.sh sentinel
#          sentinel-1 on 127.0.0.1:50052; it uses the etcd already answering
#          on 127.0.0.1:2379 (e.g. from `make run-etcd`) if there is one,
#          else starts its own embedded etcd (data/etcd-sentinel-1)
#        scripts/run-one.sh broker N
#          broker-N (N = 1..9) on 127.0.0.1:5006N (Kafka on 127.0.0.1:909(N+1)), registering with SENTINELS
#          (default 127.0.0.1:50052); its data dir follows the running layout
#          (run/layout): data/broker-N with an embedded etcd,
#          data/with-etcd/broker-N with a standalone one
# Starting etcd or a sentinel records the layout in run/layout, as run-all
# does, so `make run-etcd`, `make run-sentinel` and three `make run-broker`
# build the same cluster as `make run-all-with-etcd`.
# Environment: READY_TIMEOUT (seconds, default 60), SENTINELS, MAKE.
set -euo pipefail
ME=run-${1:-}
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

what=${1:-}
case $what in
  etcd) name=etcd ;;
  sentinel) name=sentinel-1 ;;
  broker)
    n=${2:-}
    [[ $n =~ ^[1-9]$ ]] || die "the broker id (BROKER_ID) must be 1 to 9, got '$n' (broker N listens on 127.0.0.1:5006N)"
    name=broker-$n
    ;;
  *) die "usage: $0 etcd | sentinel | broker N" ;;
esac
sentinels=${SENTINELS:-127.0.0.1:50052}

remove_stale_pid_files
if is_running "$name"; then
  log "$name is already running (pid $(pid_of "$name")); nothing started. Stop everything with: make stop-all"
  exit 0
fi

layout=$(current_layout)
if [ "$layout" = sentinel-cluster ] && [ "$what" != broker ]; then
  die "the running cluster is the 3-sentinel one; restart it whole: make stop-all && make run-sentinel-cluster-embedded"
fi

build_release
trap 'fail_start "interrupted"' INT TERM
case $what in
  etcd)
    require_free_ports 2379 2380
    set_layout with-etcd
    start_etcd
    wait_until "etcd at $ETCD_CLIENT_URL" etcd_ready || fail_start "etcd did not start"
    log "etcd ready at $ETCD_CLIENT_URL (log $LOG_DIR/etcd.log, data $DATA_DIR/etcd)"
    log "next: make run-sentinel, then make run-broker BROKER_ID=1 (2, 3)"
    ;;
  sentinel)
    if etcd_ready; then
      log "an etcd answers on $ETCD_CLIENT_URL: the sentinel uses it"
      require_free_ports 50052 9652
      set_layout with-etcd
      start_sentinel 1 external
    else
      log "no etcd on $ETCD_CLIENT_URL: the sentinel starts an embedded one"
      require_free_ports 2379 2380 50052 9652
      set_layout embedded
      start_sentinel 1 embedded
    fi
    wait_until "sentinel-1 to lead" sentinel_ready "$(sentinel_address 1)" || fail_start "sentinel-1 did not start"
    log "sentinel-1 ready at $(sentinel_address 1) (log $LOG_DIR/sentinel-1.log)"
    log "next: make run-broker BROKER_ID=1 (2, 3)"
    ;;
  broker)
    require_free_ports "$(broker_address "$n" | cut -d: -f2)" "$(broker_http_address "$n" | cut -d: -f2)" \
      "$(broker_kafka_address "$n" | cut -d: -f2)"
    export GOULETTE_SENTINELS=$sentinels
    since=$(now_utc)
    start_broker "$n" "$(layout_dir "$layout")" "$sentinels"
    wait_until "broker $n to register" broker_ready "$since" "$n" || fail_start "broker $n did not become ready (is a sentinel running at $sentinels?)"
    log "broker-$n ready at $(broker_address "$n") (log $LOG_DIR/broker-$n.log, data $(layout_dir "$layout")/broker-$n)"
    ;;
esac
trap - INT TERM
log "stop everything with: make stop-all"
