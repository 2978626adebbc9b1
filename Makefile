# hakmem: build, test, bench, install.  `make` builds target/release/libhakmem.so (and the
# libhakmem.so.0 link that programs linked with -lhakmem look for) and include/hakmem.h.
CARGO ?= cargo
LIB   := target/release/libhakmem.so
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))

PREFIX  ?= /usr/local
DESTDIR ?=
DEST    := $(DESTDIR)$(PREFIX)
# What `make install` puts under PREFIX (and `make uninstall` removes): exactly these.
INSTALLED := lib/libhakmem.so.$(VERSION) lib/libhakmem.so.$(MAJOR) lib/libhakmem.so \
             include/hakmem.h lib/pkgconfig/hakmem.pc bin/hakmem

.PHONY: all lib test test-core test-c test-ext test-verify test-bench test-scripts test-real test-profiles test-rust test-install test-debug test-fuzz fuzz fuzz-build \
        bench bench-full clippy fmt clean deps install uninstall

all: lib

lib:
	$(CARGO) build --release -p hakmem-preload
	@test -f $(LIB) && ln -sf libhakmem.so $(LIB).$(MAJOR) && echo "built $(LIB)"

# The whole suite: core unit/property tests, then C programs and real programs under LD_PRELOAD.
test: lib test-core test-rust test-c test-ext test-verify test-bench test-scripts test-real test-profiles test-install test-debug test-fuzz
	@echo "make test: all suites passed"

test-core:
	$(CARGO) test -p hakmem-core --release

# The Rust global allocator crate (its tests run with hakmem as their #[global_allocator]).
test-rust:
	$(CARGO) test -p hakmem --release

# make install into a temporary PREFIX, then pkg-config, linking, the launcher, the glibc
# introspection API and a Rust program, as a user would use them.
test-install: lib
	bash tests/run_install.sh

test-c: lib
	bash tests/run_c_tests.sh $(LIB)

test-ext: lib
	bash tests/run_ext_api.sh $(LIB)

test-real: lib
	bash tests/run_real_programs.sh $(LIB)

# The C suite again under other settings, so that every policy variant stays correct.
PROFILE_VARIANTS := HAKMEM_PROFILE=lean HAKMEM_PROFILE=fast HAKMEM_SUPERSLAB_MB=16 HAKMEM_CHECK=1
# Checking mode also under real programs (a JVM, a database server and an interpreter).
test-profiles: lib
	@for v in $(PROFILE_VARIANTS); do echo "# c-tests with $$v"; env $$v bash tests/run_c_tests.sh $(LIB) || exit 1; done
	HAKMEM_CHECK=1 bash tests/run_real_programs.sh $(LIB) python_alloc_heavy sqlite3 java_threads postgres

# The core tests and the C suite against an unoptimised build with debug assertions and overflow
# checks on (every debug_assert! on the allocator's invariants runs).
DEBUG_LIB := target/debug/libhakmem.so
test-debug:
	$(CARGO) test -p hakmem-core --lib --test alone --test uncaged
	$(CARGO) build -p hakmem-preload
	HAKMEM_TEST_TIMEOUT=300 bash tests/run_c_tests.sh $(DEBUG_LIB)

test-verify: lib
	bash scripts/test_verify_symbols.sh $(LIB)

# The benchmark runner's own logic (its run order), and no hardware divide in the workloads' loops.
test-bench:
	python3 bench/test_runner.py

# Measurement helpers in scripts/ that read hakmem's layouts.
test-scripts: lib
	python3 scripts/test_slab_resident.py
	python3 scripts/test_compare_profiles.py $(LIB)

# The fuzzer (fuzz/): a libFuzzer harness over hakmem-core's API with a shadow model, built with
# coverage instrumentation on stable Rust. `make fuzz FUZZ_TIME=600` explores for that many seconds
# and keeps what it finds in fuzz/corpus/api; `make test` runs a short, reproducible pass.
FUZZ_TIME ?= 60
FUZZ_TARGET := x86_64-unknown-linux-gnu
FUZZ_BIN := fuzz/target/$(FUZZ_TARGET)/release/api
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing
fuzz-build:
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build --release --target $(FUZZ_TARGET)

fuzz: fuzz-build
	mkdir -p fuzz/corpus/api fuzz/artifacts
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -max_len=1024 -artifact_prefix=fuzz/artifacts/ fuzz/corpus/api fuzz/seeds/api

test-fuzz: fuzz-build
	@d=$$(mktemp -d); mkdir -p fuzz/artifacts; \
	if RUST_BACKTRACE=0 $(FUZZ_BIN) -runs=8000 -seed=1 -max_len=512 -artifact_prefix=fuzz/artifacts/ $$d fuzz/seeds/api >$$d.log 2>&1; then \
	  tail -1 $$d.log; echo "fuzz: 1 passed, 0 failed"; rm -rf $$d $$d.log; \
	else tail -40 $$d.log; echo "fuzz: 0 passed, 1 failed (the input is in fuzz/artifacts/)"; rm -rf $$d; exit 1; fi

bench: lib
	python3 bench/runner.py --quick

bench-full: lib
	python3 bench/runner.py --full
	python3 bench/readme_results.py

clippy:
	$(CARGO) clippy -p hakmem-core -p hakmem-preload --release -- -D warnings
	$(CARGO) clippy -p hakmem -p rust-workload --release --all-targets -- -D warnings

# make install [PREFIX=/usr/local] [DESTDIR=]: the library with its SONAME links, the header,
# the pkg-config file and the launcher. Needs a built library (`make` first, as your own user).
install:
	@test -f $(LIB) || { echo "make install: $(LIB) is missing: run 'make' first" >&2; exit 1; }
	install -d $(DEST)/lib/pkgconfig $(DEST)/include $(DEST)/bin
	install -m 755 $(LIB) $(DEST)/lib/libhakmem.so.$(VERSION)
	ln -sf libhakmem.so.$(VERSION) $(DEST)/lib/libhakmem.so.$(MAJOR)
	ln -sf libhakmem.so.$(MAJOR) $(DEST)/lib/libhakmem.so
	install -m 644 include/hakmem.h $(DEST)/include/hakmem.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/hakmem.pc.in >$(DEST)/lib/pkgconfig/hakmem.pc
	chmod 644 $(DEST)/lib/pkgconfig/hakmem.pc
	install -m 755 scripts/hakmem $(DEST)/bin/hakmem

uninstall:
	rm -f $(addprefix $(DEST)/,$(INSTALLED))

fmt:
	$(CARGO) fmt --all

deps:
	bash scripts/setup.sh

clean:
	$(CARGO) clean
	rm -rf tests/build bench/build
