# The project's entry points. `make run` and `make test` install what is missing first.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
CAIRN := $(BUILD_DIR)/src/cairn
DATA ?= ./data

.PHONY: deps configure build run test test-asan bench soak fuzz clean

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET)

# Until the S3 server lands (issue 3), `make run` exercises what exists: the local engine on
# $(DATA), through a short mixed benchmark.
run: build
	@mkdir -p $(DATA)
	$(CAIRN) bench engine --dir $(DATA)/engine --workload mixed --size 65536 --prefill 2048 --concurrency 8 --duration 5

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 900

test-asan:
	@$(MAKE) test PRESET=asan

# Benchmarks against fio on the same disk; figures go to docs/benchmarks.md by hand.
bench: build
	@bash scripts/bench-engine.sh $(CAIRN)

# Long crash loops: 500 kill -9 cycles of the engine crash test.
soak: build
	@cd $(BUILD_DIR) && CAIRN_CRASH_CYCLES=500 ctest --output-on-failure -R 'Crash' --timeout 7200

clean:
	rm -rf build
