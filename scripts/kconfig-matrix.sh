#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The Kconfig matrix: the configurations of this project's options that
# distributions and developers pick, each built in its own build directory
# (the first build of each starts from a copy of the test kernel's, so it is
# incremental). For each one:
#
#   - the build must succeed without a single compiler warning (a warm run
#     compiles only what changed, and so checks only that);
#   - the options come out of Kconfig as asked (scripts/build-kernel.sh), and
#     vanish from the configuration where Live Update itself is off;
#   - a configuration that can run a Live Update boots and runs a scenario:
#     the test kernel (modules, as distributions build VFIO) runs all of them
#     (make test), the built-in one and the one without the VT-d hand-over
#     the main scenario here, and the kernel without the vfio-pci handler is
#     the one the unclaimed-device scenario kexecs into;
#   - with both options off, vmlinux has the same text and data sizes as the
#     pristine 7.3 tree built from the same configuration (size -A side by
#     side), and the VFIO modules the hooks touch have the same sizes.
#
# Prints one line per configuration with its build time, then the size
# comparison, then "N passed, N failed, N skipped".
set -uo pipefail
. "$(dirname "$0")/lib.sh"

# name|what it is|scenario it runs here
MATRIX=(
	"test|VFIO, vfio-pci-core and vfio-pci modules; both options =y (the test kernel)|"
	"builtin|VFIO built in; both options =y|vfio-pci-liveupdate.toml"
	"no-vtd-handover|VFIO modules; both options =y, INTEL_IOMMU_LIVEUPDATE=n|vfio-pci-liveupdate.toml"
	"no-vfio-handler|VFIO modules; PCI_LIVEUPDATE=y, VFIO_PCI_LIVEUPDATE=n|"
	"pci-only|no VFIO; PCI_LIVEUPDATE=y|"
	"off|VFIO modules; both options =n|"
	"no-liveupdate|LIVEUPDATE=n: the options vanish|"
	"pristine|the off configuration on the pristine 7.3 tree|"
)

passed=0 failed=0
pass() { printf '    ok:     %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf '    FAILED: %s\n' "$*"; failed=$((failed + 1)); }

report=()
for entry in "${MATRIX[@]}"; do
	IFS='|' read -r name what scenario <<<"$entry"
	lu_step "Kconfig matrix: $name ($what)"
	log=$LU_CACHE/build/$name.build.log
	mkdir -p "$LU_CACHE/build"
	start=$(date +%s)
	LU_CONFIG=$name "$LU_TOP/scripts/build-kernel.sh" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	report+=("$(printf '%-16s %5d s  %s' "$name" "$secs" "$what")")
	if [ $rc != 0 ]; then
		tail -20 "$log"
		fail "$name: the build failed (log: $log)"
		continue
	fi
	if grep -q 'warning:' "$log"; then
		grep 'warning:' "$log" | head -20
		fail "$name: the build warned (log: $log)"
		continue
	fi
	pass "$name: built in $secs s without warnings"
	config=$LU_CACHE/build/$name/.config
	if [ "$name" = no-liveupdate ]; then
		if grep -n 'PCI_LIVEUPDATE' "$config"; then
			fail "$name: the options are still in the configuration"
		else
			pass "$name: no trace of PCI_LIVEUPDATE or VFIO_PCI_LIVEUPDATE in .config"
		fi
	fi
	if [ -n "$scenario" ]; then
		if LU_CONFIG=$name "$LU_TOP/scripts/vmtest.sh" test \
			"$LU_TOP/tools/vmtest/scenarios/$scenario" >"$LU_CACHE/build/$name.vmtest.log" 2>&1; then
			pass "$name: boots and passes $scenario"
		else
			grep -E '^(FAIL|<==)' "$LU_CACHE/build/$name.vmtest.log"
			fail "$name: $scenario (log: $LU_CACHE/build/$name.vmtest.log)"
		fi
	fi
done

lu_step "Kconfig matrix: build time per configuration (incremental)"
printf '    %s\n' "${report[@]}"

# Text and data of vmlinux with both options off against the pristine tree's.
off=$LU_CACHE/build/off/vmlinux pristine=$LU_CACHE/build/pristine/vmlinux
if [ -f "$off" ] && [ -f "$pristine" ]; then
	lu_step "Kconfig matrix: size -A of vmlinux, both options off against pristine 7.3"
	join -j1 -a1 -a2 -e - -o 0,1.2,2.2 \
		<(size -A "$pristine" | awk '$1 ~ /^\./ { print $1, $2 }' | sort) \
		<(size -A "$off" | awk '$1 ~ /^\./ { print $1, $2 }' | sort) |
		awk 'BEGIN { printf "    %-28s %12s %12s\n", "section", "pristine", "off" }
		     { printf "    %-28s %12s %12s%s\n", $1, $2, $3, ($2 == $3 ? "" : "  differs") }'
	read -r ptext pdata _ < <(size "$pristine" | awk 'NR == 2 { print $1, $2, $3 }')
	read -r otext odata _ < <(size "$off" | awk 'NR == 2 { print $1, $2, $3 }')
	printf '    text: pristine %d, off %d; data: pristine %d, off %d\n' \
		"$ptext" "$otext" "$pdata" "$odata"
	if [ "$ptext" = "$otext" ] && [ "$pdata" = "$odata" ]; then
		pass "off: vmlinux text and data are the pristine tree's, byte for byte in size"
	else
		fail "off: vmlinux text or data differ from the pristine tree's"
	fi
	# The VFIO modules the hooks touch, as distributions build them.
	for ko in drivers/vfio/vfio.ko drivers/vfio/pci/vfio-pci-core.ko drivers/vfio/pci/vfio-pci.ko; do
		p=$(size "$LU_CACHE/build/pristine/$ko" 2>/dev/null | awk 'NR == 2 { print $1, $2, $3 }')
		o=$(size "$LU_CACHE/build/off/$ko" 2>/dev/null | awk 'NR == 2 { print $1, $2, $3 }')
		printf '    %s text, data, bss: pristine %s, off %s\n' "$(basename "$ko")" "${p:-none}" "${o:-none}"
		if [ -n "$p" ] && [ "$p" = "$o" ]; then
			pass "off: $(basename "$ko") is the pristine tree's size"
		else
			fail "off: $(basename "$ko") differs in size from the pristine tree's"
		fi
	done
fi

echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
