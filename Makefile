# archtrace - build, test, demo.  See README.md.
#   make            build/archtrace and build/libarchtrace.so (-Werror)
#   make asan       the same with ASan+UBSan into build-asan/
#   make deps       install what the build, tests and labs need (Debian 12)
#   make test       the rooms' include rule (tools/check_layers.py), unit tests,
#                   labs on both build shapes, integration tests,
#                   fuzzing (FUZZ_SECONDS=10 each), ASan reruns, valgrind
#   make fuzz       the libFuzzer targets, FUZZ_SECONDS=60 each
#   make demo       archtrace on a lab
#   make bench      overhead table against the plain run and other tools
#   V=1             show the commands
.DELETE_ON_ERROR:
.SUFFIXES:

BUILD     ?= build
CC        ?= cc
CLANG     ?= clang
BPFTOOL   ?= bpftool
PREFIX    ?= /usr/local
OPT       ?= -O2
SANITIZE  ?=
Q          = $(if $(V),,@)

CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) \
                -fno-omit-frame-pointer -Icommon -Itracer -Ipreload -I$(BUILD)/probes -I$(BUILD)/proto $(SANITIZE)
SHIM_CFLAGS   = $(CFLAGS_COMMON) -fPIC -fvisibility=hidden -ftls-model=initial-exec
TRACER_CFLAGS = $(CFLAGS_COMMON)
TRACER_LIBS   = -lelf -ldw -lunwind-ptrace -lunwind-generic -lunwind -lbpf -lprotobuf-c -lz -lpthread -lm
SHIM_LIBS     = -ldl -lpthread

COMMON_SRC = $(wildcard common/*.c)
SHIM_SRC   = $(wildcard preload/*.c)
# tracer/ is in rooms (tracer/README.md): every tracer/*/*.c but the entry
TRACER_SRC = $(filter-out tracer/cli/main.c,$(wildcard tracer/*/*.c))
PROBE_SRC  = $(wildcard probes/*.bpf.c)
UNIT_SRC   = $(wildcard tests/test_*.c)

SHIM_OBJ   = $(patsubst %.c,$(BUILD)/shim/%.o,$(SHIM_SRC) $(COMMON_SRC))
# pprof's profile.proto, fetched pinned at build time and compiled by protoc-c
PROTO_C    = $(BUILD)/proto/profile.pb-c.c
PROTO_H    = $(BUILD)/proto/profile.pb-c.h
TRACER_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(TRACER_SRC) $(COMMON_SRC)) $(BUILD)/obj/proto/profile.pb-c.o
SKELETONS  = $(patsubst probes/%.bpf.c,$(BUILD)/probes/%.skel.h,$(PROBE_SRC))
TEST_BINS  = $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all asan deps venvs realworld-deps test unit-tests labs integration demo bench clean install fuzz
all: $(BUILD)/archtrace $(BUILD)/libarchtrace.so

$(BUILD)/libarchtrace.so: $(SHIM_OBJ) preload/exports.map
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) -shared $(SANITIZE) -Wl,--version-script=preload/exports.map -Wl,-z,nodelete -o $@ $(SHIM_OBJ) $(SHIM_LIBS)

$(BUILD)/archtrace: $(BUILD)/obj/tracer/cli/main.o $(TRACER_OBJ)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(SANITIZE) -o $@ $^ $(TRACER_LIBS)

$(BUILD)/shim/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC [so] $<")
	$(Q)$(CC) $(SHIM_CFLAGS) -DAT_IN_SHIM -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(SKELETONS) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(TRACER_CFLAGS) -MMD -MP -c -o $@ $<

# BPF: vmlinux.h from the running kernel's BTF, objects with clang -target
# bpf, skeletons with bpftool.  All generated, never committed.
$(BUILD)/probes/vmlinux.h:
	@mkdir -p $(dir $@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/probes/%.bpf.o: probes/%.bpf.c $(BUILD)/probes/vmlinux.h $(wildcard probes/*.h) common/py311.h
	$(if $(Q),@echo "  BPF     $<")
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Icommon -Iprobes -I$(BUILD)/probes -c $< -o $@

$(BUILD)/probes/%.skel.h: $(BUILD)/probes/%.bpf.o
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(BUILD)/proto/profile.proto: tools/fetch_profile_proto.py
	$(if $(Q),@echo "  FETCH   $@")
	$(Q)tools/fetch_profile_proto.py $@

$(PROTO_H): $(PROTO_C)
$(PROTO_C): $(BUILD)/proto/profile.proto
	$(if $(Q),@echo "  PROTOC  $<")
	$(Q)protoc-c --c_out=$(BUILD)/proto -I$(BUILD)/proto $<

# generated code: built without -Wextra's complaints about it
$(BUILD)/obj/proto/profile.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(TRACER_CFLAGS) -Wno-unused-parameter -c -o $@ $<

# Unit and integration tests: one Criterion binary per tests/test_*.c.
# tests/testlib.c (helpers for integration tests) is linked into each,
# tests/layout_probe.c (the offsetof probe, interpreters by version) into
# the layout tests.
LAYOUT_TESTS = $(filter $(BUILD)/tests/test_py3% $(BUILD)/tests/test_pylayout,$(TEST_BINS))
$(LAYOUT_TESTS): TEST_EXTRA_SRC = tests/layout_probe.c
$(LAYOUT_TESTS): tests/layout_probe.c tests/layout_probe.h $(wildcard common/py3*.h)
$(BUILD)/tests/%: tests/%.c tests/testlib.c tests/testlib.h $(TRACER_OBJ) | $(BUILD)/archtrace $(BUILD)/libarchtrace.so
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  TEST    $<")
	$(Q)$(CC) $(TRACER_CFLAGS) -Itests -Ipreload -Wno-missing-field-initializers -MMD -MP -MF $@.d -o $@ $< tests/testlib.c $(TEST_EXTRA_SRC) $(TRACER_OBJ) -lcriterion $(TRACER_LIBS)

# libFuzzer targets (tests/fuzz/fuzz_*.c) against the readers of untrusted
# data, built with clang and ASan+UBSan.  `make fuzz FUZZ_SECONDS=60`.
# undefined behaviour stops a run like an ASan finding (not a warning the
# run goes past): the qsort(NULL, 0) in py_asyncio.c went unseen that way
FUZZ_SRC     = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_OBJ     = $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(TRACER_SRC) $(COMMON_SRC)) $(BUILD)/fuzzobj/proto/profile.pb-c.o
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wno-unused-command-line-argument \
               -Icommon -Itracer -Ipreload -I$(BUILD)/probes -I$(BUILD)/proto -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60

$(BUILD)/fuzzobj/proto/profile.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Wno-unused-parameter -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/fuzzobj/%.o: %.c $(SKELETONS) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC [fz] $<")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  FUZZ    $<")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(TRACER_LIBS)

# the objects are intermediate in make's eyes: keep them between runs
.SECONDARY: $(FUZZ_OBJ) $(SKELETONS) $(PROTO_C) $(PROTO_H)

fuzz: $(FUZZ_BINS)
	$(Q)tools/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all

deps:
	$(Q)tools/deps.sh

venvs: deps
	$(Q)tools/venvs.sh all

# the third-party test suites test_realworld runs, downloaded once (pinned
# by hash) into build/realworld so the tests need no network
realworld-deps: venvs
	$(Q)tools/realworld_deps.sh

unit-tests: all $(TEST_BINS)
	$(Q)tools/check_layers.py
	$(Q)tools/run_tests.sh $(TEST_BINS)

labs: venvs
	$(Q)tools/run_labs.sh --shape all

# `make test` = the test binaries, the labs on both shapes, every fuzz
# target for FUZZ_SECONDS (5 here unless given; `make fuzz`: 60), the end-to-end tests of
# run/record/report/dump --locals/--asyncio once more against the ASan+UBSan build (native malloc
# interposition is ASan's own there, so those alloc tests are left out;
# test_bpf only where it runs the shim: its other cases are in-process;
# test_agent once, its push test: the agent loop, attacher and libcurl;
# on 3.11 static and 3.13 only, the oldest and newest layouts),
# and the CLI under valgrind (the option matrix once, on the static
# shape, under ASan: races are the plain build's business).  Budget:
# under 12 minutes on 2 cores.
ASAN_TESTS = test_run:!(run/*option_matrix_shared|run/exit_status_passes_through_other_options_*) test_sampler test_imports test_py_names \
             test_locals test_asyncio \
             test_bpf:bpf/gil_agrees_with_shim* test_agent:agent/profiles_pushed* \
             test_alloc:!(alloc/native_on_calling_line*|alloc/threads_without_gil*)
# test binaries that time nothing (damaged sessions and kills, output
# formats, value readers, other people's programs compared byte for
# byte, allocation tables against tracemalloc's, exit statuses and
# stdout passed through, labs seen from outside): two tests at a time
PARALLEL_TESTS = test_hardening test_formats test_realworld test_locals test_asyncio test_py_repr \
                 test_alloc test_run test_lab_views test_fail_if test_alloc_diff
# the builds inside `make test` use every core (75 s -> 35 s on 2 cores);
# its set-up steps (apt, pip) stay one at a time
NPROC := $(shell nproc 2>/dev/null || echo 2)
test: TEST_FUZZ_SECONDS = $(if $(filter command line environment,$(origin FUZZ_SECONDS)),$(FUZZ_SECONDS),5)
test: deps venvs realworld-deps
	$(Q)tools/check_layers.py
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) all $(TEST_BINS) $(FUZZ_BINS)
	$(Q)$(MAKE) --no-print-directory -j$(NPROC) asan
	$(Q)tools/run_tests.sh --labs --fuzz $(TEST_FUZZ_SECONDS) "$(FUZZ_BINS)" --parallel "$(PARALLEL_TESTS)" \
		--asan build-asan "$(ASAN_TESTS)" --valgrind $(BUILD)/archtrace $(TEST_BINS)

demo: deps venvs all
	$(Q)cd labs && ../$(BUILD)/archtrace ../.venv/static/bin/python lab08.py

bench: deps venvs all
	$(Q)tools/bench_env.sh
	$(Q)tools/bench.py --md docs/BENCHMARKS.md

install: all
	install -D -m 0755 $(BUILD)/archtrace $(DESTDIR)$(PREFIX)/bin/archtrace
	install -D -m 0644 $(BUILD)/libarchtrace.so $(DESTDIR)$(PREFIX)/lib/archtrace/libarchtrace.so

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)
