#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Every test: the host unit tests of the Cargo workspace, then the kernel
# build and every QEMU scenario (KUnit and kselftests, across kexec).
# Sets itself up first. Ends with one "N passed, N failed, N skipped" line
# for both; ignored host tests count as skipped.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$LU_TOP/scripts/setup.sh" || exit 1

lu_step "host tests (cargo test)"
# The liveupdate crate checks its uapi against the kernel tree's headers.
(cd "$LU_TOP" && LU_KERNEL_SRC="$KERNEL_SRC" lu_cargo test --workspace --locked 2>&1) | tee -a "$log"
host_rc=${PIPESTATUS[0]}

"$LU_TOP/scripts/build-kernel.sh" || exit 1

lu_step "kernel tests under QEMU"
"$LU_TOP/scripts/vmtest.sh" test 2>&1 | tee -a "$log"
vm_rc=${PIPESTATUS[0]}

# cargo: "test result: ok. P passed; F failed; I ignored; ..." per test binary.
host=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$log")
passed=$(awk '{ s += $1 } END { print s + 0 }' <<<"$host")
failed=$(awk '{ s += $2 } END { print s + 0 }' <<<"$host")
skipped=$(awk '{ s += $3 } END { print s + 0 }' <<<"$host")
read -r vm_passed vm_failed vm_skipped < <(sed -n \
	's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$log" | tail -1)
passed=$((passed + ${vm_passed:-0}))
failed=$((failed + ${vm_failed:-0}))
skipped=$((skipped + ${vm_skipped:-0}))
# A runner that died without counting still fails the run.
if [ "$host_rc" != 0 ] || [ "$vm_rc" != 0 ]; then
	[ "$failed" -gt 0 ] || failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
