#!/usr/bin/env bash
# Installs what building and testing Goulette needs and this machine lacks.
# A no-op when everything is present. Debian/Ubuntu (apt-get) only.
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)   # etcd-client's build script runs protoc
# ... and imports Google's well-known types, which Debian ships in
# libprotobuf-dev (only recommended by protobuf-compiler, and recommends
# are not installed below).
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)           # integration tests start a real etcd
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)        # make etcd-* targets
command -v cc >/dev/null 2>&1 || need+=(gcc)                     # zstd's C sources, and lz4's (kafka-protocol, a test oracle)
command -v python3 >/dev/null 2>&1 || need+=(python3)               # make lint's structure checks
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)  # clock-step tests (libfaketime)
command -v kcat >/dev/null 2>&1 || need+=(kcat)                  # Kafka-protocol tests (librdkafka's CLI)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)  # the Kafka clients' virtualenv
command -v openssl >/dev/null 2>&1 || need+=(openssl)            # make run-all-secure's private CA
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)  # the mirror's RabbitMQ tests start a real node
[ -f /usr/include/librdkafka/rdkafka.h ] || need+=(librdkafka-dev)  # the mirror's Kafka source links Debian's librdkafka
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)     # ... found through pkg-config

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing; install Rust >= 1.88 from https://rustup.rs" >&2
  exit 1
fi

# The Python Kafka clients (confluent-kafka, kafka-python) in .venv/, at
# the versions of scripts/python-requirements.txt; reinstalled when those
# change. Run after the system packages (it needs python3-venv).
python_clients() {
  local root venv requirements
  root=$(cd "$(dirname "$0")/.." && pwd)
  venv=$root/.venv
  requirements=$root/scripts/python-requirements.txt
  if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
    return
  fi
  echo "deps: installing the Python Kafka clients into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  # kafka-python's source archive: its integration suite runs against
  # Goulette (broker/tests/kafka_python_suite.rs).
  "$venv/bin/pip" download -q --disable-pip-version-check --no-binary :all: --no-deps \
    "$(grep '^kafka-python==' "$requirements")" -d "$venv/sdist"
  cp "$requirements" "$venv/requirements.txt"
}

if [ ${#need[@]} -eq 0 ]; then
  python_clients
  echo "deps: everything is installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# On a systemd host the etcd-server package starts a default etcd on
# 2379/2380; Goulette's tests use their own ports, so it may keep running.
python_clients
