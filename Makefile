# rcgc: thin front end over Bazel and the scripts in tools/.
# Every target that builds installs its own Debian dependencies first.
#
#   make bench     build optimised, run bench/run.sh (BENCH=..., THREADS=...)
#   make test      bazel test //... in the default, tsan and asan configs,
#                  then the install test; ends with "N passed, N failed"
#   make stress    run stress/run.sh for DURATION seconds (default 10)
#   make install   PREFIX=dir (default /usr/local); DESTDIR is honoured
#   make deps      install missing Debian packages (tools/deps.sh)
#   make clean     bazel clean

BAZEL    ?= bazel
PREFIX   ?= /usr/local
DURATION ?= 10
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

# Passed to the scripts through the environment (only when set).
# DURATION is passed to `make stress` only: bench/run.sh reads DURATION as
# its seconds per measurement, and a global 10 made the quick report 10x
# longer.
export BAZEL JOBS
ifdef TEST_JOBS
export TEST_JOBS
endif
ifdef BENCH
export BENCH
endif
ifdef THREADS
export THREADS
endif
ifdef UPDATE_DOCS
export UPDATE_DOCS
endif
ifdef DESTDIR
export DESTDIR
endif

.PHONY: all deps test bench stress install clean help

all: help

help:
	@sed -n '4,10s/^# \{0,1\}//p' Makefile

deps:
	@tools/deps.sh

test: deps
	tools/test.sh

# The benchmarks are tagged manual, so `bazel build //bench/...` would skip
# them: ask bazel query for every binary under bench/ instead. A binary
# that does not build (a peer's library missing) does not stop the others:
# run.sh leaves its benchmark or peer out and the report says so.
# UPDATE_DOCS=1 also copies the report into docs/BENCHMARKS.md.
bench: deps
	@if [ -f bench/run.sh ]; then \
	    targets=$$($(BAZEL) query --color=no 'kind("cc_binary|cc_test", //bench/...)' 2>/dev/null); \
	    echo "==> $(BAZEL) build //lib:rcgc" $$targets; \
	    $(BAZEL) build --color=no --curses=no --keep_going --jobs=$(JOBS) //lib:rcgc $$targets || \
	        echo "make bench: some binaries did not build; bench/run.sh leaves them out and says so"; \
	    bash bench/run.sh; \
	else \
	    echo "make bench: bench/run.sh does not exist yet; no benchmarks to run"; \
	fi

stress: deps
	@if [ -f stress/run.sh ]; then \
	    DURATION=$(DURATION) bash stress/run.sh; \
	else \
	    echo "make stress: stress/run.sh does not exist yet; no stress programs to run"; \
	fi

install: deps
	tools/install.sh "$(PREFIX)"

clean:
	$(BAZEL) clean
