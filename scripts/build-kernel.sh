#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure and build the kernel out of tree in $KBUILD_DIR, then install
# the UAPI headers and build the selftests the guest runs.
#
#   LU_CONFIG=test   (default) scripts/configs/test.config on tinyconfig:
#                    VFIO as modules, as distributions build it
#   LU_CONFIG=debug  the same plus scripts/configs/debug.config
#   LU_CONFIG=next   the same plus scripts/configs/next.config: the kernel a
#                    Live Update goes to in the version-skew scenarios
#   LU_CONFIG=next-vfio-version, next-pci-version
#                    next with the vfio-pci, or the PCI, record one version on
#   LU_CONFIG=NAME   test.config plus scripts/configs/NAME.config, for the
#                    Kconfig matrix (scripts/kconfig-matrix.sh): off, builtin,
#                    no-vfio-handler, pci-only, no-liveupdate; and for make
#                    bench (scripts/bench.sh): production
#   LU_CONFIG=pristine
#                    the off configuration, built from a pristine 7.3 tree
#                    (no overlay, no hooks), for the size comparison
#   LU_CONFIG=series the test configuration, built from the tree git am made
#                    of the exported patch series (scripts/export-series.sh)
#
# The configuration is regenerated only when a fragment changed, and the
# build directory is kept, so a run with nothing changed does no work.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LU_CONFIG=${LU_CONFIG:-test}
CONFIGS=$LU_TOP/scripts/configs
case $LU_CONFIG in
test) FRAGMENTS=("$CONFIGS/test.config") ;;
next-vfio-version | next-pci-version)
	FRAGMENTS=("$CONFIGS/test.config" "$CONFIGS/next.config" "$CONFIGS/$LU_CONFIG.config") ;;
pristine)
	FRAGMENTS=("$CONFIGS/test.config" "$CONFIGS/off.config")
	KERNEL_SRC=$LU_PRISTINE_SRC ;;
series)
	FRAGMENTS=("$CONFIGS/test.config")
	KERNEL_SRC=$LU_SERIES_SRC ;;
*)
	[ -f "$CONFIGS/$LU_CONFIG.config" ] ||
		lu_die "unknown LU_CONFIG=$LU_CONFIG (no scripts/configs/$LU_CONFIG.config)"
	FRAGMENTS=("$CONFIGS/test.config" "$CONFIGS/$LU_CONFIG.config") ;;
esac

lu_toolchain_env
JOBS=${JOBS:-$(nproc)}
MAKE=(make -s -C "$KERNEL_SRC" O="$KBUILD_DIR" -j"$JOBS")
# A first build of another configuration starts from the test kernel's
# objects: only what the configuration changes is rebuilt.
# (Not another tree's: its objects are the test tree's.)
TEST_KBUILD_DIR=$LU_CACHE/build/test
if [ ! -d "$KBUILD_DIR" ] && [ "$KBUILD_DIR" != "$TEST_KBUILD_DIR" ] &&
	[ "$KERNEL_SRC" = "$LU_OWN_SRC" ] && [ -f "$TEST_KBUILD_DIR/.config" ]; then
	lu_step "starting $KBUILD_DIR from a copy of $TEST_KBUILD_DIR"
	cp -a "$TEST_KBUILD_DIR" "$KBUILD_DIR.tmp" && mv "$KBUILD_DIR.tmp" "$KBUILD_DIR"
fi
mkdir -p "$KBUILD_DIR"

# Every CONFIG_X=v and "# CONFIG_X is not set" line of the fragments must
# come out of olddefconfig as written; a later fragment overrides an earlier.
check_config() {
	local line sym got bad=0
	local -A want=()
	local -a order=()
	while read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*} ;;
		"# CONFIG_"*" is not set") sym=${line#\# } sym=${sym%% *} ;;
		*) continue ;;
		esac
		[ -n "${want[$sym]+set}" ] || order+=("$sym")
		case $line in
		CONFIG_*=*) want[$sym]=${line#*=} ;;
		*) want[$sym]=n ;;
		esac
	done < <(cat "${FRAGMENTS[@]}")
	for sym in "${order[@]}"; do
		got=$(sed -n "s/^$sym=\(.*\)/\1/p" "$KBUILD_DIR/.config")
		[ -n "$got" ] || got=n
		if [ "$got" != "${want[$sym]}" ]; then
			echo "error: $sym=${want[$sym]} was asked for, the configuration has $sym=$got" >&2
			bad=1
		fi
	done
	[ $bad = 0 ] || lu_die "kernel configuration incomplete (dependencies missing?)"
}

configure() {
	local stamp=$KBUILD_DIR/.lu-config-stamp sum
	# Kconfig lives in the overlay and in the hook patches.
	sum=$(cat "${FRAGMENTS[@]}" "$LU_TOP"/drivers/*/liveupdate/Kconfig \
		"$LU_TOP"/drivers/*/*/liveupdate/Kconfig "$LU_TOP"/patches/*.patch 2>/dev/null |
		sha256sum)
	if [ -f "$KBUILD_DIR/.config" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
		return
	fi
	lu_step "configuring ($LU_CONFIG) in $KBUILD_DIR"
	"${MAKE[@]}" tinyconfig
	"$KERNEL_SRC/scripts/kconfig/merge_config.sh" -m -O "$KBUILD_DIR" \
		"$KBUILD_DIR/.config" "${FRAGMENTS[@]}" >/dev/null
	"${MAKE[@]}" olddefconfig
	check_config
	echo "$sum" >"$stamp"
}

case $LU_CONFIG in
pristine) "$LU_TOP/scripts/setup.sh" pristine-tree ;;
series) [ -f "$KERNEL_SRC/Makefile" ] || lu_die "no series tree (run scripts/export-series.sh)" ;;
*) "$LU_TOP/scripts/prepare-tree.sh" ;;
esac
configure
lu_step "building bzImage ($JOBS jobs)"
"${MAKE[@]}" bzImage
if grep -q '^CONFIG_MODULES=y' "$KBUILD_DIR/.config"; then
	lu_step "building modules ($JOBS jobs)"
	"${MAKE[@]}" modules
fi
# The pristine kernel is only measured (its vmlinux and modules), never booted.
[ "$LU_CONFIG" != pristine ] || exit 0
"${MAKE[@]}" headers_install

# The guest runs the selftests as static binaries (no libc in the initramfs).
SELFTEST_TARGETS=(liveupdate liveupdate_rust vfio_pci_liveupdate)
for t in "${SELFTEST_TARGETS[@]}"; do
	lu_step "building selftests: $t"
	make -s -C "$KERNEL_SRC/tools/testing/selftests/$t" \
		OUTPUT="$KBUILD_DIR/selftests/$t" \
		KHDR_INCLUDES="-isystem $KBUILD_DIR/usr/include" LDFLAGS=-static
done
lu_step "kernel ready: $KBUILD_DIR/arch/x86/boot/bzImage"
