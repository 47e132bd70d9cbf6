# closeloop: the two commands are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run run-kafka test deps deps-kafka stack stack-kafka stop build lint unit bench bench-web bench-rules chaos fuzz emails

## run: single-node mode (no broker): start PostgreSQL, SMTP and the webhook
## receiver, run the service, store the sample events, say where to look
run: stack build
	@deploy/local/run.sh

## run-kafka: the same through Kafka (a tansu broker, built once: ~10 minutes)
run-kafka: stack-kafka build
	@CLOSELOOP__INTAKE__MODE=kafka deploy/local/run.sh

## test: the whole suite (format, lints, unit and end-to-end tests on the real stack)
test: stack-kafka lint
	cargo build --bin closeloop
	set -o pipefail; . .run/stack.env && cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee .run/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' .run/test.log

deps:
	@deploy/local/install-deps.sh

deps-kafka:
	@deploy/local/install-deps.sh kafka

stack: deps
	@deploy/local/stack.sh up

stack-kafka: deps-kafka
	@deploy/local/stack.sh up kafka

build:
	cargo build --bin closeloop

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	@python3 deploy/check_deps.py
	@python3 deploy/check_cycles.py --self-test
	@python3 deploy/check_cycles.py
	@deploy/lint.sh

## unit: the pure tests only, no stack needed
unit:
	cargo test --workspace --lib

stop:
	@deploy/local/stack.sh down

## bench: every benchmark, side by side in one run (bare consumer, Alertmanager);
## writes the figures into BENCHMARKS.md. Not part of make test. BENCH_ARGS e.g. "--runs 1 --only e2e".
BENCH_ARGS ?=
bench: stack-kafka
	@dpkg -s prometheus-alertmanager >/dev/null 2>&1 || { \
	  echo "installing prometheus-alertmanager (Debian package, for the dispatch benchmark)"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null; }
	cargo build --release --bin closeloop --bin closeloop-bench
	. .run/stack.env && target/release/closeloop-bench $(BENCH_ARGS)

## bench-web: the manager's inbox with 5,000 open cases, and the dashboard over
## a million answers (their own section of BENCHMARKS.md)
bench-web: stack
	cargo build --release --bin closeloop --bin closeloop-bench
	. .run/stack.env && target/release/closeloop-bench --only inbox,dashboard $(BENCH_ARGS)

## bench-rules: compiled rules vs the cel interpreter (figures in BENCHMARKS.md)
bench-rules:
	cargo bench -p closeloop-core --bench rules

## chaos: the reliability suite at full length (20 kill rounds, 30 s outages), with its report
CHAOS_ROUNDS ?= 20
CHAOS_OUTAGE_SECS ?= 30
CHAOS_EVENTS ?= 2000
## emails: render every email kind (FR, EN) into target/rendered-emails and
## screenshot them at phone and desktop width with headless Chromium.
emails:
	cargo test -p closeloop-notify --lib rendered_emails_are_written_for_review
	@deploy/local/screenshot-emails.sh target/rendered-emails

chaos: stack-kafka
	cargo build --bin closeloop
	rm -f .run/chaos-report.jsonl
	set -o pipefail; . .run/stack.env && CLOSELOOP_CHAOS_ROUNDS=$(CHAOS_ROUNDS) \
	  CLOSELOOP_CHAOS_OUTAGE_SECS=$(CHAOS_OUTAGE_SECS) CLOSELOOP_CHAOS_EVENTS=$(CHAOS_EVENTS) \
	  CLOSELOOP_CHAOS_REPORT=$(CURDIR)/.run/chaos-report.jsonl \
	  cargo test -p closeloop-tests --test chaos -- --test-threads 2 2>&1 | tee .run/chaos.log
	@/usr/bin/python3 deploy/local/chaos_report.py .run/chaos-report.jsonl

## fuzz: each cargo-fuzz target for FUZZ_SECONDS (default 600) on nightly; new finds go to fuzz/corpus
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := event_parser rule_condition rules_file link_token
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	cd fuzz && for target in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$target && \
	  cargo +nightly fuzz run $$target corpus/$$target seeds/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=4096 || exit 1; \
	  cargo +nightly fuzz cmin $$target corpus/$$target >/dev/null 2>&1 || true; \
	done
