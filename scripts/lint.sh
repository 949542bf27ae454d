#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Style checks on the project's own code: rustfmt, clippy and rustdoc on
# the Cargo workspace and the kernel Rust, checkpatch --strict on the hook
# patches and the C, kernel-doc on the headers, docutils on the
# documentation. CI runs it (.ci/run).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$LU_TOP"

lu_step "rustfmt"
cargo fmt --all --check
lu_step "clippy"
lu_cargo clippy -q --workspace --all-targets --locked -- -D warnings
lu_step "rustdoc (the liveupdate crate's documentation is its manual)"
RUSTDOCFLAGS="-D warnings" lu_cargo doc -q --no-deps --workspace --locked
lu_step "rustfmt (kernel code, the kernel's .rustfmt.toml)"
[ -f "$KERNEL_SRC/.rustfmt.toml" ] || lu_die "no kernel tree (run make setup)"
find rust drivers -name '*.rs' -print0 2>/dev/null |
	xargs -0 -r rustfmt --check --edition 2021 --config-path "$KERNEL_SRC/.rustfmt.toml"
lu_step "clippy (kernel code, in $LU_CACHE/build/clippy)"
LU_CONFIG=test KBUILD_DIR=$LU_CACHE/build/clippy "$LU_TOP/scripts/build-kernel.sh" >/dev/null
lu_toolchain_env
make -s -C "$KERNEL_SRC" O="$LU_CACHE/build/clippy" -j"$(nproc)" CLIPPY=1 KRUSTFLAGS=-Dwarnings \
	rust/ lib/tests/ drivers/pci/ drivers/vfio/
lu_step "ABI headers compile on their own (their static asserts hold)"
KBUILD_DIR=$LU_CACHE/build/clippy
for h in include/kho/abi/*.h; do
	echo "#include \"$LU_TOP/$h\"" | gcc -fsyntax-only -x c - -D__KERNEL__ -nostdinc \
		-I"$KERNEL_SRC/arch/x86/include" -I"$KBUILD_DIR/arch/x86/include/generated" \
		-I"$KERNEL_SRC/include" -I"$KBUILD_DIR/include" \
		-I"$KERNEL_SRC/arch/x86/include/uapi" -I"$KBUILD_DIR/arch/x86/include/generated/uapi" \
		-I"$KERNEL_SRC/include/uapi" -I"$KBUILD_DIR/include/generated/uapi" \
		-include "$KERNEL_SRC/include/linux/compiler-version.h" \
		-include "$KERNEL_SRC/include/linux/kconfig.h" \
		-include "$KERNEL_SRC/include/linux/compiler_types.h" || lu_die "$h does not compile"
done
lu_step "checkpatch"
[ -x "$KERNEL_SRC/scripts/checkpatch.pl" ] || lu_die "no kernel tree (run make setup)"
# On stdin: checkpatch reads a git-tracked file as source, not as a patch.
grep -v '^\s*\(#\|$\)' patches/series | while read -r p; do
	"$KERNEL_SRC/scripts/checkpatch.pl" --no-tree --strict -q - <"patches/$p" ||
		lu_die "checkpatch: patches/$p"
done
git ls-files -co --exclude-standard '*.c' '*.h' | while read -r f; do
	"$KERNEL_SRC/scripts/checkpatch.pl" --no-tree --strict -q -f "$f" || lu_die "checkpatch: $f"
done
lu_step "kernel-doc (headers and C)"
git ls-files 'include/*.h' 'drivers/*.c' | while read -r f; do
	"$KERNEL_SRC/scripts/kernel-doc" -none -Wall -Werror "$f" || lu_die "kernel-doc: $f"
done
lu_step "docutils (documentation)"
git ls-files 'Documentation/*.rst' | python3 -c '
import sys, docutils.core
for path in sys.stdin.read().split():
    with open(path) as f:
        # Warnings and errors stop it (halt_level 2) with the place named.
        docutils.core.publish_doctree(f.read(), source_path=path,
                                      settings_overrides={"halt_level": 2})
' || lu_die "docutils: the documentation does not parse cleanly"
lu_step "lint clean"
