# hakmem: build, test, bench.  `make` builds target/release/libhakmem.so and include/hakmem.h.
CARGO ?= cargo
LIB   := target/release/libhakmem.so

.PHONY: all lib test test-core test-c test-ext test-verify test-real test-profiles bench bench-full clippy fmt clean deps

all: lib

lib:
	$(CARGO) build --release -p hakmem-preload
	@test -f $(LIB) && echo "built $(LIB)"

# The whole suite: core unit/property tests, then C programs and real programs under LD_PRELOAD.
test: lib test-core test-c test-ext test-verify test-real test-profiles
	@echo "make test: all suites passed"

test-core:
	$(CARGO) test -p hakmem-core --release

test-c: lib
	bash tests/run_c_tests.sh $(LIB)

test-ext: lib
	bash tests/run_ext_api.sh $(LIB)

test-real: lib
	bash tests/run_real_programs.sh $(LIB)

# The C suite again under other settings, so that every policy variant stays correct.
PROFILE_VARIANTS := HAKMEM_PROFILE=lean HAKMEM_PROFILE=fast HAKMEM_SUPERSLAB_MB=16 HAKMEM_CHECK=1
test-profiles: lib
	@for v in $(PROFILE_VARIANTS); do echo "# c-tests with $$v"; env $$v bash tests/run_c_tests.sh $(LIB) || exit 1; done

test-verify: lib
	bash scripts/test_verify_symbols.sh $(LIB)

bench: lib
	python3 bench/runner.py --quick

bench-full: lib
	python3 bench/runner.py --full
	python3 bench/readme_results.py

clippy:
	$(CARGO) clippy -p hakmem-core -p hakmem-preload --release -- -D warnings

fmt:
	$(CARGO) fmt --all

deps:
	bash scripts/setup.sh

clean:
	$(CARGO) clean
	rm -rf tests/build bench/build
