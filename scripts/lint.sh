#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Style checks on the project's own code: rustfmt and clippy on the Cargo
# workspace, checkpatch on the hook patches.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PATH=$HOME/.cargo/bin:$PATH
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$LU_CACHE/cargo-target}
cd "$LU_TOP"

lu_step "rustfmt"
cargo fmt --all --check
lu_step "clippy"
cargo clippy -q --workspace --all-targets --locked -- -D warnings
lu_step "checkpatch"
[ -x "$KERNEL_SRC/scripts/checkpatch.pl" ] || lu_die "no kernel tree (run make setup)"
# On stdin: checkpatch reads a git-tracked file as source, not as a patch.
grep -v '^\s*\(#\|$\)' patches/series | while read -r p; do
	"$KERNEL_SRC/scripts/checkpatch.pl" --no-tree --strict -q - <"patches/$p" ||
		lu_die "checkpatch: patches/$p"
done
lu_step "lint clean"
