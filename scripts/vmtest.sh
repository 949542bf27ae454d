#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the QEMU runner and the guest init, then boot the built kernel.
#
#   scripts/vmtest.sh test [SCENARIO.toml...]   (default: every scenario)
#   scripts/vmtest.sh shell [--device MODEL...]
#
# The serial logs and initramfs images go to $LU_OUT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LU_OUT=${LU_OUT:-$LU_CACHE/out/${LU_CONFIG:-test}}
TRIPLE=x86_64-unknown-linux-gnu

KERNEL=$KBUILD_DIR/arch/x86/boot/bzImage
[ -f "$KERNEL" ] || lu_die "no kernel at $KERNEL (run make build)"

# Static binaries: the guest has no libc. --target keeps the flags off
# build scripts and proc macros, which run on the host.
lu_step "building lu-runner, lu-init, lu-demo and lu-bench"
RUSTFLAGS="-C target-feature=+crt-static" \
	lu_cargo build -q --release --locked --target $TRIPLE -p lu-vmtest -p lu-demo -p lu-bench \
	--manifest-path "$LU_TOP/Cargo.toml"
BIN=$CARGO_TARGET_DIR/$TRIPLE/release

# The guest's programs: the selftests, lu-demo and lu-bench.
bin_dirs=(--bin-dir "$BIN")
for d in "$KBUILD_DIR"/selftests/*/; do
	bin_dirs+=(--bin-dir "$d")
done
# The modules of the build in $1, as its modules.order lists them: a build
# directory started from a copy of another may hold that one's stale .ko
# files.
modules_of() {
	[ -f "$1/modules.order" ] || return 0
	sed -n "s|\.o\$|.ko|p" "$1/modules.order" | while read -r ko; do
		[ -f "$1/$ko" ] && echo "$1/$ko"
	done
}

# The guest loads every module built (VFIO, vfio-pci) at each boot.
while read -r ko; do
	bin_dirs+=(--module "$ko")
done < <(modules_of "$KBUILD_DIR")
# The other kernels that stages kexec into, by the name of their
# configuration, each with its own modules: the "next" kernels of the
# version-skew scenarios (LU_CONFIG=next, next-*) and the kernel without the
# vfio-pci handler of the unclaimed-device scenario (no-vfio-handler).
for dir in "$LU_CACHE"/build/next*/ "$LU_CACHE"/build/no-vfio-handler/; do
	name=$(basename "$dir")
	[ -f "$dir/arch/x86/boot/bzImage" ] || continue
	bin_dirs+=(--kernel-named "$name=$dir/arch/x86/boot/bzImage")
	while read -r ko; do
		bin_dirs+=(--module-named "$name=$ko")
	done < <(modules_of "${dir%/}")
done

cmd=${1:-test}
shift || true
case $cmd in
test)
	[ $# -gt 0 ] || set -- "$LU_TOP"/tools/vmtest/scenarios/*.toml
	exec "$BIN/lu-runner" test --kernel "$KERNEL" --out "$LU_OUT" "${bin_dirs[@]}" \
		--messages "$LU_TOP/drivers" --messages "$LU_TOP/rust" --messages "$LU_TOP/lib" "$@"
	;;
shell)
	exec "$BIN/lu-runner" shell --kernel "$KERNEL" --out "$LU_OUT" "${bin_dirs[@]}" "$@"
	;;
*)
	lu_die "unknown command $cmd (test or shell)"
	;;
esac
