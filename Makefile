# The two commands: `make up` starts the whole suite with demo data, `make test` runs every check.
# Both bring up PostgreSQL and Redis themselves (scripts/infra.sh) or use the ones already answering.
.PHONY: up down test fmt lint bench bench-declaration infra-up infra-down

up:
	@scripts/up.sh

down:
	@scripts/down.sh

test:
	@scripts/test.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	cargo bench --workspace

bench-declaration:
	loadtests/bench_declaration.py

infra-up:
	@scripts/infra.sh up

infra-down:
	@scripts/infra.sh down
