#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The overlay and its hooks as a patch series against v7.3, for review.
#
#   scripts/export-series.sh [--check] [--build] [OUTDIR]
#
# Commits the series in a git tree of the pristine 7.3 source, in the order
# and grouping of patches/review-order (Rust abstractions, ABI, PCI core,
# vfio, tests, documentation): each hook patch of patches/ with its own
# message, the overlay files it wires in, and commits of their own for the
# overlay files no hook needs (their messages are in patches/messages/).
# The author and the Signed-off-by of every patch are the identity of the
# user's git configuration. Then it checks the series:
#
#   - every overlay file and every hook patch is in exactly one commit;
#   - git format-patch writes it out (OUTDIR, default
#     $LU_CACHE/series/patches), git am applies it onto v7.3 again, and the
#     result is the tree make test builds and tests (overlay and hooks laid
#     into 7.3), file for file;
#   - with --build, the tree git am made is built with the test
#     configuration and boots through the main scenario.
#
# --check does all of it but writes no patches, and works without a git
# identity (its throwaway commits carry a local one): make test runs it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

check=0 build=0 outdir=$LU_CACHE/series/patches
while [ $# -gt 0 ]; do
	case $1 in
	--check) check=1 ;;
	--build) build=1 ;;
	-*) lu_die "unknown option $1 (--check, --build)" ;;
	*) outdir=$1 ;;
	esac
	shift
done

name=$(git -C "$LU_TOP" config user.name || true)
email=$(git -C "$LU_TOP" config user.email || true)
if [ -z "$name" ] || [ -z "$email" ]; then
	[ $check = 1 ] ||
		lu_die "no git identity: set git config user.name and user.email, whom the patches are from and signed off by"
	name="series check" email="series-check@localhost"
fi
ident=(-c "user.name=$name" -c "user.email=$email")

"$LU_TOP/scripts/setup.sh" pristine-tree
"$LU_TOP/scripts/prepare-tree.sh" >/dev/null

# A git tree of pristine 7.3, tagged v7.3, made once.
tree=$LU_SERIES_SRC
g() { git -C "$tree" "${ident[@]}" "$@"; }
if ! git -C "$tree" rev-parse -q --verify v7.3 >/dev/null 2>&1; then
	lu_step "making a git tree of pristine 7.3 in $tree (once)"
	rm -rf "$tree"
	mkdir -p "$tree"
	cp -a "$LU_PRISTINE_SRC/." "$tree/"
	rm -f "$tree/.lu-extracted"
	g init -q
	g add -A -f
	g commit -q -m "Linux 7.3"
	g tag v7.3
fi

# The tree path of an overlay (repository) path.
tree_path() {
	local entry src
	for entry in "${OVERLAY_MAP[@]}"; do
		src=${entry%%:*}
		case $1 in
		"$src" | "$src"/*)
			echo "${entry#*:}${1#"$src"}"
			return
			;;
		esac
	done
	lu_die "$1 is not in the overlay"
}

# A commit message: the hook patch's header (or the message file) without
# its From: and Signed-off-by: lines, signed off by the identity.
message() {
	awk '/^---$/ { exit } { print }' "$1" |
		sed -e '/^From: /d' -e '/^Signed-off-by: /d' -e 's/^Subject: \(\[PATCH\] \)\{0,1\}//' |
		sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
	printf '\nSigned-off-by: %s <%s>\n' "$name" "$email"
}

lu_step "committing the series in $tree"
g checkout -q -f -B series v7.3
g clean -q -fdx
declare -A covered=()
hooks=0
while read -r first rest; do
	case $first in '' | '#'*) continue ;; esac
	src=$LU_TOP/patches/$first
	[ -f "$src" ] || lu_die "patches/review-order: no $first"
	if [[ $first == messages/* ]]; then
		[ -n "$rest" ] || lu_die "patches/review-order: $first adds no file"
	else
		grep -qxF "$first" "$LU_TOP/patches/series" ||
			lu_die "patches/review-order: $first is not in patches/series"
		[ -z "${covered[$first]:-}" ] || lu_die "patches/review-order: $first twice"
		covered[$first]=1
		hooks=$((hooks + 1))
		# As scripts/prepare-tree.sh applies it, so the result is the same.
		patch -d "$tree" -p1 -s -f --no-backup-if-mismatch <"$src" >/dev/null ||
			lu_die "$first does not apply in the series' order"
		grep '^+++ b/' "$src" | sed 's|^+++ b/||' | while read -r f; do g add -f -- "$f"; done
	fi
	for f in $rest; do
		[ -e "$LU_TOP/$f" ] || lu_die "patches/review-order: no overlay file $f"
		while read -r file; do
			[ -z "${covered[$file]:-}" ] || lu_die "patches/review-order: $file twice"
			covered[$file]=1
			dst=$(tree_path "$file")
			mkdir -p "$tree/$(dirname "$dst")"
			cp "$LU_TOP/$file" "$tree/$dst"
			g add -f "$dst"
		done < <(cd "$LU_TOP" && git ls-files "$f")
	done
	g commit -q --author="$name <$email>" -F <(message "$src")
done <"$LU_TOP/patches/review-order"

# Every hook and every overlay file the repository tracks is in the series.
missing=0
while read -r p; do
	[ -n "${covered[$p]:-}" ] || { echo "error: hook $p is not in patches/review-order" >&2; missing=1; }
done < <(grep -v '^\s*\(#\|$\)' "$LU_TOP/patches/series")
for entry in "${OVERLAY_MAP[@]}"; do
	while read -r file; do
		[ -n "${covered[$file]:-}" ] ||
			{ echo "error: overlay file $file is not in patches/review-order" >&2; missing=1; }
	done < <(cd "$LU_TOP" && git ls-files "${entry%%:*}")
done
[ $missing = 0 ] || lu_die "the series leaves files out"

# Out with format-patch, back in with git am onto v7.3.
patchdir=$(mktemp -d)
trap 'rm -rf "$patchdir"' EXIT
g format-patch -q --no-signature -o "$patchdir" v7.3..series
count=$(find "$patchdir" -name '*.patch' | wc -l)
lu_step "applying the $count patches with git am onto v7.3"
g checkout -q -f -B series-am v7.3
g am -q "$patchdir"/*.patch
g diff --quiet series series-am -- || lu_die "git am gave another tree than the series"

# The tree make test builds: every file the series touches is the same there.
lu_step "comparing with the tree make test builds ($KERNEL_SRC)"
differs=0
while read -r f; do
	if ! cmp -s "$tree/$f" "$KERNEL_SRC/$f"; then
		echo "error: $f differs from $KERNEL_SRC/$f" >&2
		differs=1
	fi
done < <(g diff --name-only v7.3 series-am)
[ $differs = 0 ] || lu_die "the series does not give the tree make test builds"
echo "    $count patches ($hooks hooks, the rest overlay); git am onto v7.3 gives the tested tree"

if [ $check = 0 ]; then
	rm -rf "$outdir"
	mkdir -p "$outdir"
	cp "$patchdir"/*.patch "$outdir/"
	lu_step "series written to $outdir"
	ls "$outdir" | sed 's/^/    /'
fi

if [ $build = 1 ]; then
	lu_step "building the tree git am made, with the test configuration"
	LU_CONFIG=series "$LU_TOP/scripts/build-kernel.sh"
	LU_CONFIG=series "$LU_TOP/scripts/vmtest.sh" test \
		"$LU_TOP/tools/vmtest/scenarios/vfio-pci-liveupdate.toml"
fi
