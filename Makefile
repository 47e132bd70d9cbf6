# closeloop: the two commands are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run test deps stack stop build lint unit bench-rules

## run: install what is missing, start the stack, run the service, publish the sample events
run: stack build
	@deploy/local/run.sh

## test: the whole suite (format, lints, unit and end-to-end tests on the real stack)
test: stack lint
	cargo build --bin closeloop
	set -o pipefail; . .run/stack.env && cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee .run/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' .run/test.log

deps:
	@deploy/local/install-deps.sh

stack: deps
	@deploy/local/stack.sh up

build:
	cargo build --bin closeloop

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## unit: the pure tests only, no stack needed
unit:
	cargo test --workspace --lib

stop:
	@deploy/local/stack.sh down

## bench-rules: compiled rules vs the cel interpreter (figures in BENCHMARKS.md)
bench-rules:
	cargo bench -p closeloop-core --bench rules
