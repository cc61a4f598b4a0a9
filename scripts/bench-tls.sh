#!/usr/bin/env bash
# `make bench-tls`: what TLS costs a 1 KiB durable producer. One etcd, one
# sentinel and one broker on free loopback ports (release binaries), run
# twice, plaintext then TLS on every gRPC hop (a CA and a certificate made
# with openssl), alternated ROUNDS times (default 5), each run
# `goulette bench produce` for SECONDS_PER_RUN (default 10). Prints msg/s of
# each run, and the median of each round's TLS/plaintext ratio: the rounds
# are paired because this machine's throughput drifts (fsync latency) more
# between minutes than TLS moves it. Stops what it started by pid.
set -euo pipefail
ME=bench-tls
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pids[$i]}" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# A CA and one certificate for 127.0.0.1, valid a day.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
  -extfile "$work/san.ext" -out "$work/server.crt" 2>/dev/null

# run_once MODE: one cluster, one bench run; prints msg/s, or fails
# (saying why on stderr).
run_once() {
  local mode=$1 dir etcd_port peer_port sentinel broker tls=() cli_tls=()
  dir=$(mktemp -d -p "$work")
  etcd_port=$(free_port) peer_port=$(free_port) sentinel=127.0.0.1:$(free_port) broker=127.0.0.1:$(free_port)
  if [ "$mode" = tls ]; then
    tls=(--tls-cert "$work/server.crt" --tls-key "$work/server.key" --tls-ca "$work/ca.pem")
    cli_tls=(--tls-ca "$work/ca.pem")
  fi
  etcd --name b --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "b=http://127.0.0.1:$peer_port" \
    >"$dir/etcd.log" 2>&1 &
  pids+=($!)
  "$BIN/goulette-sentinel" --address "$sentinel" --etcd-endpoints "http://127.0.0.1:$etcd_port" "${tls[@]}" \
    >"$dir/sentinel.log" 2>&1 &
  pids+=($!)
  "$BIN/goulette-broker" --id 1 --address "$broker" --data "$dir/broker" --sentinels "$sentinel" "${tls[@]}" \
    >"$dir/broker.log" 2>&1 &
  pids+=($!)
  # Up means the broker is registered too (with none, the status is healthy).
  for _ in $(seq 60); do
    "$GOULETTE" --sentinels "$sentinel" "${cli_tls[@]}" cluster status 2>/dev/null | grep -q "$broker" && break
    sleep 0.5
  done
  if ! "$GOULETTE" --sentinels "$sentinel" "${cli_tls[@]}" bench produce --topic bench --partitions 1 \
    --message-size 1024 --duration "${SECONDS_PER_RUN}s" --json "$dir/result.json" >/dev/null 2>"$dir/bench.err"; then
    warn "the $mode run failed:"
    tail -n 5 "$dir/bench.err" "$dir/broker.log" "$dir/sentinel.log" >&2
    stop_all
    rm -rf "$dir"
    return 1
  fi
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["messages_per_sec"]))' "$dir/result.json"
  stop_all
  # A run writes gigabytes: the next one must not find the disk full.
  rm -rf "$dir"
}

# run MODE: run_once, tried a second time if the first failed (a port
# taken between its choice and its use, a cluster slow to come up after
# the previous run).
run() {
  run_once "$1" || { warn "trying the $1 run once more"; run_once "$1"; } || exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
plain=() secure=() ratios=()
for round in $(seq "$ROUNDS"); do
  plain+=("$(run plain)")
  secure+=("$(run tls)")
  ratios+=("$(python3 -c "print(round(${secure[-1]} / ${plain[-1]}, 3))")")
  log "round $round: plaintext ${plain[-1]} msg/s, TLS ${secure[-1]} msg/s, ratio ${ratios[-1]}"
done
p=$(printf '%s\n' "${plain[@]}" | median)
t=$(printf '%s\n' "${secure[@]}" | median)
r=$(printf '%s\n' "${ratios[@]}" | median)
log "medians: plaintext $p msg/s, TLS $t msg/s; TLS/plaintext per round: ${ratios[*]}, median $r"
