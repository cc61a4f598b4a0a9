#!/usr/bin/env bash
# `make test-run-all`: an end-to-end check of `make run-all` / `make stop-all`
# on this machine's default ports (2379/2380, 50052, 50061-50063, Kafka 9092-9094).
#   1. refuses unless nothing of ours runs (no live pid in run/)
#   2. builds the release binaries (bounded by BUILD_TIMEOUT, default 1800 s)
#   3. make run-all; produces "hello" to a fresh topic and consumes it back
#      (and keyed lines with headers, read back with consume -e --format);
#      kcat lists the 3 brokers on the Kafka port 9092 and round-trips a
#      message that the native consumer reads too
#   4. make run-all again must report the running cluster, same pids
#   5. make stop-all; every started pid (and the embedded etcd) must be gone
#   6. make etcd-topics / etcd-backup on the stopped cluster (a temporary etcd
#      on its data directory), which leaves nothing running
#   7. make run-all-secure: strangers refused, admin served, alice only once a
#      binding lets her (goulette and kcat over SASL_SSL); make stop-all
# Every step has its own time limit; on failure it stops what it started.
set -euo pipefail
ME=test-run-all
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

MAKE=${MAKE:-make}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
step() { echo; log "== $*"; }
fail() {
  warn "FAILED: $*"
  exit 1
}

# 1. Clean state.
running=$(running_names)
[ -z "$running" ] || die "refusing to run: a local cluster is running ($(one_line "$running")); run 'make stop-all' first"

# From here on, whatever this test started is stopped on the way out.
started_by_us=false
cleanup() {
  local rc=$?
  if [ "$started_by_us" = true ] && [ -n "$(running_names)" ]; then
    warn "stopping the cluster this test started"
    "$ROOT/scripts/stop-all.sh" >&2 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

start_time=$SECONDS

step "build (make build-release, at most ${BUILD_TIMEOUT}s)"
timeout "$BUILD_TIMEOUT" "$MAKE" --no-print-directory -C "$ROOT" build-release || fail "make build-release"

step "make run-all"
started_by_us=true
timeout $((READY_TIMEOUT + 120)) "$MAKE" --no-print-directory -C "$ROOT" run-all || fail "make run-all"

# Every pid we must see gone at the end: the pid files' and the embedded etcd.
declare -A pids=()
for name in $(running_names); do
  pids[$name]=$(pid_of "$name")
done
[ ${#pids[@]} -eq 4 ] || fail "expected 4 processes in $RUN_DIR/ (sentinel-1, broker-1..3), got: ${!pids[*]}"
etcd_pid=$(etcd_children "${pids[sentinel-1]}")
[ -n "$etcd_pid" ] || fail "sentinel-1 has no embedded etcd child"
log "started: $(for n in "${!pids[@]}"; do printf '%s=%s ' "$n" "${pids[$n]}"; done)embedded-etcd=$etcd_pid"

step "produce hello, consume it back"
topic="test-run-all-$(date +%s)-$$"     # a fresh topic: earlier runs' messages cannot answer
echo hello | timeout 30 "$GOULETTE" produce --topic "$topic" || fail "produce to $topic"
got=$(timeout 40 "$GOULETTE" consume --topic "$topic" --from-beginning --max-messages 1 --timeout 30s) ||
  fail "consume from $topic"
[ "$got" = hello ] || fail "consumed '$got' from $topic, expected 'hello'"
log "consumed '$got' from topic $topic"

step "the README's keys, headers and -e: produce -K : -H, consume -e --format"
ktopic="test-run-all-keys-$(date +%s)-$$"
printf 'user-1:login\nuser-2:logout\n' | timeout 30 "$GOULETTE" produce --topic "$ktopic" --partition 0 -K : -H source=readme ||
  fail "produce -K : -H to $ktopic"
got=$(timeout 40 "$GOULETTE" consume --topic "$ktopic" --from-beginning -e --format '%o %k=%v [%h]\n') ||
  fail "consume -e from $ktopic"
[ "$got" = "$(printf '0 user-1=login [source=readme]\n1 user-2=logout [source=readme]')" ] ||
  fail "consume -e read '$got' from $ktopic"
log "keys and headers read back, and consume -e ended by itself"

step "Kafka protocol: kcat -L lists the 3 brokers; a kcat message is read back by kcat and the native consumer"
bootstrap=$(broker_kafka_address 1)
listing=$(timeout 30 kcat -b "$bootstrap" -L) || fail "kcat -b $bootstrap -L"
for n in 1 2 3; do
  grep -q "broker $n at $(broker_kafka_address "$n")" <<<"$listing" || fail "kcat -L lacks broker $n: $listing"
done
ktopic="test-run-all-kafka-$(date +%s)-$$"
echo "k1:from-kcat" | timeout 30 kcat -b "$bootstrap" -P -t "$ktopic" -K: -z zstd || fail "kcat -P to $ktopic"
got=$(timeout 30 kcat -b "$bootstrap" -C -t "$ktopic" -o beginning -e -f '%k=%s\n') || fail "kcat -C from $ktopic"
[ "$got" = "k1=from-kcat" ] || fail "kcat read '$got' from $ktopic, expected 'k1=from-kcat'"
got=$(timeout 40 "$GOULETTE" consume --topic "$ktopic" --from-beginning --max-messages 1 --timeout 30s) ||
  fail "native consume from $ktopic"
[ "$got" = from-kcat ] || fail "the native consumer read '$got' from $ktopic, expected 'from-kcat'"
log "kcat -L shows brokers 1-3 at $(broker_kafka_address 1)-$(broker_kafka_address 3 | cut -d: -f2); kcat and native reads agree"

step "every server is ready and serves metrics on its HTTP address"
for addr in "$(sentinel_http_address 1)" "$(broker_http_address 1)" "$(broker_http_address 2)" "$(broker_http_address 3)"; do
  status=$(http_status "$addr" /ready) || fail "nothing answers on http://$addr/ready"
  [ "$status" = 200 ] || fail "http://$addr/ready answered $status"
  # Into a variable first: `grep -q` would close the pipe early, and under
  # pipefail the writer's SIGPIPE would count as a failure.
  body=$(http_body "$addr" /metrics) || fail "nothing answers on http://$addr/metrics"
  grep -q '^goulette_process_resident_memory_bytes ' <<<"$body" ||
    fail "http://$addr/metrics lacks goulette_process_resident_memory_bytes"
done
log "/ready 200 and /metrics on the sentinel and the 3 brokers"

step "make run-all again must report the running cluster"
out=$(timeout 300 "$MAKE" --no-print-directory -C "$ROOT" run-all 2>&1) || { echo "$out"; fail "second make run-all failed"; }
echo "$out"
grep -q "already running" <<<"$out" || fail "second make run-all did not report the running cluster"
for name in "${!pids[@]}"; do
  [ "$(pid_of "$name")" = "${pids[$name]}" ] || fail "$name's pid changed: a second cluster was started"
done
log "reported the running cluster, same pids"

step "make stop-all"
timeout 120 "$MAKE" --no-print-directory -C "$ROOT" stop-all || fail "make stop-all"
started_by_us=false
for name in "${!pids[@]}"; do
  ! is_ours "${pids[$name]}" "$name" || fail "$name (pid ${pids[$name]}) still runs after stop-all"
done
! is_ours "$etcd_pid" etcd || fail "the embedded etcd (pid $etcd_pid) still runs after stop-all"
leftover=$(pid_file_names)
[ -z "$leftover" ] || fail "pid files left in $RUN_DIR/: $leftover"
for port in 2379 2380 50052 50061 50062 50063 9652 9661 9662 9663 9092 9093 9094; do
  ! port_in_use "$port" || fail "port $port still in use after stop-all"
done
log "every started process is gone, no pid file left, ports free"

step "the stopped cluster's metadata: make etcd-topics and etcd-backup through a temporary etcd"
out=$(timeout 120 "$MAKE" --no-print-directory -C "$ROOT" etcd-topics 2>&1) || { echo "$out"; fail "make etcd-topics on the stopped cluster"; }
grep -q "topic $topic:" <<<"$out" || { echo "$out"; fail "make etcd-topics on the stopped cluster lacks topic $topic"; }
backup_file=$(mktemp -d)/backup.json
out=$(timeout 120 "$MAKE" --no-print-directory -C "$ROOT" etcd-backup BACKUP="$backup_file" 2>&1) || { echo "$out"; fail "make etcd-backup on the stopped cluster"; }
grep -q "^wrote " <<<"$out" || { echo "$out"; fail "make etcd-backup wrote nothing"; }
for port in 2379 2380; do
  ! port_in_use "$port" || fail "port $port still in use after the temporary etcd"
done
rm -rf "$(dirname "$backup_file")"
log "read and backed up with no cluster running; the temporary etcd is gone"

step "make run-all-secure: TLS, logins and ACLs; admin works, alice only where a binding lets her"
started_by_us=true
timeout $((READY_TIMEOUT + 120)) "$MAKE" --no-print-directory -C "$ROOT" run-all-secure || fail "make run-all-secure"
secure=$ROOT/data/secure
[ -f "$secure/ca.pem" ] && [ -f "$secure/admin.password" ] || fail "make run-all-secure left no CA or admin password in $secure"
as_admin=(env GOULETTE_TLS_CA="$secure/ca.pem" GOULETTE_USER=admin GOULETTE_PASSWORD="$(cat "$secure/admin.password")")
alice="alice-$(date +%s)-$$"   # data/secure/ outlives a run: a new user each time
as_alice=(env GOULETTE_TLS_CA="$secure/ca.pem" GOULETTE_USER="$alice" GOULETTE_PASSWORD=alice-secret)
stopic="test-run-all-secure-$(date +%s)-$$"
! timeout 20 env GOULETTE_TLS_CA="$secure/ca.pem" "$GOULETTE" topic list >/dev/null 2>&1 ||
  fail "an anonymous client was served by the secure cluster"
timeout 30 "${as_admin[@]}" "$GOULETTE" topic create "$stopic" --partitions 1 >/dev/null || fail "admin: topic create"
echo secret | timeout 30 "${as_admin[@]}" "$GOULETTE" produce --topic "$stopic" || fail "admin: produce"
echo alice-secret | timeout 30 "${as_admin[@]}" "$GOULETTE" user create "$alice" >/dev/null || fail "admin: user create $alice"
! echo nope | timeout 30 "${as_alice[@]}" "$GOULETTE" produce --topic "$stopic" 2>/dev/null ||
  fail "alice produced with no binding"
timeout 30 "${as_admin[@]}" "$GOULETTE" acl add --principal "User:$alice" --operation read,write --topic "$stopic" >/dev/null ||
  fail "admin: acl add"
echo from-alice | timeout 30 "${as_alice[@]}" "$GOULETTE" produce --topic "$stopic" || fail "alice: produce with a binding"
kcat_alice=(kcat -b "$bootstrap" -X security.protocol=sasl_ssl -X ssl.ca.location="$secure/ca.pem"
  -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username="$alice" -X sasl.password=alice-secret)
got=$(timeout 30 "${kcat_alice[@]}" -C -t "$stopic" -o beginning -e) || fail "alice: kcat over SASL_SSL"
[ "$got" = "$(printf 'secret\nfrom-alice')" ] || fail "alice read '$got' with kcat"
timeout 120 "$MAKE" --no-print-directory -C "$ROOT" stop-all || fail "make stop-all (secure)"
started_by_us=false
log "the secure cluster refused strangers, served admin and alice as their bindings say, over SASL_SSL too"

echo
log "PASSED in $((SECONDS - start_time))s"
