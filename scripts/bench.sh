#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: what Live Update saves per device, how its cost grows with the
# devices kept, what it hands over in memory, what it costs when off, and
# how long the tests take. Sets itself up and builds what it needs.
#
#   P1, P2  the benchmark scenarios (tools/vmtest/scenarios/bench/) under
#           QEMU: tools/lu-bench in the guest keeps devices across updates
#           and opens identical ones cold in the same boot; the KUnit
#           benchmark of the PCI table (drivers/pci/liveupdate/table_bench.rs)
#   P3      the KHO memory the kernel reports for each kept device
#   P4      size(1) of vmlinux and the VFIO modules: both options off
#           against the pristine 7.3 tree, on (production.config) against off
#   P5      the make test runs scripts/test.sh recorded on this machine
#
# Every figure is a median with its minimum and maximum over the runs. The
# report (lu-bench-report, tools/lu-bench) prints a table with the targets
# beside the figures, and writes $LU_CACHE/bench/bench.json and scaling.svg. A
# benchmark never fails on a number; it fails when a run failed its checks
# (a kept device not kept, a cold one not reset) or a build failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

OUT=$LU_CACHE/bench
RAW=$OUT/raw.log
mkdir -p "$OUT"
: >"$RAW"
rc=0

"$LU_TOP/scripts/setup.sh" || exit 1
"$LU_TOP/scripts/build-kernel.sh" || exit 1

lu_step "benchmarks under QEMU (P1, P2, P3)"
LU_OUT=$OUT/vm "$LU_TOP/scripts/vmtest.sh" test "$LU_TOP"/tools/vmtest/scenarios/bench/*.toml 2>&1 |
	tee -a "$RAW"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
# The KUnit figures are kernel log lines.
cat "$OUT/vm/table.serial.log" >>"$RAW" 2>/dev/null

lu_step "sizes (P4): both options off against pristine 7.3, on against off"
for config in off pristine production; do
	log=$OUT/$config.build.log
	if ! LU_CONFIG=$config "$LU_TOP/scripts/build-kernel.sh" >"$log" 2>&1; then
		tail -20 "$log"
		echo "the $config kernel did not build (log: $log)"
		rc=1
		continue
	fi
	dir=$LU_CACHE/build/$config
	for object in vmlinux drivers/vfio/vfio.ko drivers/vfio/pci/vfio-pci-core.ko \
		drivers/vfio/pci/vfio-pci.ko; do
		[ -f "$dir/$object" ] || continue
		size "$dir/$object" | awk -v c="$config" -v o="$(basename "$object")" \
			'NR == 2 { printf "bench size config=%s object=%s text=%s data=%s bss=%s\n", c, o, $1, $2, $3 }'
	done
done | tee -a "$RAW"

# P5: what scripts/test.sh recorded.
cat "$LU_CACHE/timings/make-test.log" >>"$RAW" 2>/dev/null

lu_step "report"
lu_cargo build -q --release --locked -p lu-bench --bin lu-bench-report \
	--manifest-path "$LU_TOP/Cargo.toml" || exit 1
"$CARGO_TARGET_DIR/release/lu-bench-report" --json "$OUT/bench.json" --svg "$OUT/scaling.svg" \
	"$RAW" || rc=1
echo
echo "figures: $OUT/bench.json; chart: $OUT/scaling.svg; everything the runs printed: $RAW"
[ "$rc" = 0 ] || echo "a benchmark run or build failed: its figures are missing or partial"
exit "$rc"
