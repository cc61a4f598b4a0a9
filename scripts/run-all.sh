#!/usr/bin/env bash
# Starts a local Goulette cluster in the background and waits until it is
# ready. Used by `make run-all`, `make run-all-with-etcd` and
# `make run-sentinel-cluster-embedded`.
#
# Usage: scripts/run-all.sh [LAYOUT]
#   embedded          (default) one sentinel with an embedded etcd
#                     (etcd on 2379/2380, data/etcd-sentinel-1) and brokers 1-3
#   with-etcd         a standalone etcd (2379/2380, data/etcd), one sentinel
#                     using it, and brokers 1-3 (data/with-etcd/broker-N)
#   secure            like embedded, with TLS on every listener, logins and
#                     ACLs required, a private CA (scripts/secure.sh), all
#                     data in data/secure/
#   sentinel-cluster  three sentinels (50052-50054) whose embedded etcds form
#                     one 3-member etcd cluster (client ports 2379/2381/2383,
#                     peer ports 2380/2382/2384), brokers 1-3, all data
#                     in data/sentinel-cluster/
# Brokers 1-3 listen on 127.0.0.1:50061-50063 (Kafka protocol: 9092-9094); each layout has its own broker
# data (see layout_dir in lib.sh).
#
# Pids go to run/<name>.pid, logs to logs/<name>.log. If the cluster already
# runs, this reports it and starts nothing. Environment: READY_TIMEOUT
# (seconds, default 60), MAKE (the make that runs build-release).
set -euo pipefail
ME=run-all
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/secure.sh
source "$(dirname "$0")/secure.sh"

layout=${1:-embedded}
case $layout in
  embedded | with-etcd | secure)
    sentinel_ids=(1)
    sentinels=$(sentinel_address 1)
    ports=(2379 2380 50052 50061 50062 50063 9652 9661 9662 9663 9092 9093 9094)
    ;;
  sentinel-cluster)
    sentinel_ids=(1 2 3)
    sentinels="$(sentinel_address 1),$(sentinel_address 2),$(sentinel_address 3)"
    ports=(2379 2380 2381 2382 2383 2384 50052 50053 50054 50061 50062 50063 9652 9653 9654 9661 9662 9663 9092 9093 9094)
    ;;
  *) die "unknown layout '$layout' (embedded, with-etcd, secure or sentinel-cluster)" ;;
esac
export GOULETTE_SENTINELS=$sentinels   # for the `goulette cluster status` polls
if [ "$layout" = secure ]; then
  secure_client_env                    # ... which then show the operator's certificate
fi

# The components this layout runs, by pid-file name.
expected=(broker-1 broker-2 broker-3)
for n in "${sentinel_ids[@]}"; do expected+=("sentinel-$n"); done
if [ "$layout" = with-etcd ]; then expected+=(etcd); fi

# 1. Already running? Report it instead of starting a second cluster.
remove_stale_pid_files
running=$(running_names)
if [ -n "$running" ]; then
  running_layout=$(current_layout)
  missing=()
  for name in "${expected[@]}"; do
    grep -qx "$name" <<<"$running" || missing+=("$name")
  done
  if [ "$running_layout" = "$layout" ] && [ ${#missing[@]} -eq 0 ]; then
    log "the cluster is already running; nothing started"
    print_cluster "$layout" "$sentinels"
    echo
    timeout 10 "$GOULETTE" cluster status || warn "cluster status reports a problem (see above and $LOG_DIR/)"
    echo
    log "to restart it (e.g. after a rebuild): make stop-all && make $(make_target_of "$layout")"
    exit 0
  fi
  warn "Goulette processes are already running: $(one_line "$running")"
  [ -z "$running_layout" ] || warn "they were started as layout '$running_layout'"
  [ ${#missing[@]} -eq 0 ] || warn "the '$layout' layout would also need: ${missing[*]} (not running)"
  die "run 'make stop-all' first, then start again"
fi

# 2. Build (and install etcd/protoc if missing), then check the ports.
build_release
require_free_ports "${ports[@]}"
if [ "$layout" = secure ]; then secure_certificates; fi

# 3. Start, stopping whatever was started if anything fails or on Ctrl-C.
trap 'fail_start "interrupted"' INT TERM
set_layout "$layout"
case $layout in
  embedded)
    start_sentinel 1 embedded
    ;;
  secure)
    # shellcheck disable=SC2046
    start_sentinel 1 secure $(secure_server_args)
    ;;
  with-etcd)
    start_etcd
    wait_until "etcd at $ETCD_CLIENT_URL" etcd_ready || fail_start "etcd did not start"
    start_sentinel 1 external
    ;;
  sentinel-cluster)
    # All three at once: each embedded etcd waits for the others to form
    # the quorum.
    for n in 1 2 3; do start_sentinel "$n" sentinel-cluster; done
    ;;
esac
since=$(now_utc)
for n in 1 2 3; do
  if [ "$layout" = secure ]; then
    # shellcheck disable=SC2046
    start_broker "$n" "$(layout_dir "$layout")" "$sentinels" $(secure_server_args) $(secure_broker_args) \
      --audit-log "$LOG_DIR/audit-broker-$n.log"
  else
    start_broker "$n" "$(layout_dir "$layout")" "$sentinels"
  fi
done

# 4. Ready means: `goulette cluster status` succeeds (a sentinel leader is
# known, every registered broker is up), it lists every sentinel and the
# three brokers, the op log shows that these brokers registered just now
# (not stale keys of a previous run; see registered_since in lib.sh), and
# every server answers 200 on /ready.
wait_until "the cluster (leader, ${#sentinel_ids[@]} sentinel(s), 3 brokers registered and up, all /ready)" \
  cluster_ready "$since" 3 "${#sentinel_ids[@]}" || fail_start "the cluster did not become ready"

if [ "$layout" = sentinel-cluster ]; then
  # The three embedded etcds must be one cluster, not three.
  status=$(timeout 10 "$GOULETTE" etcd status --etcd-endpoints "$ETCD_CLIENT_URL" 2>&1) ||
    fail_start "goulette etcd status failed: $status"
  grep -q '^members (3):' <<<"$status" ||
    fail_start "the embedded etcds did not form one 3-member cluster: $(grep '^members' <<<"$status" || echo "$status")"
  log "etcd: one cluster with 3 members"
fi
if [ "$layout" = secure ]; then secure_admin; fi
trap - INT TERM

print_cluster "$layout" "$sentinels"
if [ "$layout" = secure ]; then print_secure; fi
