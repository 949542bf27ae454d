# SPDX-License-Identifier: GPL-2.0
# Shared settings for the project's scripts. Sourced, never run.
#
# Everything fetched or built lives under $LU_CACHE, outside the clone, so a
# fresh clone on a warm machine rebuilds nothing it does not have to.

LU_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LU_CACHE=${LU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-liveupdate}

# Pinned inputs. The checksums are those of the .deb files Debian serves.
LINUX_SOURCE_PKG=linux-source-7.3
LINUX_SOURCE_VERSION=7.3.4-1~bpo13+1
LINUX_SOURCE_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
BINDGEN_VERSION=0.72.1
LIBCLANG_VERSION=18.1.1

# The kernel tree: ours (extracted from linux-source) unless KERNEL_SRC names one.
LU_OWN_SRC=$LU_CACHE/linux-7.3
KERNEL_SRC=${KERNEL_SRC:-$LU_OWN_SRC}
# The same tree untouched: no overlay, no hooks.
LU_PRISTINE_SRC=$LU_CACHE/linux-7.3-pristine
# A git tree of it, with the exported patch series (scripts/export-series.sh).
LU_SERIES_SRC=$LU_CACHE/series/linux
# The overlay: repository folder -> folder in the kernel tree.
OVERLAY_MAP=(
	"drivers:drivers"
	"rust:rust"
	"include/kho/abi:include/linux/kho/abi"
	"include/linux:include/linux"
	"tools/testing/selftests:tools/testing/selftests"
	"Documentation:Documentation"
	"lib/tests:lib/tests"
)

# Out-of-tree build directory, kept between runs so builds stay incremental.
KBUILD_DIR=${KBUILD_DIR:-$LU_CACHE/build/${LU_CONFIG:-test}}
# The Cargo workspace builds in the cache too, so a fresh clone starts warm.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$LU_CACHE/cargo-target}
# rustup's tools, also when the caller's PATH lacks them.
PATH=$HOME/.cargo/bin:$PATH
export PATH

lu_step() { printf '==> %s\n' "$*" >&2; }

# Cargo, in the shared target directory. Every clone builds there, and Cargo
# remembers a source outside its package (liveupdate-core's modules from
# drivers/) by its absolute path: it would call that crate up to date from
# another clone's files. So the crate is rebuilt when the clone changes.
lu_cargo() {
	local owner=$CARGO_TARGET_DIR/lu-clone
	if [ "$(cat "$owner" 2>/dev/null)" != "$LU_TOP" ]; then
		cargo clean -q --manifest-path "$LU_TOP/Cargo.toml" -p liveupdate-core || return
		mkdir -p "$CARGO_TARGET_DIR" && printf '%s\n' "$LU_TOP" >"$owner"
	fi
	cargo "$@"
}
lu_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Toolchain environment for a Rust-enabled kernel build. Each piece is used
# only when the setup script provided it; tools already on the machine win.
lu_toolchain_env() {
	[ -d "$LU_CACHE/bindgen/bin" ] && PATH=$LU_CACHE/bindgen/bin:$PATH
	export PATH
	if [ -z "${LIBCLANG_PATH:-}" ] && [ -d "$LU_CACHE/libclang/clang/native" ]; then
		export LIBCLANG_PATH=$LU_CACHE/libclang/clang/native
	fi
	if [ -z "${RUST_LIB_SRC:-}" ]; then
		local v
		v=$(rustc --version 2>/dev/null | awk '{print $2}')
		if [ -n "$v" ] && [ -d "$LU_CACHE/rust-src-$v/usr/src/rustc-$v/library" ]; then
			export RUST_LIB_SRC=$LU_CACHE/rust-src-$v/usr/src/rustc-$v/library
		fi
	fi
}
