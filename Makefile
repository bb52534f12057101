# The two commands: `make up` starts the whole suite with demo data, `make test` runs every check.
# Both bring up PostgreSQL and Redis themselves (scripts/infra.sh) or use the ones already answering.
.PHONY: up down test fmt lint bench bench-declaration bench-scoring bench-rendering bench-verification infra-up infra-down

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

# Recolouring 200,000 of 1,000,000 people after a risk change (PEOPLE and AFFECTED override the sizes).
bench-scoring:
	@scripts/infra.sh up
	@eval "$$(scripts/infra.sh env)" && cargo run --release -p scoring --example bench_recolour -- $${PEOPLE:-1000000} $${AFFECTED:-200000}

# Show-code throughput on cache hits against a plaintext endpoint, and the naive profile, in one run.
bench-rendering:
	loadtests/bench_rendering.py

# Verify throughput (valid codes, each scan group-committed before its answer) against the plaintext endpoint.
bench-verification:
	loadtests/bench_verification.py

infra-up:
	@scripts/infra.sh up

infra-down:
	@scripts/infra.sh down
