#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Lay the overlay into the kernel tree and apply the hook patches.
#
# Files are copied only when their content differs, so an unchanged overlay
# leaves the tree's timestamps alone and the next build stays incremental.
# Files that left the overlay since the last run are removed from the tree.
# Patches are tracked in $KERNEL_SRC/.lu-applied: a series that changed is
# unwound back to the first patch that differs, then applied forward again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -f "$KERNEL_SRC/Makefile" ] || lu_die "no kernel tree at $KERNEL_SRC (run scripts/setup.sh)"

lay_overlay() {
	local manifest=$KERNEL_SRC/.lu-overlay-manifest new entry src dst f
	new=$(mktemp)
	for entry in "${OVERLAY_MAP[@]}"; do
		src=$LU_TOP/${entry%%:*}
		dst=$KERNEL_SRC/${entry#*:}
		[ -d "$src" ] || continue
		(cd "$src" && find . -type f ! -name '*.orig' ! -name '*~') |
			sed "s|^\./|${entry#*:}/|" >>"$new"
		mkdir -p "$dst"
		rsync -rc --out-format='    overlay %n' "$src/" "$dst/"
	done
	sort -o "$new" "$new"
	if [ -f "$manifest" ]; then
		comm -23 "$manifest" "$new" | while read -r f; do
			echo "    overlay: removing $f"
			rm -f "$KERNEL_SRC/$f"
		done
	fi
	mv "$new" "$manifest"
}

apply_patches() {
	local applied=$KERNEL_SRC/.lu-applied series=$LU_TOP/patches/series
	local want=() have=() p i keep=0
	mkdir -p "$applied"
	[ -f "$series" ] && mapfile -t want < <(grep -v '^\s*\(#\|$\)' "$series")
	[ -f "$applied/series" ] && mapfile -t have <"$applied/series"

	# Keep the longest prefix that is applied with identical content.
	while [ $keep -lt ${#have[@]} ] && [ $keep -lt ${#want[@]} ] &&
	      [ "${have[$keep]}" = "${want[$keep]}" ] &&
	      cmp -s "$applied/${have[$keep]}" "$LU_TOP/patches/${want[$keep]}"; do
		keep=$((keep + 1))
	done
	for ((i = ${#have[@]} - 1; i >= keep; i--)); do
		p=${have[$i]}
		echo "    patch: reverting $p"
		patch -d "$KERNEL_SRC" -p1 -R -s -f <"$applied/$p" ||
			lu_die "cannot revert $p in $KERNEL_SRC; re-extract the tree"
		rm -f "$applied/$p"
		printf '%s\n' "${have[@]:0:$i}" | sed '/^$/d' >"$applied/series"
	done
	for ((i = keep; i < ${#want[@]}; i++)); do
		p=${want[$i]}
		echo "    patch: applying $p"
		if ! patch -d "$KERNEL_SRC" -p1 -s -f --dry-run <"$LU_TOP/patches/$p" >/dev/null; then
			lu_die "patch $p does not apply to $KERNEL_SRC"
		fi
		patch -d "$KERNEL_SRC" -p1 -s -f --no-backup-if-mismatch <"$LU_TOP/patches/$p"
		cp "$LU_TOP/patches/$p" "$applied/$p"
		echo "$p" >>"$applied/series"
	done
}

lu_step "overlay into $KERNEL_SRC"
lay_overlay
apply_patches
