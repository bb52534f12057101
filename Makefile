# The two commands: `make up` starts the whole suite with demo data, `make test` runs every check.
# Both bring up PostgreSQL and Redis themselves (scripts/infra.sh) or use the ones already answering.
.PHONY: up down test fmt lint image k8s-check loadtest capacity-report bench bench-declaration bench-scoring bench-county-map bench-rendering bench-verification infra-up infra-down advisories api-check fuzz chaos

up:
	@scripts/up.sh

down:
	@scripts/down.sh

test:
	@scripts/test.sh

fmt:
	cargo fmt --all

# The RustSec advisory database against Cargo.lock (cargo deny). It is fetched from github.com: where that cannot be
# reached the target fails and says so. make test checks licences, bans and sources (scripts/deny.sh).
advisories:
	@scripts/deny.sh advisories

# schemathesis against every service's OpenAPI document for a minute per service and caller (make test runs 8 s).
api-check:
	@API_CHECK_SECONDS=60 scripts/api-check.sh

# cargo-fuzz over every parser of outside input, FUZZ_SECONDS (default 60) per target (make test replays the kept
# corpus and regressions without libFuzzer).
fuzz:
	@scripts/fuzz.sh

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

# The county map's rounds (levels, today's indices, 14 days' indices) over a million people, and a map view.
bench-county-map:
	@scripts/infra.sh up
	@eval "$$(scripts/infra.sh env)" && cargo run --release -p scoring --example bench_county_map -- $${PEOPLE:-1000000}

# Show-code throughput on cache hits against a plaintext endpoint, and the naive profile, in one run.
bench-rendering:
	loadtests/bench_rendering.py

# Verify throughput (valid codes, each scan group-committed before its answer) against the plaintext endpoint.
bench-verification:
	loadtests/bench_verification.py

# The runtime image localhost/health-code:dev (podman; Containerfile), from release binaries built here.
image:
	@scripts/image.sh

# The Kubernetes manifests checked offline, and the dev overlay run under podman kube play (needs `make image`
# or the test image; make test runs it).
k8s-check:
	@IMAGE=$${IMAGE:-localhost/health-code:dev} scripts/k8s-check.sh

# Faults under load: Redis killed (back empty, back from its AOF), PostgreSQL killed, Redis or PostgreSQL slow or
# lossy, a replica of each service partitioned from Redis (and rendering's from scoring), each service killed, under
# the steady mix at 70 % of the hardened knee, with the acknowledged writes accounted for (about 40 minutes, as root;
# make test runs a short version of Redis back empty and of the declaration service killed).
chaos:
	@scripts/chaos.sh

# A short mass-testing run of the hardened profile with thresholds (goose; reports in loadtests/results/).
loadtest:
	@scripts/loadtest.sh

# Every run of the capacity report (knees, plans, ablation, vulnerability maps: about an hour), then the report.
capacity-runs:
	@scripts/capacity.sh

# docs/capacity.md and its plots from the runs' results (loadtests/results/*.json).
capacity-report:
	@scripts/capacity.sh report

infra-up:
	@scripts/infra.sh up

infra-down:
	@scripts/infra.sh down
