#!/usr/bin/env bash
# `make test-package` (part of `make test`): the Debian package end to end.
#   1. builds it (make package) and checks what it holds
#   2. installs it with dpkg -i (as root; refused if goulette is installed
#      already, so that a machine's own installation is never replaced)
#   3. starts a one-broker cluster from the installed binaries and the
#      installed /etc/goulette settings (ports, etcd and data moved to free
#      ports and a temporary directory by flags, which override the file),
#      round-trips a message with the installed CLI
#   4. stops the processes by pid and purges the package: nothing is left
# Without root (dpkg -i needs it) it says so and skips.
set -euo pipefail
ME=test-package
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
MAKE=${MAKE:-make}

if [ "$(id -u)" != 0 ]; then
  log "SKIPPED: installing a package needs root (CI runs as root)"
  exit 0
fi
command -v dpkg >/dev/null || die "no dpkg: this test needs a Debian machine"
if dpkg -s goulette >/dev/null 2>&1; then
  die "the goulette package is installed on this machine already; remove it (dpkg -r goulette) to run this test"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  # Brokers first, etcd last (the reverse of the start order).
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if dpkg -s goulette >/dev/null 2>&1; then dpkg --purge goulette >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  warn "FAILED: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "----- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}

log "== make package"
deb=$("$MAKE" --no-print-directory -C "$ROOT" package | tail -1)
[ -f "$deb" ] || fail "make package made no file ($deb)"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/goulette ./usr/bin/goulette-broker ./usr/bin/goulette-sentinel ./usr/bin/goulette-mirror \
  ./lib/systemd/system/goulette-mirror.service ./usr/share/doc/goulette/examples/mirror-kafka.toml \
  ./lib/systemd/system/goulette-broker.service ./lib/systemd/system/goulette-sentinel.service \
  ./etc/goulette/broker.toml ./etc/goulette/sentinel.toml ./usr/share/doc/goulette/examples/broker.toml \
  ./var/lib/goulette/; do
  grep -q " $f\$" <<<"$contents" || fail "$deb lacks $f"
done
log "$deb holds the binaries, units, settings, examples and data directory"

log "== dpkg -i"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || fail "dpkg -i $deb"
getent passwd goulette >/dev/null || fail "no goulette system user after installing"
[ "$(stat -c %U /var/lib/goulette)" = goulette ] || fail "/var/lib/goulette is not owned by goulette"
/usr/bin/goulette --version >/dev/null || fail "the installed goulette does not run"
# Linked to the system's librdkafka (a dependency of the package).
/usr/bin/goulette-mirror --version >/dev/null || fail "the installed goulette-mirror does not run"

log "== a one-broker cluster from the installed binaries and /etc/goulette settings"
etcd_port=$(free_port) peer_port=$(free_port) sentinel=127.0.0.1:$(free_port) broker=127.0.0.1:$(free_port)
# The settings name the etcd-server package's etcd on 2379: this test runs
# its own on free ports instead.
etcd_url=http://127.0.0.1:$etcd_port
etcd --name package-test --data-dir "$work/etcd" --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "package-test=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
/usr/bin/goulette-sentinel --config /etc/goulette/sentinel.toml --address "$sentinel" --http-address "127.0.0.1:$(free_port)" \
  --etcd-endpoints "$etcd_url" --default-partitions 1 >"$work/sentinel.log" 2>&1 &
pids+=($!)
/usr/bin/goulette-broker --config /etc/goulette/broker.toml --address "$broker" --http-address "127.0.0.1:$(free_port)" \
  --kafka-address "127.0.0.1:$(free_port)" --data "$work/broker" --sentinels "$sentinel" >"$work/broker.log" 2>&1 &
pids+=($!)
export GOULETTE_SENTINELS=$sentinel
# Up means the broker is registered too (with none, the status is healthy).
for _ in $(seq 60); do
  /usr/bin/goulette cluster status >"$work/status.log" 2>&1 && grep -q "$broker" "$work/status.log" && break
  sleep 1
done
grep -q "$broker" "$work/status.log" || fail "the installed cluster did not come up"
echo "hello from the package" | timeout 30 /usr/bin/goulette produce --topic packaged || fail "produce with the installed CLI"
got=$(timeout 30 /usr/bin/goulette consume --topic packaged --from-beginning -e) || fail "consume with the installed CLI"
[ "$got" = "hello from the package" ] || fail "read back '$got'"
log "round trip through the installed binaries: '$got'"

log "== stop and purge"
cleanup
trap - EXIT
[ ! -e /usr/bin/goulette ] || fail "/usr/bin/goulette left after purging"
[ ! -e /var/lib/goulette ] || fail "/var/lib/goulette left after purging"
log "PASSED"
