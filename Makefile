# vfio-user client for QEMU 10.0: the front door.
#
#   make            fetch QEMU 10.0, apply patches/, overlay our files, build
#   make demo       run the demo (README.rst)
#   make check      the test suite (README.rst)
#   make libvfio-user   build libvfio-user and its samples (interop peers)
#   make patchset   the whole series as git format-patch output
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

.PHONY: all deps source tree configure qemu libvfio-user check demo \
	patchset export-patches reset-tree clean distclean

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

check: qemu libvfio-user
	@scripts/check.sh $(TOP)

demo: qemu
	@scripts/demo.sh $(TOP)

patchset: tree
	@scripts/make-patchset.sh $(TOP) $(TREE) $(BUILD)/patchset

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
