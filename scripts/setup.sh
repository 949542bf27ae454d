#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install or fetch everything needed to build and boot the kernel, into
# $LU_CACHE. On a machine that already has it all, it only checks.
#
# The system's apt configuration is never changed: Debian backports suites
# are reached through private source lists under $LU_CACHE/apt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$LU_CACHE"

APT_PACKAGES=(build-essential flex bison bc libelf-dev libssl-dev cpio rsync
	      busybox-static xz-utils python3 libc6-dev pkg-config git
	      python3-docutils)
MIRROR=http://deb.debian.org/debian

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# apt-get with a private sources list: lu_apt NAME "SUITES" ARGS...
lu_apt() {
	local name=$1 suites=$2 dir=$LU_CACHE/apt/$1
	shift 2
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	local suite
	for suite in $suites; do
		echo "deb $MIRROR $suite main"
	done >"$dir/sources.list"
	local opts=(-o "Dir::Etc::sourcelist=$dir/sources.list"
		    -o Dir::Etc::sourceparts=/dev/null
		    -o "Dir::State::Lists=$dir/lists"
		    -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
	if [ ! -e "$dir/updated" ]; then
		as_root apt-get "${opts[@]}" -qq update
		touch "$dir/updated"
	fi
	as_root apt-get "${opts[@]}" "$@"
}

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			echo "$p"
	done
}

install_build_packages() {
	local missing
	missing=$(missing_packages "${APT_PACKAGES[@]}")
	[ -z "$missing" ] && return
	lu_step "apt: installing $(echo $missing)"
	as_root apt-get -qq update
	DEBIAN_FRONTEND=noninteractive as_root apt-get -y -qq install $missing >/dev/null
}

install_qemu() {
	local v
	v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p') || true
	[ -n "$v" ] && [ "$v" -ge 8 ] && return
	lu_step "apt: installing qemu-system-x86 from bookworm-backports"
	DEBIAN_FRONTEND=noninteractive lu_apt bookworm "bookworm bookworm-updates bookworm-backports" \
		-y -qq -t bookworm-backports install qemu-system-x86 >/dev/null
}

# Download one package from trixie-backports into $LU_CACHE/debs and check it.
fetch_trixie_deb() {
	local pkg=$1 version=$2 sha=$3 deb
	deb=$LU_CACHE/debs/${pkg}_${version//:/%3a}_all.deb
	if [ ! -e "$deb" ]; then
		lu_step "fetching $pkg $version (trixie-backports)"
		mkdir -p "$LU_CACHE/debs"
		(cd "$LU_CACHE/debs" && lu_apt trixie trixie-backports -qq download "$pkg=$version")
	fi
	if [ -n "$sha" ] && ! echo "$sha  $deb" | sha256sum -c --quiet -; then
		rm -f "$deb"
		lu_die "$deb: checksum mismatch (expected $sha)"
	fi
	echo "$deb"
}

# The Linux 7.3 tree of the pinned linux-source package, extracted into $1.
extract_tree() {
	local dir=$1 deb tmp
	[ -f "$dir/.lu-extracted" ] && return
	deb=$(fetch_trixie_deb "$LINUX_SOURCE_PKG" "$LINUX_SOURCE_VERSION" "$LINUX_SOURCE_SHA256")
	lu_step "extracting the Linux 7.3 tree into $dir"
	tmp=$(mktemp -d "$LU_CACHE/tmp.XXXXXX")
	dpkg-deb -x "$deb" "$tmp"
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -xJf "$tmp"/usr/src/linux-source-7.3.tar.xz -C "$dir" --strip-components=1
	rm -rf "$tmp"
	touch "$dir/.lu-extracted"
}

fetch_kernel_tree() {
	if [ "$KERNEL_SRC" != "$LU_OWN_SRC" ]; then
		[ -f "$KERNEL_SRC/Makefile" ] || lu_die "KERNEL_SRC=$KERNEL_SRC is not a kernel tree"
		return
	fi
	extract_tree "$LU_OWN_SRC"
}

# The Rust standard library source must match rustc exactly.
fetch_rust_src() {
	local v sysroot
	v=$(rustc --version | awk '{print $2}')
	sysroot=$(rustc --print sysroot)
	[ -n "${RUST_LIB_SRC:-}" ] && return
	[ -d "$sysroot/lib/rustlib/src/rust/library/core" ] && return
	[ -d "$LU_CACHE/rust-src-$v/usr/src/rustc-$v/library" ] && return
	local debver deb
	debver=$(lu_apt trixie trixie-backports -qq --no-all-versions madison rust-src 2>/dev/null |
		 awk -F'|' -v v="$v" '{gsub(/ /,"",$2)} index($2, v "+")==1 {print $2; exit}') || true
	if [ -z "$debver" ]; then
		debver=$(apt-cache -o "Dir::Etc::sourcelist=$LU_CACHE/apt/trixie/sources.list" \
			 -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$LU_CACHE/apt/trixie/lists" \
			 -o "Dir::Cache=$LU_CACHE/apt/trixie/cache" madison rust-src |
			 awk -F'|' -v v="$v" '{gsub(/ /,"",$2)} index($2, v "+")==1 {print $2; exit}')
	fi
	[ -n "$debver" ] || lu_die "no Debian rust-src matches rustc $v; set RUST_LIB_SRC"
	deb=$(fetch_trixie_deb rust-src "$debver" "")
	lu_step "extracting rust-src $debver"
	dpkg-deb -x "$deb" "$LU_CACHE/rust-src-$v"
}

install_libclang() {
	[ -n "${LIBCLANG_PATH:-}" ] && return
	[ -e "$LU_CACHE/libclang/clang/native/libclang.so" ] && return
	lu_step "pip: libclang==$LIBCLANG_VERSION into $LU_CACHE/libclang"
	python3 -m pip install -q --no-deps --target "$LU_CACHE/libclang" "libclang==$LIBCLANG_VERSION"
}

install_bindgen() {
	local have
	have=$(bindgen --version 2>/dev/null | awk '{print $2}') || true
	if [ -n "$have" ] && [ "$(printf '%s\n0.71.1\n' "$have" | sort -V | head -1)" = 0.71.1 ]; then
		return
	fi
	[ -x "$LU_CACHE/bindgen/bin/bindgen" ] && return
	lu_step "cargo: bindgen-cli $BINDGEN_VERSION into $LU_CACHE/bindgen (a few minutes)"
	cargo install -q --locked --root "$LU_CACHE/bindgen" "bindgen-cli@$BINDGEN_VERSION"
}

check_rust_available() {
	lu_toolchain_env
	local out
	if ! out=$(make -s -C "$KERNEL_SRC" rustavailable 2>&1); then
		printf '%s\n' "$out" >&2
		lu_die "the kernel does not accept this Rust toolchain (make rustavailable above)"
	fi
}

# "setup.sh pristine-tree": only the untouched tree that the size comparison
# builds (scripts/kconfig-matrix.sh) and the patch series applies to
# (scripts/export-series.sh); the rest of the setup is done already.
if [ "${1:-}" = pristine-tree ]; then
	extract_tree "$LU_PRISTINE_SRC"
	exit 0
fi

install_build_packages
install_qemu
fetch_kernel_tree
fetch_rust_src
install_libclang
install_bindgen
check_rust_available
lu_step "setup complete (cache: $LU_CACHE, tree: $KERNEL_SRC)"
