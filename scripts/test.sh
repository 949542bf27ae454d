#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Every test: the host unit tests of the Cargo workspace, then the kernel
# build, the Kconfig matrix (scripts/kconfig-matrix.sh: every configuration
# builds without warnings, the built-in one boots, zero cost when off), the
# patch series check (scripts/export-series.sh --check), and every QEMU
# scenario (KUnit and kselftests, across kexec), then the "next"
# kernels (scripts/configs/next*.config) and the scenarios that update
# between them and the test kernel (tools/vmtest/scenarios/skew/), then the
# debug kernel (scripts/configs/debug.config) and the scenarios written for
# it (tools/vmtest/scenarios/debug/). Sets itself up first. Ends with one
# "N passed, N failed, N skipped" line for all; ignored host tests count as
# skipped. Each run's time goes to $LU_CACHE/timings/make-test.log, which
# make bench reports.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# For make bench (P5): how long this run takes, cold when no test kernel was
# built yet.
started=$(date +%s)
kind=warm
[ -f "$LU_CACHE/build/test/vmlinux" ] || kind=cold

"$LU_TOP/scripts/setup.sh" || exit 1

# The liveupdate crate checks its uapi against the kernel tree's headers, as
# the hooks patch them.
"$LU_TOP/scripts/prepare-tree.sh" >/dev/null || exit 1
lu_step "host tests (cargo test)"
(cd "$LU_TOP" && LU_KERNEL_SRC="$KERNEL_SRC" lu_cargo test --workspace --locked 2>&1) | tee -a "$log"
host_rc=${PIPESTATUS[0]}

"$LU_TOP/scripts/build-kernel.sh" || exit 1

# Before the scenarios: the unclaimed-device scenario kexecs into the
# matrix's kernel without the vfio-pci handler.
"$LU_TOP/scripts/kconfig-matrix.sh" 2>&1 | tee -a "$log"
matrix_rc=${PIPESTATUS[0]}

# The patch series: git am onto v7.3 gives the tree tested here. One test.
lu_step "patch series (scripts/export-series.sh --check)"
if "$LU_TOP/scripts/export-series.sh" --check 2>&1; then
	echo "1 passed, 0 failed, 0 skipped"
else
	echo "0 passed, 1 failed, 0 skipped"
fi | tee -a "$log"

lu_step "kernel tests under QEMU"
"$LU_TOP/scripts/vmtest.sh" test 2>&1 | tee -a "$log"
vm_rc=${PIPESTATUS[0]}

for config in next next-vfio-version next-pci-version; do
	LU_CONFIG=$config "$LU_TOP/scripts/build-kernel.sh" || exit 1
done
lu_step "kernel tests under QEMU, updates between the test kernel and the next ones"
"$LU_TOP/scripts/vmtest.sh" test "$LU_TOP"/tools/vmtest/scenarios/skew/*.toml 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || vm_rc=1

LU_CONFIG=debug "$LU_TOP/scripts/build-kernel.sh" || exit 1
lu_step "kernel tests under QEMU, debug kernel"
LU_CONFIG=debug "$LU_TOP/scripts/vmtest.sh" test "$LU_TOP"/tools/vmtest/scenarios/debug/*.toml 2>&1 |
	tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || vm_rc=1

# cargo: "test result: ok. P passed; F failed; I ignored; ..." per test binary.
host=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$log")
passed=$(awk '{ s += $1 } END { print s + 0 }' <<<"$host")
failed=$(awk '{ s += $2 } END { print s + 0 }' <<<"$host")
skipped=$(awk '{ s += $3 } END { print s + 0 }' <<<"$host")
# lu-runner: one "P passed, F failed, S skipped" line per run.
vm=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$log")
passed=$((passed + $(awk '{ s += $1 } END { print s + 0 }' <<<"$vm")))
failed=$((failed + $(awk '{ s += $2 } END { print s + 0 }' <<<"$vm")))
skipped=$((skipped + $(awk '{ s += $3 } END { print s + 0 }' <<<"$vm")))
# A runner that died without counting still fails the run.
if [ "$host_rc" != 0 ] || [ "$vm_rc" != 0 ] || [ "$matrix_rc" != 0 ]; then
	[ "$failed" -gt 0 ] || failed=1
fi
mkdir -p "$LU_CACHE/timings"
printf 'bench make-test kind=%s seconds=%d passed=%d failed=%d skipped=%d commit=%s date=%s\n' \
	"$kind" $(($(date +%s) - started)) "$passed" "$failed" "$skipped" \
	"$(git -C "$LU_TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	"$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LU_CACHE/timings/make-test.log"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
