# SPDX-License-Identifier: GPL-2.0
#
# Entry points. Each target sets up what it needs (scripts/setup.sh) and
# builds incrementally in $(LU_CACHE) (default ~/.cache/rust-liveupdate).
#
#   make demo     build the kernel; a VMM-like program keeps a vfio device
#                 across a Live Update in QEMU, and the host reports on it
#   make test     every test: host unit tests, KUnit and kselftests in QEMU
#   make selftests  the vfio-pci Live Update kselftests only, in QEMU
#   make build    set up and build the kernel (LU_CONFIG=debug for the debug kernel)
#   make shell    boot the kernel into a busybox shell (DEVICES="edu nvme")
#   make matrix   the Kconfig matrix: every configuration of the options builds
#                 without warnings, the built-in one boots, zero cost when off
#   make series   the overlay and hooks as a git format-patch series against
#                 v7.3, checked with git am, built and booted
#   make bench    the benchmarks: device ready after an update (kept against
#                 cold), scaling to 32 devices, KHO memory per device, size
#                 when off and on, test times; a table, JSON and a chart
#   make lint     rustfmt, clippy, rustdoc, checkpatch --strict, kernel-doc and
#                 docutils on the project's own code

DEVICES ?= edu

.PHONY: setup build test selftests demo shell lint matrix series bench

setup:
	scripts/setup.sh

build: setup
	scripts/build-kernel.sh

test:
	scripts/test.sh

selftests: build
	scripts/vmtest.sh test tools/vmtest/scenarios/vfio-pci-liveupdate.toml \
		tools/vmtest/scenarios/vfio-pci-liveupdate-multi.toml \
		tools/vmtest/scenarios/vfio-pci-liveupdate-safety.toml

demo: build
	scripts/vmtest.sh test tools/vmtest/scenarios/live-update-demo.toml

shell: build
	scripts/vmtest.sh shell $(addprefix --device ,$(DEVICES))

lint: setup
	scripts/lint.sh

bench:
	scripts/bench.sh

matrix: build
	scripts/kconfig-matrix.sh

series: build
	scripts/export-series.sh --build
