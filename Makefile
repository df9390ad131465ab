# vfio-user client for QEMU 10.0: the front door.
#
#   make            fetch QEMU 10.0, apply patches/, overlay our files, build
#   make demo       run the demo (README.rst)
#   make check      the test suite (README.rst)
#   make bench      benchmarks, results in build/bench (BENCH_QUICK=1: a
#                   quick run that proves the harness measures every row;
#                   any row not measured fails make bench, with its reason)
#   make fuzz       fuzz the client's receive path with libFuzzer
#                   (FUZZ_SECONDS=N, default 600; fuzz/vfio-user-fuzz.c)
#   make libvfio-user   build libvfio-user and its samples (interop peers)
#   make libvfio-user-pristine   the same from the library as the tarball
#                   ships it, without our patches (build/libvfio-user-pristine)
#   make server     QEMU's own vfio-user server (x-vfio-user-server), in
#                   build/qemu/build-server
#   make patchset   three series as git format-patch output, one per
#                   audience: build/patchset/1-client, 2-server, 3-models
#   make check-series   build every prefix of the client series on
#                   pristine QEMU, one patch at a time (not in make check)
#   make export-patches   regenerate patches/ from commits in build/qemu
#
# The QEMU download is cached in $(CACHE), which "make clean" keeps.

TOP := $(CURDIR)
BUILD := $(TOP)/build
TREE := $(BUILD)/qemu
QBUILD := $(TREE)/build
CACHE ?= $(HOME)/.cache/vfio-user-client
QEMU_BIN := $(QBUILD)/qemu-system-x86_64
LVU_BUILD := $(BUILD)/libvfio-user
LVU_PRISTINE := $(BUILD)/libvfio-user-pristine
SBUILD := $(TREE)/build-server
NINJA ?= ninja

# ccache keyed on paths relative to build/, so the patch-set build test
# (build/patchset-test) reuses the main tree's objects.
export CCACHE_BASEDIR := $(BUILD)
export CCACHE_NOHASHDIR := true

CONFIGURE_FLAGS := \
	--target-list=x86_64-softmmu --without-default-features \
	--enable-kvm --enable-slirp --enable-pixman \
	--disable-download --disable-install-blobs --disable-fdt \
	--python=/usr/bin/python3 --cc='ccache cc' --cxx='ccache c++'
export CONFIGURE_FLAGS

PATCHES := $(sort $(wildcard patches/*.patch))

.PHONY: all deps source tree configure qemu libvfio-user \
	libvfio-user-pristine server check demo \
	bench fuzz check-sanitizers \
	patchset check-series export-patches reset-tree clean distclean

all: qemu

deps:
	@scripts/install-deps.sh

source: deps
	@scripts/fetch-qemu.sh $(CACHE)

# Re-prepare when the series or the build fixup changes.
$(TREE)/.prepared: $(PATCHES) scripts/debian-ds-build.patch \
		scripts/prepare-tree.sh | source
	@mkdir -p $(BUILD)
	@scripts/prepare-tree.sh $(CACHE)/qemu.orig.tar.xz \
		$$(cat $(CACHE)/qemu-version) $(TREE)
	@touch $@

tree: $(TREE)/.prepared
	@scripts/overlay.sh $(TOP) $(TREE)

$(QBUILD)/build.ninja: $(TREE)/.prepared
	@mkdir -p $(QBUILD)
	@echo "configure: $(CONFIGURE_FLAGS)"
	@cd $(QBUILD) && eval "../configure $(CONFIGURE_FLAGS)" \
		>configure.log 2>&1 || \
		{ tail -n 30 configure.log; \
		  echo "configure failed: see $(QBUILD)/configure.log"; exit 1; }

configure: tree $(QBUILD)/build.ninja

qemu: configure
	@$(NINJA) -C $(QBUILD) qemu-system-x86_64
	@scripts/link-firmware.sh $(CACHE) $(QBUILD)

# The interop peers: libvfio-user from the tarball, its samples, and our
# DMA device (tests/vfio-user-dma-device), in $(LVU_BUILD)/samples.
libvfio-user: tree
	@scripts/build-libvfio-user.sh $(TREE)/subprojects/libvfio-user \
		$(LVU_BUILD)

# The same peers from libvfio-user exactly as QEMU 10.0's tarball ships
# it (tag upstream of the build tree), without our patches to it, in
# $(LVU_PRISTINE)/build/samples: make check runs the interop qtests
# against both.
libvfio-user-pristine: tree
	@scripts/build-libvfio-user-pristine.sh $(TREE) $(LVU_PRISTINE)

# QEMU's own vfio-user server as a peer: the same tree and flags plus
# --enable-multiprocess --enable-vfio-user-server, in its own build dir.
$(SBUILD)/build.ninja: $(TREE)/.prepared
	@scripts/configure-server.sh $(TREE) $(SBUILD)

server: tree $(SBUILD)/build.ninja
	@$(NINJA) -C $(SBUILD) qemu-system-x86_64
	@scripts/link-firmware.sh $(CACHE) $(SBUILD)

check: qemu libvfio-user libvfio-user-pristine server
	@scripts/check.sh $(TOP)

# make demo [SECURE_DMA=off] [VIOMMU=1] [INTERACTIVE=1] [SIZE=MiB]
demo: qemu
	@SECURE_DMA='$(SECURE_DMA)' VIOMMU='$(VIOMMU)' \
		INTERACTIVE='$(INTERACTIVE)' SIZE='$(SIZE)' scripts/demo.sh $(TOP)

bench: qemu server
	@scripts/bench.sh $(TOP)

# The qtests under ASan and UBSan, in a third build dir (build-asan);
# CI runs it after make check.
check-sanitizers: qemu libvfio-user
	@scripts/check-sanitizers.sh $(TOP)

# FUZZ_SECONDS=N bounds the run; exits non-zero on a crash (reproducer in
# build/fuzz/crashes).
fuzz: qemu
	@FUZZ_SECONDS='$(FUZZ_SECONDS)' scripts/fuzz.sh $(TOP) run

patchset: tree
	@scripts/make-patchset.sh $(TOP) $(TREE) $(BUILD)/patchset

# Every patch of the client series builds on its own: git am one more
# patch onto pristine QEMU, ninja, repeat (one build dir, ccache).
check-series: patchset
	@scripts/check-series.sh $(TOP) $(CACHE) $(BUILD)/patchset/1-client \
		$(BUILD)/series-check

export-patches:
	@scripts/export-patches.sh $(TOP) $(TREE)

reset-tree:
	@rm -f $(TREE)/.applied-head $(TREE)/.prepared
	@git -C $(TREE) reset -q --hard base 2>/dev/null || true
	@echo "build tree reset; the next make re-applies patches/"

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(CACHE)
