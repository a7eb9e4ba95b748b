# The project's entry points. `make run` and `make test` install what is missing first.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
CAIRN := $(BUILD_DIR)/src/cairn
DATA ?= ./data
# Seconds each fuzz target runs in `make fuzz`; `make test` runs them for 20.
FUZZ_SECONDS ?= 300

.PHONY: deps configure build run test test-asan bench bench-cluster soak fuzz clean cluster cluster-stop cluster-status

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

# The single-node S3 server on $(DATA), listening on $(LISTEN); Ctrl-C stops it gracefully.
LISTEN ?= 127.0.0.1:9000
run: build
	$(CAIRN) server --data $(DATA) --listen $(LISTEN)

# A local cluster of three nodes and an etcd under ./cluster (scripts/cluster.sh): S3 on
# 127.0.0.1:9001-9003, etcd on 127.0.0.1:23790. Every node serves the same S3 store, each chunk on
# three nodes; `cairn admin status` shows the nodes and the chains.
cluster: build
	@bash scripts/cluster.sh start $(CAIRN)

cluster-status:
	@bash scripts/cluster.sh status $(CAIRN)

cluster-stop:
	@bash scripts/cluster.sh stop

# The unit tests, then every fuzz target briefly (a clang build of the gateway, about 25 s from
# scratch, and 20 s per target). A ctest failure stops here, before the fuzzing.
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 900
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

test-asan:
	@$(MAKE) test PRESET=asan

# Benchmarks against fio on the same disk, then the S3 server under `cairn bench s3` (PUT/GET
# matrix and a 1M-key listing, scripts/bench-s3.sh); figures go to docs/benchmarks.md by hand.
bench: build
	@bash scripts/bench-engine.sh $(CAIRN)
	@CAIRN=$(CAIRN) bash scripts/bench-s3.sh

# The cluster's chains on the local three-node cluster (scripts/bench-cluster.sh; it starts the
# cluster, `make cluster-stop` stops it): write ops/s and MB/s, failover and resync times.
bench-cluster: build
	@bash scripts/bench-cluster.sh

# Long crash loops: 500 kill -9 cycles of the engine crash test; the chain replication simulator
# over 5000 seeds (tests/replication/sim.h; a failing seed prints how to replay it).
soak: build
	@cd $(BUILD_DIR) && CAIRN_CRASH_CYCLES=500 ctest --output-on-failure -R 'Crash' --timeout 7200
	@CAIRN_SIM_SEEDS=5000 $(BUILD_DIR)/tests/chain_sim_test --gtest_filter='ChainSim.Seeds'

# libFuzzer targets (fuzz/), built by clang in build/fuzz with ASan and UBSan, each run for
# FUZZ_SECONDS on a working copy of its seed corpus; fails when any target finds a crash or a
# violated property. Ends with the line "fuzz: N passed, M failed".
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz
	@bash scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build
