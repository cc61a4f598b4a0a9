# shellcheck shell=bash
# Shared helpers of the scripts that start and stop a local Goulette cluster
# (run-all.sh, run-one.sh, stop-all.sh, status.sh, test-run-all.sh).
# Sourced, never run. The caller sets `set -euo pipefail` and ME (its name,
# used as the prefix of every message).
#
# Local run state, all relative to the repository root:
#   run/<name>.pid   pid of a process we started (broker-N, sentinel-N, etcd)
#   run/layout       which layout runs (embedded, with-etcd, sentinel-cluster),
#                    written by run-all.sh and by run-one.sh for etcd/sentinel
#   logs/<name>.log  its stdout, stderr and --log-file
#   data/...         its data (etcd data dirs, broker partition logs)
# A process is "ours" only if its pid file names a live process that runs the
# binary the name stands for (checked in /proc/PID/cmdline), so a stale pid
# file whose pid was reused by something else is never signalled.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

BIN="$ROOT/target/release"
GOULETTE="$BIN/goulette"
RUN_DIR=run
LOG_DIR=logs
DATA_DIR=data

READY_TIMEOUT=${READY_TIMEOUT:-60}   # seconds to wait for a started cluster
STOP_TIMEOUT=${STOP_TIMEOUT:-10}     # seconds a process gets after SIGTERM

# The CLI calls of these scripts talk to the local cluster, never to a
# cluster a user's current profile (`goulette profile use`) names.
unset GOULETTE_PROFILE
unset GOULETTE_CONFIG_DIR
export XDG_CONFIG_HOME="$ROOT/run/no-profiles"

# The fixed local addresses of every component.
ETCD_CLIENT_URL=http://127.0.0.1:2379
# TLS flags of `goulette etcd` calls (the secure layout's etcd asks for a
# certificate; see secure_client_env).
ETCD_TLS_ARGS=()
EMBEDDED_INITIAL_CLUSTER=sentinel-1=http://127.0.0.1:2380,sentinel-2=http://127.0.0.1:2382,sentinel-3=http://127.0.0.1:2384
sentinel_address() { echo "127.0.0.1:$((50051 + $1))"; }  # sentinel-1 -> 50052, -2 -> 50053, -3 -> 50054
broker_address() { echo "127.0.0.1:$((50060 + $1))"; }    # broker-1 -> 50061, ...
# /health, /ready and /metrics of each server.
sentinel_http_address() { echo "127.0.0.1:$((9651 + $1))"; }  # sentinel-1 -> 9652, -2 -> 9653, -3 -> 9654
broker_http_address() { echo "127.0.0.1:$((9660 + $1))"; }    # broker-1 -> 9661, ...
# The Kafka-protocol listener of each broker.
broker_kafka_address() { echo "127.0.0.1:$((9091 + $1))"; }   # broker-1 -> 9092, -2 -> 9093, -3 -> 9094

# make_target_of LAYOUT: the make target that starts LAYOUT.
make_target_of() {
  case $1 in
    embedded) echo run-all ;;
    with-etcd) echo run-all-with-etcd ;;
    secure) echo run-all-secure ;;
    sentinel-cluster) echo run-sentinel-cluster-embedded ;;
    *) echo run-all ;;
  esac
}

# one_line TEXT: the lines of TEXT joined by spaces.
one_line() { tr '\n' ' ' <<<"$1" | sed 's/ *$//'; }

log() { echo "$ME: $*"; }
warn() { echo "$ME: $*" >&2; }
die() { echo "$ME: $*" >&2; exit 1; }

# ---------------------------------------------------------------- processes

# expected_binary NAME: the program a process called NAME runs ("etcd" means
# any etcd binary, matched on its base name).
expected_binary() {
  case $1 in
    broker-*) echo "$BIN/goulette-broker" ;;
    sentinel-*) echo "$BIN/goulette-sentinel" ;;
    etcd*) echo etcd ;;
    *) return 1 ;;
  esac
}

# argv0 PID: the first word of the process's command line. Fails when the
# process is gone or a zombie (whose command line is empty).
argv0() {
  local first
  IFS= read -r -d '' first 2>/dev/null <"/proc/$1/cmdline" || return 1
  printf '%s\n' "$first"
}

# is_ours PID NAME: PID is alive and runs the binary NAME stands for.
is_ours() {
  local pid=$1 name=$2 want cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(argv0 "$pid") || return 1
  want=$(expected_binary "$name") || return 1
  if [ "$want" = etcd ]; then
    [ "$(basename -- "$cmd")" = etcd ]
  else
    [ "$cmd" = "$want" ]
  fi
}

# pid_of NAME: the pid recorded in run/NAME.pid (empty if none).
pid_of() {
  local f="$RUN_DIR/$1.pid"
  [ -f "$f" ] || return 0
  tr -dc '0-9' <"$f"
}

# is_running NAME: run/NAME.pid names a live process of ours.
is_running() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && is_ours "$pid" "$1"
}

# pid_file_names: the NAME of every run/NAME.pid, brokers first, then
# sentinels, then the rest (a standalone etcd): the order to stop them in.
pid_file_names() {
  local f names=()
  for f in "$RUN_DIR"/*.pid; do
    [ -e "$f" ] && names+=("$(basename "$f" .pid)")
  done
  [ ${#names[@]} -gt 0 ] || return 0
  printf '%s\n' "${names[@]}" | awk '
    /^broker-/   { print 0, $0; next }
    /^sentinel-/ { print 1, $0; next }
                 { print 2, $0 }' | sort -k1,1n -k2,2V | cut -d' ' -f2
}

# running_names: the names whose pid files name a live process of ours.
running_names() {
  local name
  for name in $(pid_file_names); do
    if is_running "$name"; then echo "$name"; fi
  done
}

# remove_stale_pid_files: drops every pid file whose process is gone (or is
# no longer ours), saying so.
remove_stale_pid_files() {
  local name
  for name in $(pid_file_names); do
    if ! is_running "$name"; then
      log "removing stale pid file $RUN_DIR/$name.pid (pid $(pid_of "$name") is not a running $name)"
      rm -f "$RUN_DIR/$name.pid"
    fi
  done
  if [ -z "$(pid_file_names)" ]; then rm -f "$RUN_DIR/layout"; fi
}

# etcd_children PID: the pids of the etcd processes PID started (a sentinel's
# embedded etcd), found through the parent pid in /proc/*/stat.
etcd_children() {
  local parent=$1 stat rest ppid child
  for stat in /proc/[0-9]*/stat; do
    rest=$(cat "$stat" 2>/dev/null) || continue
    child=${stat#/proc/}; child=${child%/stat}
    rest=${rest##*) }           # skip "pid (comm) ", comm may hold spaces
    ppid=$(echo "$rest" | cut -d' ' -f2)
    if [ "$ppid" = "$parent" ] && is_ours "$child" etcd; then echo "$child"; fi
  done
}

# start_bg NAME COMMAND...: starts COMMAND in the background, immune to the
# terminal's hangup, with stdout and stderr appended to logs/NAME.log, and
# records its pid in run/NAME.pid. Appends NAME to the STARTED array.
STARTED=()
start_bg() {
  local name=$1
  shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  echo "=== $(date '+%F %T') $ME: $*" >>"$LOG_DIR/$name.log"
  nohup "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
  STARTED+=("$name")
  log "started $name (pid $!), log $LOG_DIR/$name.log"
}

# wait_gone DEADLINE PID NAME...: waits until none of the given (pid, name)
# pairs is a live process of ours, or SECONDS reaches DEADLINE. Prints the
# pids still alive.
wait_gone() {
  local deadline=$1
  shift
  local alive=("$@") next i
  while :; do
    next=()
    for ((i = 0; i < ${#alive[@]}; i += 2)); do
      if is_ours "${alive[i]}" "${alive[i + 1]}"; then next+=("${alive[i]}" "${alive[i + 1]}"); fi
    done
    alive=("${next[@]+"${next[@]}"}")
    if [ ${#alive[@]} -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.2
  done
  for ((i = 0; i < ${#alive[@]}; i += 2)); do echo "${alive[i]}"; done
}

# terminate PID NAME [PID NAME...]: SIGTERM to each, up to STOP_TIMEOUT
# seconds for all of them to exit, then SIGKILL to the ones left.
terminate() {
  local pairs=("$@") i left
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    log "stopping ${pairs[i + 1]} (pid ${pairs[i]})"
    kill -TERM "${pairs[i]}" 2>/dev/null || true
  done
  left=$(wait_gone $((SECONDS + STOP_TIMEOUT)) "${pairs[@]}")
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    if grep -qx "${pairs[i]}" <<<"$left"; then
      warn "${pairs[i + 1]} (pid ${pairs[i]}) still runs ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
      kill -KILL "${pairs[i]}" 2>/dev/null || true
    fi
  done
  if [ -n "$left" ]; then
    left=$(wait_gone $((SECONDS + 5)) "${pairs[@]}")
    [ -z "$left" ] || warn "pids still alive after SIGKILL: $left"
  fi
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    if ! grep -qx "${pairs[i]}" <<<"$left"; then log "${pairs[i + 1]} stopped"; fi
  done
}

# group_of NAME: the stop order of a component: brokers (0) before
# sentinels (1) before the rest, a standalone etcd (2).
group_of() {
  case $1 in
    broker-*) echo 0 ;;
    sentinel-*) echo 1 ;;
    *) echo 2 ;;
  esac
}

# stop_names NAME...: stops the given components gracefully, brokers first
# (together), then sentinels (one at a time, so that a 3-member embedded etcd
# keeps its quorum while its members leave; stopped together, the last etcd
# hangs until its sentinel kills it), then the rest (a standalone etcd), and
# removes their pid files. A sentinel stops its embedded etcd itself; if the
# sentinel had to be killed, that etcd is stopped here afterwards.
stop_names() {
  local group name pid pairs etcd_kids=() kid i
  for group in 0 1 2; do
    pairs=()
    for name in "$@"; do
      if [ "$(group_of "$name")" != "$group" ] || [ ! -f "$RUN_DIR/$name.pid" ]; then continue; fi
      pid=$(pid_of "$name")
      if [ -n "$pid" ] && is_ours "$pid" "$name"; then
        pairs+=("$pid" "$name")
        if [[ $name == sentinel-* ]]; then
          for kid in $(etcd_children "$pid"); do etcd_kids+=("$kid"); done
        fi
      else
        log "$name is not running (stale pid file)"
      fi
    done
    if [ "$group" = 1 ]; then
      for ((i = 0; i < ${#pairs[@]}; i += 2)); do terminate "${pairs[i]}" "${pairs[i + 1]}"; done
    elif [ ${#pairs[@]} -gt 0 ]; then
      terminate "${pairs[@]}"
    fi
    for name in "$@"; do
      if [ "$(group_of "$name")" = "$group" ]; then rm -f "$RUN_DIR/$name.pid"; fi
    done
  done
  pairs=()
  for kid in "${etcd_kids[@]+"${etcd_kids[@]}"}"; do
    if is_ours "$kid" etcd; then pairs+=("$kid" "etcd"); fi
  done
  if [ ${#pairs[@]} -gt 0 ]; then
    warn "an embedded etcd outlived its sentinel; stopping it too"
    terminate "${pairs[@]}"
  fi
  if [ -z "$(pid_file_names)" ]; then rm -f "$RUN_DIR/layout"; fi
}

# ---------------------------------------------------------------- readiness

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# http_request HOST:PORT PATH: the raw HTTP/1.0 response to GET PATH (bash's
# /dev/tcp: no curl needed on a fresh machine).
http_request() {
  local host=${1%:*} port=${1##*:}
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3 && cat <&3' \
    "$host" "$port" "$2"
}

# http_status HOST:PORT PATH: the status code of GET PATH.
http_status() {
  local response
  response=$(http_request "$1" "$2") || return 1
  awk 'NR == 1 { print $2 }' <<<"$response"
}

# http_body HOST:PORT PATH: the body of GET PATH.
http_body() {
  http_request "$1" "$2" | sed '1,/^\r\{0,1\}$/d'
}

# require_free_ports PORT...: fails, naming the ports, if any is taken.
require_free_ports() {
  local port busy=()
  for port in "$@"; do
    if port_in_use "$port"; then busy+=("$port"); fi
  done
  [ ${#busy[@]} -eq 0 ] ||
    die "port(s) ${busy[*]} on 127.0.0.1 already in use by a process not started here (see: ss -ltnp); stop it first"
}

# json_objects: flattens JSON into one line per innermost object, so that
# each broker or sentinel entry of `cluster status --format json` is a line
# like "address":"127.0.0.1:50061","id":1,"state":"up" (key order free).
json_objects() {
  tr -d ' \t\n' | sed 's/[{}]/\n/g'
}

# cluster_json: `goulette cluster status --format json`, bounded in time.
# Its exit status is the command's (0 only when a sentinel leader is known and
# every registered broker is up).
cluster_json() {
  timeout 10 "$GOULETTE" cluster status --format json 2>/dev/null
}

# brokers_up JSON: how many brokers the status lists as up.
brokers_up() {
  json_objects <<<"$1" | grep '"state":"up"' | grep -c '"id":[0-9]' || true
}

# sentinels_listed JSON: how many sentinels the status lists.
sentinels_listed() {
  json_objects <<<"$1" | grep '"leader":' | grep -c '"id":"' || true
}

# check_started_alive: fails, naming it, if a process started by this script
# has already exited (no point waiting for the deadline then).
check_started_alive() {
  local name
  for name in "${STARTED[@]+"${STARTED[@]}"}"; do
    if ! is_running "$name"; then
      warn "$name exited during start-up"
      return 1
    fi
  done
}

# wait_until DESCRIPTION COMMAND...: runs COMMAND every half second until it
# succeeds (returns 0), a started process dies, or READY_TIMEOUT passes.
wait_until() {
  local what=$1 deadline=$((SECONDS + READY_TIMEOUT))
  shift
  log "waiting up to ${READY_TIMEOUT}s for $what"
  while :; do
    if "$@"; then
      log "$what: ready after $((SECONDS - deadline + READY_TIMEOUT))s"
      return 0
    fi
    check_started_alive || return 1
    if [ "$SECONDS" -ge "$deadline" ]; then
      warn "timed out after ${READY_TIMEOUT}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# etcd_ready: the etcd at ETCD_CLIENT_URL answers.
etcd_ready() {
  timeout 10 "$GOULETTE" etcd status --etcd-endpoints "$ETCD_CLIENT_URL" "${ETCD_TLS_ARGS[@]}" >/dev/null 2>&1
}

# sentinel_ready ADDRESS: cluster status lists the sentinel at ADDRESS and
# some sentinel is the leader (brokers may be down: exit status ignored).
sentinel_ready() {
  local objs
  objs=$(cluster_json | json_objects) || true
  grep -q "\"address\":\"$1\"" <<<"$objs" && grep -q '"leader":true' <<<"$objs"
}

# broker_ready SINCE N: cluster status lists broker N as up, and it
# registered at or after SINCE (see registered_since).
broker_ready() {
  local objs
  objs=$(cluster_json | json_objects) || true
  [ "$(grep '"state":"up"' <<<"$objs" | grep -Ec "\"id\":$2(,|\$)")" -gt 0 ] && registered_since "$1" "$2"
}

# now_utc: the current time in the op log's format (2026-11-22T10:16:37.905Z),
# so that timestamps compare as strings.
now_utc() {
  date -u +%Y-%m-%dT%H:%M:%S.%3NZ
}

# registered_since SINCE N...: the op log in etcd holds, for each broker N, a
# `register-broker` op committed at or after SINCE (see now_utc).
# Why: the broker, sentinel and election keys are bound to leases, and etcd
# gives every lease a fresh TTL when it restarts; so for a few seconds after a
# restart, `cluster status` shows the previous run's brokers as up and its
# leader as leader. A registration committed by this run proves that a real
# leader works and that the broker we started is the one registered.
registered_since() {
  local since=$1 ops n
  shift
  ops=$(timeout 10 "$GOULETTE" etcd ops --last 1000 --etcd-endpoints "$ETCD_CLIENT_URL" "${ETCD_TLS_ARGS[@]}" 2>/dev/null) ||
    return 1
  for n in "$@"; do
    # Columns: SEQ TIME SENTINEL KIND DETAIL ("broker N at ADDRESS session ...")
    awk -v since="$since" -v n="$n" '
      $4 == "register-broker" && $2 >= since && $5 == "broker" && $6 == n { found = 1 }
      END { exit !found }' <<<"$ops" || return 1
  done
}

# cluster_ready SINCE BROKERS SENTINELS: cluster status succeeds, lists at
# least SENTINELS sentinels and brokers 1..BROKERS up, each of these
# brokers registered at or after SINCE, and every one of these servers
# answers 200 on /ready (what a readiness probe asks).
cluster_ready() {
  local since=$1 brokers=$2 sentinels=$3 json n
  json=$(cluster_json) || return 1
  [ "$(brokers_up "$json")" -ge "$brokers" ] && [ "$(sentinels_listed "$json")" -ge "$sentinels" ] &&
    registered_since "$since" $(seq 1 "$brokers") || return 1
  for n in $(seq 1 "$sentinels"); do
    [ "$(http_status "$(sentinel_http_address "$n")" /ready)" = 200 ] || return 1
  done
  for n in $(seq 1 "$brokers"); do
    [ "$(http_status "$(broker_http_address "$n")" /ready)" = 200 ] || return 1
  done
}

# show_logs NAME...: for a failure, the last lines each component logged
# since it was started (start_bg writes a "=== " line at each start), and the
# end of its embedded etcd's own log if it has one.
show_logs() {
  local name f
  for name in "$@"; do
    f="$LOG_DIR/$name.log"
    if [ -f "$f" ]; then
      echo "----- $f (last 30 lines of this start)" >&2
      awk '/^=== / { n = 0 } { line[++n] = $0 } END { for (i = (n > 30 ? n - 29 : 1); i <= n; i++) print line[i] }' "$f" >&2
    fi
    for f in "$DATA_DIR/etcd-$name.log" "$(layout_dir sentinel-cluster)/etcd-$name.log"; do
      if [ "$name" != "${name#sentinel-}" ] && [ -f "$f" ] && [ "$f" -nt "$RUN_DIR/$name.pid" ]; then
        echo "----- $f (embedded etcd, last 15 lines)" >&2
        tail -n 15 "$f" >&2
      fi
    done
  done
  echo "-----" >&2
}

# fail_start MESSAGE: after a failed start, shows the logs of what this
# script started, stops it (by pid), and exits 1.
fail_start() {
  warn "$1"
  show_logs "${STARTED[@]+"${STARTED[@]}"}"
  if [ ${#STARTED[@]} -gt 0 ]; then
    warn "stopping what was started (logs stay in $LOG_DIR/)"
    stop_names "${STARTED[@]}" >&2
  fi
  exit 1
}

# ---------------------------------------------------------------- components

# build_release: `make build-release` (installs missing deps, then an
# incremental cargo build; a no-op when up to date).
build_release() {
  log "building the release binaries (make build-release)"
  "${MAKE:-make}" --no-print-directory -C "$ROOT" build-release
}

# layout_dir LAYOUT: where a layout's brokers keep their partitions (and the
# 3-sentinel layout its etcd data). Each metadata store has its own brokers:
# a broker directory written under one etcd must not be served under another
# (the same topic would find the other cluster's messages), and an etcd data
# dir created as a one-member cluster can never join a three-member one.
#   embedded          data/broker-N        (metadata: data/etcd-sentinel-1)
#   with-etcd         data/with-etcd/broker-N  (metadata: data/etcd)
#   sentinel-cluster  data/sentinel-cluster/{etcd-sentinel-N,broker-N}
layout_dir() {
  case $1 in
    with-etcd) echo "$DATA_DIR/with-etcd" ;;
    secure) echo "$DATA_DIR/secure" ;;
    sentinel-cluster) echo "$DATA_DIR/sentinel-cluster" ;;
    *) echo "$DATA_DIR" ;;
  esac
}

# current_layout: the layout recorded in run/layout (empty if none).
current_layout() {
  cat "$RUN_DIR/layout" 2>/dev/null || true
}

# set_layout LAYOUT: records what the running metadata store is.
set_layout() {
  mkdir -p "$RUN_DIR"
  echo "$1" >"$RUN_DIR/layout"
}

# start_etcd: a standalone etcd, client port 2379, peer port 2380, data/etcd.
start_etcd() {
  local etcd
  etcd=$(command -v etcd) || die "no etcd binary on PATH; run: make deps"
  mkdir -p "$DATA_DIR"
  start_bg etcd "$etcd" --name etcd-1 --data-dir "$DATA_DIR/etcd" \
    --listen-client-urls "$ETCD_CLIENT_URL" --advertise-client-urls "$ETCD_CLIENT_URL" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster etcd-1=http://127.0.0.1:2380 --initial-cluster-state new \
    --logger zap --log-outputs stderr
}

# start_sentinel N MODE [FLAG...]: sentinel-N at sentinel_address N, with
# the extra FLAGs. MODE is
#   external          use the etcd at ETCD_CLIENT_URL (--etcd-endpoints)
#   embedded          its own one-member etcd on 2379/2380 in data/etcd-sentinel-N
#   secure            the same in data/secure/etcd-sentinel-N
#   sentinel-cluster  member N of the 3-member embedded etcd: client port
#                     2377+2N (2379, 2381, 2383), peer port one above, data
#                     in data/sentinel-cluster/etcd-sentinel-N
start_sentinel() {
  local n=$1 mode=$2 name="sentinel-$1" client
  shift 2
  local args=(--id "$name" --address "$(sentinel_address "$n")" --http-address "$(sentinel_http_address "$n")"
    --log-file "$LOG_DIR/$name.log" --log-console=false)
  case $mode in
    external) args+=(--etcd-endpoints "$ETCD_CLIENT_URL") ;;
    embedded)
      args+=(--embedded-etcd --etcd-port 2379 --etcd-peer-port 2380 --etcd-data-dir "$DATA_DIR/etcd-$name") ;;
    secure)
      args+=(--embedded-etcd --embedded-etcd-tls --etcd-port 2379 --etcd-peer-port 2380
        --etcd-data-dir "$(layout_dir secure)/etcd-$name" --audit-log "$LOG_DIR/audit-$name.log") ;;
    sentinel-cluster)
      client=$((2377 + 2 * n))
      args+=(--embedded-etcd --etcd-port "$client" --etcd-peer-port $((client + 1))
        --etcd-data-dir "$(layout_dir sentinel-cluster)/etcd-$name" --etcd-initial-cluster "$EMBEDDED_INITIAL_CLUSTER") ;;
    *) die "start_sentinel: unknown mode $mode" ;;
  esac
  mkdir -p "$(layout_dir "$mode")"
  start_bg "$name" "$BIN/goulette-sentinel" "${args[@]}" "$@"
}

# start_broker N DATA_ROOT SENTINELS [FLAG...]: broker-N at broker_address
# N, storing its partitions in DATA_ROOT/broker-N, with the extra FLAGs.
start_broker() {
  local n=$1 root=$2 sentinels=$3 name="broker-$1"
  shift 3
  mkdir -p "$root"
  start_bg "$name" "$BIN/goulette-broker" --id "$n" --address "$(broker_address "$n")" \
    --http-address "$(broker_http_address "$n")" --kafka-address "$(broker_kafka_address "$n")" \
    --data "$root/$name" --sentinels "$sentinels" \
    --log-file "$LOG_DIR/$name.log" --log-console=false "$@"
}

# print_cluster LAYOUT SENTINELS: what runs (from the pid files), and the
# commands to use and stop it.
print_cluster() {
  local layout=$1 sentinels=$2 name n addr http extra flag="" goulette="target/release/goulette"
  echo
  echo "Goulette is running (layout: ${layout:-started piece by piece}):"
  # etcd first, then sentinels, then brokers: the order they start in.
  for name in $(running_names | awk '{ print (/^etcd/ ? 0 : /^sentinel-/ ? 1 : 2), $0 }' | sort -k1,1n -k2,2V | cut -d' ' -f2); do
    n=${name##*-}
    extra=""
    http="-"
    case $name in
      etcd) addr="$ETCD_CLIENT_URL"; extra="  data $DATA_DIR/etcd" ;;
      sentinel-*)
        addr=$(sentinel_address "$n")
        http="http://$(sentinel_http_address "$n")"
        case $layout in
          embedded) extra="  embedded etcd $ETCD_CLIENT_URL (data $DATA_DIR/etcd-$name)" ;;
          secure) extra="  embedded etcd https://127.0.0.1:2379, TLS (data $(layout_dir secure)/etcd-$name)" ;;
          sentinel-cluster) extra="  embedded etcd http://127.0.0.1:$((2377 + 2 * n)) (data $(layout_dir sentinel-cluster)/etcd-$name)" ;;
        esac ;;
      broker-*)
        addr=$(broker_address "$n")
        http="http://$(broker_http_address "$n")"
        extra="  kafka $(broker_kafka_address "$n")  data $(layout_dir "$layout")/$name" ;;
      *) addr="?" ;;
    esac
    printf '  %-11s %-22s http %-23s pid %-7s log %s%s\n' "$name" "$addr" "$http" "$(pid_of "$name")" \
      "$LOG_DIR/$name.log" "$extra"
  done
  if [ "$layout" = secure ]; then
    # How to connect follows (print_secure): the plaintext commands below would be refused.
    printf '\nStop everything:  make stop-all\n'
    return
  fi
  if [ "$sentinels" != 127.0.0.1:50052 ]; then flag=" --sentinels $sentinels"; fi
  cat <<USAGE

Produce and consume:
  echo hello | $goulette produce$flag --topic demo
  $goulette consume$flag --topic demo --from-beginning --max-messages 1
  $goulette cluster status$flag
  or: make run-producer TOPIC=demo${flag:+ SENTINELS=$sentinels}   and   make run-consumer TOPIC=demo${flag:+ SENTINELS=$sentinels}
Kafka clients (bootstrap $(broker_kafka_address 1)):
  kcat -b $(broker_kafka_address 1) -L
  echo hello | kcat -b $(broker_kafka_address 1) -P -t demo   and   kcat -b $(broker_kafka_address 1) -C -t demo -e
Health and metrics: curl http://HTTP/ready, curl http://HTTP/metrics (HTTP: the addresses above)
Metadata in etcd: make etcd-status, make etcd-topics, make etcd-operations
Stop everything:  make stop-all
USAGE
}
