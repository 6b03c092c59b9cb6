# Thin driver over CMake. The real build is in CMakeLists.txt.
#
#   make deps      install missing packages (scripts/deps.sh: apt-get)
#   make build     configure build/, compile (no package check: works offline
#                  where the packages are there)
#   make demo      deps, build, then run `build/pinheap demo`
#   make check     deps, build, run the test suite (ctest), the install test, the
#                  integration tests under valgrind's memcheck, the tests
#                  again under ASan+UBSan and TSan, and the fuzzers for 30 s
#                  each
#   make bench     build, then the comparison with every peer (bench/compare/run.py),
#                  about 20 minutes on 2 cores: bench/results/RESULTS.md and plots
#   make bench-quick  a subset of it in under 3 minutes, into $(BENCH_QUICK_OUT)
#   make fuzz      build and run the fuzzers for FUZZ_SECONDS each (default 300)
#   make soak      build and run the soak test for SOAK_SECONDS (default 600),
#                  a third each FIXED, DYNAMIC and FIXED with the debugging aids
#   make install   build, then install under $(PREFIX) (default /usr/local)
#   make clean     remove build/

BUILD_DIR  := build
BUILD_TYPE ?= RelWithDebInfo
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 1)
CMAKE      ?= cmake
CTEST      ?= ctest

.PHONY: all deps build demo check bench bench-quick fuzz soak install clean

all: build

deps:
	bash scripts/deps.sh

# Only demo and check install packages first; the order-only prerequisite
# keeps deps before the build when they do, even under make -j.
build: | $(if $(filter demo check,$(MAKECMDGOALS)),deps)
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

demo: build
	./$(BUILD_DIR)/pinheap demo

check: build
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure --timeout 600
	bash tests/install/run.sh $(BUILD_DIR)
	bash tests/valgrind.sh $(BUILD_DIR)
	bash tests/sanitize.sh
	bash tests/buildtypes.sh
	bash fuzz/run.sh 20

# The fuzzers for longer (seconds per fuzzer: FUZZ_SECONDS).
FUZZ_SECONDS ?= 300
fuzz: deps
	bash fuzz/run.sh $(FUZZ_SECONDS)

# The soak test for longer (seconds in all: SOAK_SECONDS; seed: SOAK_SEED,
# 0 = from the clock).
SOAK_SECONDS ?= 600
SOAK_SEED    ?= 0
soak: build
	./$(BUILD_DIR)/tests/soak $(SOAK_SEED) $$(($(SOAK_SECONDS) / 3)) fixed 4
	./$(BUILD_DIR)/tests/soak $(SOAK_SEED) $$(($(SOAK_SECONDS) / 3)) dynamic 4
	./$(BUILD_DIR)/tests/soak $(SOAK_SEED) $$(($(SOAK_SECONDS) / 3)) fixed 4 debug

# The comparison of allocators, side by side (bench/compare/run.py -h).
BENCH_OUT       ?= bench/results
BENCH_QUICK_OUT ?= $(BUILD_DIR)/bench-quick
bench: build
	python3 bench/compare/run.py --build $(BUILD_DIR) --out $(BENCH_OUT)

bench-quick: build
	python3 bench/compare/run.py --quick --build $(BUILD_DIR) --out $(BENCH_QUICK_OUT)

# After installing as root (and not into a DESTDIR staging tree), refresh the
# loader cache so the installed tool finds libpinheap.so.0.
install: build
	$(CMAKE) --install $(BUILD_DIR) --prefix $(PREFIX)
	@if [ "$$(id -u)" = 0 ] && [ -z "$$DESTDIR" ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

clean:
	rm -rf $(BUILD_DIR)
