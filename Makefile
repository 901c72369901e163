# Lakehouse jobs for music-streaming logs.
#
#   make bronze silver gold            build every binary once, then run the jobs on the default
#                                      lake (./lake over ./landing, generated sample data; no
#                                      server, no credentials)
#   make bronze silver gold LAKE=s3://bucket/lake LANDING=s3://bucket/landing
#   make test                          every test, and make infra-check; starts (and stops)
#                                      LocalStack itself
#   make chaos SEEDS=N                 the randomized fault harness on seeds 1..N (default 20;
#                                      every third on LocalStack, STORE=local|s3 to choose);
#                                      SEEDS=301..400 a range; PROFILE=release is ~3x faster;
#                                      make chaos SEED=17 STORE=local replays one seed
#   make infra-check                   the checks of infra/ (Docker, Terraform, Kubernetes,
#                                      Airflow, least privilege on LocalStack)
#   make localstack-up / localstack-down
#   make sample                        (re)generate the sample landing data in ./landing
#                                      (Last.fm, Sparkify, a week of Deezer and of eventsim, by
#                                      tools/lake-gen)
#   make catalogue                     refresh the README's table catalogue from lake-schema
#   make bench                         the pipeline (release build) against DuckDB and Polars
#                                      at 0.1x, 1x and 10x the Last.fm 1K scale, and on a week of
#                                      Deezer logs against DuckDB, Polars and pandas, and on a week
#                                      of eventsim against DuckDB (bench/bench.py;
#                                      BENCH_ARGS="--all-peers --readme ..." passes options)
#   make flamegraphs                   where each job's time goes at Last.fm 1x: one flame graph
#                                      a job (perf record), into docs/perf/flame-<job>.svg
#
# LAKE and LANDING become --lake/--landing only when set, so LAKE_ROOT/LAKE_LANDING and
# lake.toml still apply otherwise. PROFILE=release builds optimised binaries (slower to build).
# CLUSTER=1 builds gold and lake with Apache DataFusion Ballista (`--scheduler`, `lake cluster`;
# README, Scaling out); the default build does not pay for it.

PROFILE ?= dev
SAMPLE_ROWS ?= 100000
SAMPLE_USERS ?= 100
SAMPLE_EVENTS ?= 20000
SAMPLE_EVENTSIM_USERS ?= 200
SAMPLE_STREAMS ?= 20000
LAKE ?=
LANDING ?=
OUT ?=
BENCH_ARGS ?=
CLUSTER ?=
SEEDS ?= 20
SEED ?=
STORE ?= mixed
CHAOS_JOBS ?= 1

# Every binary of the workspace is built by one cargo invocation (the one tests/run.sh makes
# too), so the heavy stack is compiled once with one feature set and `make test` reuses it.
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
BIN = $(TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
JOB_ARGS = $(if $(LAKE),--lake $(LAKE)) $(if $(LANDING),--landing $(LANDING))
# The sample is made only when the default landing is in use.
SAMPLE_DEP = $(if $(LANDING)$(LAKE_LANDING),,$(SAMPLE_SOURCES:%=landing/%))
SAMPLE_SOURCES = lastfm sparkify deezer eventsim

.PHONY: build bronze silver gold sample test chaos infra-check localstack-up localstack-down catalogue lint bench flamegraphs

FEATURES = $(if $(CLUSTER),--features gold/cluster$(,)lake/cluster)
, = ,

build:
	cargo build --locked --profile $(PROFILE) --workspace --bins $(FEATURES)

bronze: build $(SAMPLE_DEP)
	$(BIN)/bronze $(JOB_ARGS)

silver: build
	$(BIN)/silver $(JOB_ARGS)

gold: build
	$(BIN)/gold $(JOB_ARGS) $(if $(OUT),--out $(OUT))

landing/lastfm: | build
	$(BIN)/lake-gen lastfm landing/lastfm --rows $(SAMPLE_ROWS) --users $(SAMPLE_USERS)

landing/sparkify: | build
	$(BIN)/lake-gen sparkify landing/sparkify --events $(SAMPLE_EVENTS)

landing/deezer: | build
	$(BIN)/lake-gen deezer landing/deezer --days 7 --streams $(SAMPLE_STREAMS) --users 2000 --songs 5000

landing/eventsim: | build
	$(BIN)/lake-gen eventsim landing/eventsim --days 7 --users $(SAMPLE_EVENTSIM_USERS)

sample:
	rm -rf $(SAMPLE_SOURCES:%=landing/%)
	$(MAKE) $(SAMPLE_SOURCES:%=landing/%)

test:
	localstack/with-localstack.sh tests/run.sh

chaos: build
	$(if $(filter local,$(STORE)),,localstack/with-localstack.sh) $(BIN)/lake-chaos \
	  $(if $(SEED),--seed $(SEED),--seeds $(SEEDS)) --store $(STORE) --jobs $(CHAOS_JOBS)

infra-check:
	localstack/with-localstack.sh infra/check.sh

localstack-up:
	localstack/up.sh

localstack-down:
	localstack/down.sh

catalogue: build
	$(BIN)/lake-schema | python3 -c 'import re,sys; c=sys.stdin.read(); r=open("README.md").read(); \
	  open("README.md","w").write(re.sub(r"(<!-- catalogue:begin -->\n).*?(<!-- catalogue:end -->)", lambda m: m.group(1)+c+m.group(2), r, flags=re.S))'

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	$(MAKE) build PROFILE=release
	bench/run.sh $(BENCH_ARGS)

flamegraphs:
	$(MAKE) build PROFILE=release
	bench/flamegraphs.sh
