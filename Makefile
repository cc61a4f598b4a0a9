# Goulette: the commands users type. `make help` lists them.
CARGO ?= cargo

# The release binaries the run targets use.
GOULETTE := target/release/goulette

# Settings of the run and etcd targets (override on the command line:
# `make run-consumer TOPIC=orders`).
TOPIC ?= demo
BROKER_ID ?= 1
SENTINELS ?= $(or $(GOULETTE_SENTINELS),127.0.0.1:50052)
ETCD_ENDPOINTS ?= $(or $(GOULETTE_ETCD_ENDPOINTS),http://127.0.0.1:2379)
BACKUP ?= backup/goulette-$(shell date +%Y%m%d-%H%M%S).json
CONFIRM ?=
ARGS ?=

# The scripts call make again (build-release); they use this one.
export MAKE

.PHONY: help deps build build-release test fmt fmt-check lint clean bench chaos bench-replicated bench-tls bench-mirror bench-storage bench-delayed bench-partitions bench-failover fuzz-batch \
	run-all run-all-secure run-all-with-etcd run-sentinel-cluster-embedded stop-all status test-run-all package test-package \
	run-etcd run-sentinel run-broker run-producer run-consumer \
	etcd-status etcd-topics etcd-operations etcd-clean etcd-backup etcd-restore

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-30s %s\n", $$1, $$2}'

deps: ## install what the build and the tests need (protoc, etcd, kcat, the Python Kafka clients in .venv/) if missing
	@scripts/deps.sh

build: deps ## build every crate (debug)
	$(CARGO) build --workspace --locked

build-release: deps ## build the release binaries
	$(CARGO) build --workspace --release --locked

test: deps ## every test: unit, property, crash, process tests, then run-all/stop-all end to end, then the Debian package (installed as root)
	# Process tests start the binaries of other crates: build them all first.
	CARGO_INCREMENTAL=0 $(CARGO) build --workspace --bins --locked
	CARGO_INCREMENTAL=0 $(CARGO) test --workspace --locked
	@scripts/test-run-all.sh
	@scripts/test-package.sh

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check formatting
	$(CARGO) fmt --all -- --check

lint: deps ## clippy with warnings as errors, a formatting check, no import cycles between the files of a crate, no over-long files
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) fmt --all -- --check
	python3 scripts/import-cycles.py
	python3 scripts/long-files.py

bench: deps ## the goulette bench suite of issue 6 on release builds (about 7½ minutes of runs, 12 with the release build, TLS and mirror rows included); appends to docs/benchmarks.md
	$(CARGO) build --workspace --bins --release --locked
	$(CARGO) test -p goulette-cli --release --locked --test bench -- --ignored --nocapture bench_suite
	$(CARGO) test -p goulette-mirror --release --locked --test bench -- --ignored --nocapture bench_mirror

bench-mirror: deps ## goulette-mirror's throughput, 1 KiB records: Goulette → Goulette (Kafka source, at least and exactly once) and RabbitMQ → Goulette, against each side alone (about 2 minutes)
	$(CARGO) build --workspace --bins --release --locked
	$(CARGO) test -p goulette-mirror --release --locked --test bench -- --ignored --nocapture bench_mirror

SEED ?=
DURATION ?= 300
chaos: deps ## fault injection for DURATION seconds (default 300), SEED= to replay; fails on any lost or reordered ack
	CARGO_INCREMENTAL=0 $(CARGO) build --workspace --bins --locked
	SEED=$(SEED) DURATION=$(DURATION) $(CARGO) test -p goulette-client --locked --test chaos -- --ignored --nocapture chaos

FAILOVER_KILLS ?= 20
bench-failover: deps ## kill -9 a partition leader FAILOVER_KILLS times (default 20); print failover time p50/max
	CARGO_INCREMENTAL=0 $(CARGO) build --workspace --bins --locked
	FAILOVER_KILLS=$(FAILOVER_KILLS) $(CARGO) test -p goulette-client --locked --test failover_time -- --ignored --nocapture

bench-replicated: deps ## RF=3 acks=all 1 KiB throughput, one producer, 3 brokers (release builds)
	$(CARGO) build --workspace --bins --release --locked
	$(CARGO) test -p goulette-client --release --locked --test replicated_throughput -- --ignored --nocapture

bench-tls: deps ## 1 KiB durable produce over plaintext and over TLS on every gRPC hop, alternated ROUNDS times (default 3): msg/s and the ratio
	$(CARGO) build --workspace --bins --release --locked
	@scripts/bench-tls.sh

bench-acl: ## ACL check latency with 10,000 bindings over 1,000 topics: p50/p99/p99.9 per check (target p99 ≤ 2 µs)
	$(CARGO) bench -p goulette-auth --locked --bench acl

bench-delayed: deps ## delayed records (1 h ahead) against plain ones, 1 KiB durable, alternated 3 times (about a minute; a row of make bench)
	$(CARGO) build --workspace --bins --release --locked
	$(CARGO) test -p goulette-cli --release --locked --test bench -- --ignored --nocapture bench_delayed

bench-partitions: deps ## 10,000 partitions, RF=3, 3 brokers: time until all are served by a leader, broker RSS per idle partition (a row of make bench; about a minute)
	$(CARGO) build --workspace --bins --release --locked
	$(CARGO) test -p goulette-cli --release --locked --test bench -- --ignored --nocapture bench_partitions

bench-storage: deps ## criterion benchmarks of the storage engine (about 10 minutes)
	$(CARGO) bench -p goulette-storage --locked --bench log

FUZZ_SECONDS ?= 120
fuzz-batch: ## fuzz the record-batch decoder for FUZZ_SECONDS (default 120) with cargo-fuzz
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	# cargo-fuzz passes nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
	cd storage && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run batch_decode -- \
		-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536

# ---------------------------------------------------------------- local cluster
# Processes run in the background: pids in run/, logs in logs/, data in data/.
# The start scripts build first (make build-release) unless the cluster already runs.

run-all: ## build, start 1 sentinel (embedded etcd) + brokers 1-3 in the background, wait until ready
	@scripts/run-all.sh embedded

run-all-secure: ## like run-all, TLS on every listener, logins and ACLs required, a private CA and an admin user (data/secure/)
	@scripts/run-all.sh secure

run-all-with-etcd: ## like run-all, with a standalone etcd (data/etcd; brokers in data/with-etcd/)
	@scripts/run-all.sh with-etcd

run-sentinel-cluster-embedded: ## 3 sentinels whose embedded etcds form one 3-member cluster + brokers 1-3 (data/sentinel-cluster/)
	@scripts/run-all.sh sentinel-cluster

stop-all: ## stop the processes of run/*.pid (SIGTERM, then SIGKILL after 10 s)
	@scripts/stop-all.sh

status: ## which local processes run, and the cluster status
	@scripts/status.sh

package: build-release ## build the Debian package target/debian/goulette_<version>_<arch>.deb (binaries, systemd units, settings, data directory)
	@scripts/package.sh

test-package: ## install the Debian package (root), run a one-broker cluster from it, round-trip a message, purge it (part of `make test`)
	@scripts/test-package.sh

test-run-all: ## end-to-end check of run-all, produce/consume, stop-all (the last step of `make test`)
	@scripts/test-run-all.sh

run-etcd: ## start a standalone etcd on 127.0.0.1:2379 (data/etcd)
	@scripts/run-one.sh etcd

run-sentinel: ## start sentinel-1 on 127.0.0.1:50052 (uses an etcd on 2379, else embeds one)
	@scripts/run-one.sh sentinel

run-broker: ## start broker BROKER_ID (default 1; 1-9) on 127.0.0.1:5006<BROKER_ID>
	@SENTINELS='$(SENTINELS)' scripts/run-one.sh broker '$(BROKER_ID)'

$(GOULETTE):
	@$(MAKE) --no-print-directory build-release

run-producer: $(GOULETTE) ## send each line of stdin to TOPIC (default demo)
	@if [ -t 0 ]; then echo "run-producer: type messages for topic $(TOPIC), one per line; Ctrl-D sends and ends" >&2; fi
	@$(GOULETTE) produce --sentinels '$(SENTINELS)' --topic '$(TOPIC)' $(ARGS)

run-consumer: $(GOULETTE) ## print TOPIC (default demo) from the beginning, then follow it (Ctrl-C ends)
	@$(GOULETTE) consume --sentinels '$(SENTINELS)' --topic '$(TOPIC)' --from-beginning $(ARGS)

etcd-status: $(GOULETTE) ## etcd endpoints, members, and key counts under /goulette
	@ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' scripts/etcd-admin.sh status

etcd-topics: $(GOULETTE) ## topics and partitions (replicas, leader, epoch, ISR) as stored in etcd
	@ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' scripts/etcd-admin.sh topics

etcd-operations: $(GOULETTE) ## the metadata operation log (goulette etcd ops)
	@ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' scripts/etcd-admin.sh ops

etcd-clean: $(GOULETTE) ## delete all Goulette metadata from etcd (needs CONFIRM=yes)
	@if [ '$(CONFIRM)' != yes ]; then \
		echo "etcd-clean deletes every key under /goulette/ in $(ETCD_ENDPOINTS): all topics, partitions, groups, the op log." >&2; \
		echo "Stop the brokers and sentinels first (they would keep writing) and take a backup (make etcd-backup)," >&2; \
		echo "then run: make etcd-clean CONFIRM=yes" >&2; \
		exit 1; \
	fi
	@ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' scripts/etcd-admin.sh clean --yes

etcd-backup: $(GOULETTE) ## save the metadata to BACKUP (default backup/goulette-<timestamp>.json)
	@file='$(BACKUP)'; mkdir -p "$$(dirname "$$file")" && \
		ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' scripts/etcd-admin.sh backup "$$file"

etcd-restore: $(GOULETTE) ## write BACKUP=FILE into an empty /goulette prefix
	@if [ '$(origin BACKUP)' = file ]; then \
		echo "etcd-restore: name the backup: make etcd-restore BACKUP=backup/goulette-....json" >&2; \
		ls backup/*.json 2>/dev/null | sed 's/^/  /' >&2 || true; \
		exit 1; \
	fi
	@ETCD_ENDPOINTS='$(ETCD_ENDPOINTS)' scripts/etcd-admin.sh restore '$(BACKUP)'

clean: ## remove build output and local run state (run/ logs/ data/; refused while a cluster runs)
	@scripts/status.sh --require-stopped
	$(CARGO) clean
	rm -rf run logs data
