# Goulette: the commands users type. `make help` lists them.
CARGO ?= cargo

.PHONY: help deps build build-release test fmt fmt-check lint clean bench-storage fuzz-batch run-all

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps: ## install what the build and the tests need (protoc, etcd) if missing
	@scripts/deps.sh

build: deps ## build every crate (debug)
	$(CARGO) build --workspace --locked

build-release: deps ## build the release binaries
	$(CARGO) build --workspace --release --locked

test: deps ## run every test (unit, property, crash, corruption)
	$(CARGO) test --workspace --locked

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check formatting
	$(CARGO) fmt --all -- --check

lint: deps ## clippy with warnings as errors, and a formatting check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) fmt --all -- --check

bench-storage: deps ## criterion benchmarks of the storage engine (about 10 minutes)
	$(CARGO) bench -p goulette-storage --locked --bench log

FUZZ_SECONDS ?= 120
fuzz-batch: ## fuzz the record-batch decoder for FUZZ_SECONDS (default 120) with cargo-fuzz
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	# cargo-fuzz passes nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
	cd storage && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run batch_decode -- \
		-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536

run-all: build-release ## start a local cluster (arrives with issue 3)
	@echo "run-all: the sentinel and broker servers are not built yet (issue 3)." >&2
	@echo "run-all: today the release binaries are built in target/release/; try" >&2
	@echo "         target/release/goulette storage inspect <partition-dir> --records" >&2
	@exit 2

clean: ## remove build output and local run state
	$(CARGO) clean
	rm -rf run logs data
