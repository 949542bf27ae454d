// SPDX-License-Identifier: GPL-2.0

//! Kexec HandOver (KHO): memory handed from one kernel to the next.
//!
//! C headers: [`include/linux/kexec_handover.h`](srctree/include/linux/kexec_handover.h),
//! [`include/linux/kho_block.h`](srctree/include/linux/kho_block.h).
//!
//! A kernel about to kexec allocates and preserves memory with [`KhoMem::alloc_preserve`],
//! fills it in, and hands its physical address ([`KhoMem::phys`]) to the next kernel, usually
//! as the `u64` of a Live Update file or FLB, while it keeps the object alive until the kexec.
//! The next kernel takes the memory back with [`KhoMem::restore`]. Everything read from such
//! memory came from another kernel: read it through [`FromBytes`] types only and validate it
//! before use, addresses of further preserved memory included.
//!
//! [`KhoBlockSet`] holds a variable number of fixed-size entries in a chain of preserved pages.

use crate::{
    bindings,
    error::{from_err_ptr, to_result},
    page::PAGE_SIZE,
    prelude::*,
    transmute::{AsBytes, FromBytes},
    types::Opaque,
};
use core::{marker::PhantomData, mem::size_of, ptr::NonNull};

/// Memory this kernel preserves for the next one.
pub struct Outgoing;

/// Memory the previous kernel preserved for this one.
pub struct Incoming;

/// The direction of a [`KhoMem`]: it decides how the memory is released.
pub trait Direction: private::Sealed {
    #[doc(hidden)]
    /// Releases memory of `size` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` and `size` come from a [`KhoMem`] of this direction that is being dropped.
    unsafe fn release(ptr: NonNull<u8>, size: usize);
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::Outgoing {}
    impl Sealed for super::Incoming {}
}

impl Direction for Outgoing {
    unsafe fn release(ptr: NonNull<u8>, _size: usize) {
        // SAFETY: By the safety requirements, `ptr` came from `kho_alloc_preserve()` and has not
        // been freed.
        unsafe { bindings::kho_unpreserve_free(ptr.as_ptr().cast()) };
    }
}

impl Direction for Incoming {
    unsafe fn release(ptr: NonNull<u8>, _size: usize) {
        // SAFETY: By the safety requirements, `ptr` is the address of a folio restored with
        // `kho_restore_folio()` that we own.
        unsafe { bindings::folio_put(bindings::virt_to_folio(ptr.as_ptr().cast())) };
    }
}

/// Whether this kernel was booted by a kexec that handed memory over through KHO.
pub fn is_kho_boot() -> bool {
    // SAFETY: The function only reads KHO's state.
    unsafe { bindings::is_kho_boot() }
}

/// Whether this kernel preserves 2^`order` pages at `phys` for the next kernel.
#[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
pub fn is_preserved(phys: u64, order: u32) -> bool {
    // SAFETY: The function only looks the address up in KHO's tracker of preservations.
    unsafe { bindings::kho_is_preserved(phys, order) }
}

/// Whether a preservation of 2^`order` pages, handed over by the previous kernel and not
/// restored yet, starts at `phys`.
pub fn is_handed_over(phys: u64, order: u32) -> bool {
    // SAFETY: `kho_preserved_order()` only looks at the `struct page` of `phys`, if any, and
    // may be called with any address.
    let found = unsafe { bindings::kho_preserved_order(phys) };
    u32::try_from(found).is_ok_and(|o| o == order)
}

/// Copies the first `buf.len()` bytes of the preservation handed over by the previous kernel
/// at `phys`, leaving it handed over: its owner restores or frees it later, as if it had not
/// been read. Fails with `EINVAL` unless a preservation of at least `buf.len()` bytes, not
/// restored yet, starts at `phys`. The bytes are whatever the previous kernel wrote: validate
/// them before use.
pub fn read_handed_over(phys: u64, buf: &mut [u8]) -> Result {
    // SAFETY: `kho_preserved_order()` only looks at the `struct page` of `phys`, if any, and
    // may be called with any address.
    let order = unsafe { bindings::kho_preserved_order(phys) };
    let size = u32::try_from(order)
        .ok()
        .and_then(|o| crate::page::PAGE_SIZE.checked_shl(o))
        .ok_or(EINVAL)?;
    if buf.len() > size {
        return Err(EINVAL);
    }
    // SAFETY: `buf` is valid for `buf.len()` bytes; the source, preserved memory in the direct
    // map that its owner may free meanwhile, is read without faulting either way.
    let ret = unsafe {
        bindings::copy_from_kernel_nofault(
            buf.as_mut_ptr().cast(),
            bindings::phys_to_virt(phys),
            buf.len(),
        )
    };
    if ret != 0 {
        return Err(EFAULT);
    }
    Ok(())
}

/// Physically contiguous memory preserved across kexec with KHO.
///
/// `KhoMem<Outgoing>` is allocated and preserved by this kernel; dropping it unpreserves and
/// frees it, so an object that is still alive at the kexec is what gets handed over.
/// `KhoMem<Incoming>` was preserved by the previous kernel and restored here; dropping it frees
/// it.
///
/// # Invariants
///
/// `ptr` points to `size` bytes of memory owned by this object: for [`Outgoing`], a
/// `kho_alloc_preserve()` allocation that is still preserved; for [`Incoming`], the whole of a
/// folio restored by `kho_restore_folio()`. `size` is a power of two of at least `PAGE_SIZE`.
pub struct KhoMem<D: Direction> {
    ptr: NonNull<u8>,
    size: usize,
    _dir: PhantomData<D>,
}

// SAFETY: The memory is owned by the object and may be used and freed from any thread.
unsafe impl<D: Direction> Send for KhoMem<D> {}
// SAFETY: Shared references only give shared access to the bytes.
unsafe impl<D: Direction> Sync for KhoMem<D> {}

impl<D: Direction> KhoMem<D> {
    /// The size in bytes, a power of two of at least a page.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The physical address of the first byte.
    pub fn phys(&self) -> u64 {
        // SAFETY: `ptr` is a valid direct-map address by the type invariants.
        unsafe { bindings::virt_to_phys(self.ptr.as_ptr().cast()) }
    }

    /// The memory as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: By the type invariants `ptr` points to `size` bytes that we own; they were
        // zeroed or written by a kernel, so they are initialised.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
    }

    /// The memory as mutable bytes.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: As in `as_bytes`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
    }

    /// A typed view of the `T` at `offset`.
    ///
    /// Fails with `EINVAL` when `T` does not fit there or `offset` is not aligned for `T`.
    pub fn view<T: FromBytes>(&self, offset: usize) -> Result<&T> {
        let end = offset.checked_add(size_of::<T>()).ok_or(EINVAL)?;
        T::from_bytes(self.as_bytes().get(offset..end).ok_or(EINVAL)?).ok_or(EINVAL)
    }

    /// A mutable typed view of the `T` at `offset`; see [`KhoMem::view`].
    pub fn view_mut<T: FromBytes + AsBytes>(&mut self, offset: usize) -> Result<&mut T> {
        let end = offset.checked_add(size_of::<T>()).ok_or(EINVAL)?;
        let bytes = self.as_bytes_mut().get_mut(offset..end).ok_or(EINVAL)?;
        T::from_bytes_mut(bytes).ok_or(EINVAL)
    }
}

impl KhoMem<Outgoing> {
    /// Allocates at least `size` bytes of zeroed memory and preserves it for the next kernel.
    ///
    /// The size is rounded up to a power-of-two number of pages. Fails with `EINVAL` for a
    /// zero size, `E2BIG` beyond the largest page allocation, `ENOMEM` when out of memory.
    pub fn alloc_preserve(size: usize) -> Result<Self> {
        if size == 0 {
            return Err(EINVAL);
        }
        let rounded = size
            .max(PAGE_SIZE)
            .checked_next_power_of_two()
            .ok_or(E2BIG)?;
        // SAFETY: `kho_alloc_preserve()` may be called with any size.
        let ptr = from_err_ptr(unsafe { bindings::kho_alloc_preserve(size) })?;
        // INVARIANT: `kho_alloc_preserve()` allocated and preserved `2^get_order(size)` pages,
        // which is `rounded` bytes.
        Ok(Self {
            ptr: NonNull::new(ptr.cast()).ok_or(ENOMEM)?,
            size: rounded,
            _dir: PhantomData,
        })
    }
}

impl KhoMem<Incoming> {
    /// Takes back the memory the previous kernel preserved at `phys`.
    ///
    /// `phys` is typically read from handed-over state, which may be corrupt, so it is checked
    /// first: unless it is the start of memory preserved for this kernel and not restored
    /// before, this fails with `EINVAL`, quietly. The contents are whatever the previous
    /// kernel wrote: validate them before use.
    pub fn restore(phys: u64) -> Result<Self> {
        // SAFETY: `kho_preserved_order()` only looks at the `struct page` of `phys`, if any, and
        // may be called with any address.
        if unsafe { bindings::kho_preserved_order(phys) } < 0 {
            return Err(EINVAL);
        }
        // SAFETY: `kho_restore_folio()` may be called with any address and returns NULL when no
        // preservation starts there; checked above, so it does not warn about that either.
        let folio = unsafe { bindings::kho_restore_folio(phys) };
        if folio.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `folio` is a valid folio we now own.
        let (addr, size) = unsafe { (bindings::folio_address(folio), bindings::folio_size(folio)) };
        // INVARIANT: the folio restored above starts at `addr` and spans `size` bytes.
        Ok(Self {
            ptr: NonNull::new(addr.cast()).ok_or(EINVAL)?,
            size,
            _dir: PhantomData,
        })
    }
}

impl<D: Direction> Drop for KhoMem<D> {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `size` come from this object of direction `D`.
        unsafe { D::release(self.ptr, self.size) };
    }
}

/// Most blocks a handed-over [`KhoBlockSet`] may have, as KHO's own block sets.
const MAX_BLOCKS: usize = 10000;

/// Why a handed-over [`KhoBlockSet`] was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockChainError {
    /// A block's address is not memory preserved for this kernel (or already restored).
    NotPreserved {
        /// The block's position in the chain.
        block: usize,
    },
    /// A block is preserved memory, but not of one page.
    NotABlock {
        /// The block's position in the chain.
        block: usize,
    },
    /// A block's entry count is 0 or more than a block holds.
    Count {
        /// The block's position in the chain.
        block: usize,
        /// Its entry count.
        count: u64,
    },
    /// The chain has more blocks than a block set may.
    TooLong,
    /// Out of memory for the entries.
    NoMemory,
}

impl crate::fmt::Display for BlockChainError {
    fn fmt(&self, f: &mut crate::fmt::Formatter<'_>) -> crate::fmt::Result {
        match self {
            Self::NotPreserved { block } => {
                write!(f, "block {block} is not in memory KHO handed over")
            }
            Self::NotABlock { block } => write!(f, "block {block} is not one page"),
            Self::Count { block, count } => {
                write!(f, "block {block} claims {count} entries")
            }
            Self::TooLong => write!(f, "more than {MAX_BLOCKS} blocks"),
            Self::NoMemory => write!(f, "out of memory"),
        }
    }
}

/// A chain of preserved pages holding entries of type `E`, for arrays whose length is not known
/// in advance.
///
/// Only the physical address of the first block ([`KhoBlockSet::head_phys`]) needs handing over;
/// the next kernel reads the entries back with [`KhoBlockSet::read_incoming`].
///
/// # Invariants
///
/// `inner` is a `struct kho_block_set` initialised for entries of `size_of::<E>()` bytes.
#[pin_data(PinnedDrop)]
pub struct KhoBlockSet<E> {
    #[pin]
    inner: Opaque<bindings::kho_block_set>,
    _entry: PhantomData<E>,
}

// SAFETY: The block set owns its memory; `&mut` access is required for every change.
unsafe impl<E: Send> Send for KhoBlockSet<E> {}
// SAFETY: Shared references only read.
unsafe impl<E: Sync> Sync for KhoBlockSet<E> {}

impl<E: FromBytes + AsBytes + Copy> KhoBlockSet<E> {
    /// Entries that fit one block.
    pub const ENTRIES_PER_BLOCK: usize =
        (PAGE_SIZE - size_of::<bindings::kho_block_header_ser>()) / size_of::<E>();

    /// An empty outgoing set.
    pub fn new() -> impl PinInit<Self> {
        build_assert!(size_of::<E>() > 0 && Self::ENTRIES_PER_BLOCK > 0);
        pin_init!(Self {
            inner <- Opaque::ffi_init(|slot| {
                // SAFETY: `slot` is valid for writes; `kho_block_set_init()` initialises every
                // field of it.
                unsafe { bindings::kho_block_set_init(slot, size_of::<E>()) }
            }),
            _entry: PhantomData,
        })
    }

    /// Reads the entries of the set the previous kernel handed over at `head_phys` (0: empty),
    /// in order, and frees its blocks.
    ///
    /// Every block address is checked to be memory preserved for this kernel, one page, before
    /// anything in it is read, and every entry count against the block size, so a corrupt
    /// chain is rejected whole and never followed outside preserved memory. A chain cannot loop:
    /// a block is restored only once. The blocks that could be restored are freed whether the
    /// chain is accepted or not.
    pub fn read_incoming(head_phys: u64) -> Result<KVec<E>, BlockChainError> {
        let mut entries = KVec::new();
        let mut verdict = Ok(());
        let mut next = head_phys;
        let mut block = 0;
        while next != 0 {
            if block == MAX_BLOCKS {
                return Err(BlockChainError::TooLong);
            }
            let Ok(mem) = KhoMem::restore(next) else {
                return verdict.and(Err(BlockChainError::NotPreserved { block }));
            };
            let bytes = mem.as_bytes();
            let word = |at: usize| {
                let mut raw = [0; 8];
                raw.copy_from_slice(&bytes[at..at + 8]);
                u64::from_ne_bytes(raw)
            };
            // `struct kho_block_header_ser`: the next block's address, then the entry count.
            next = word(0);
            let count = word(8);
            if mem.size() != PAGE_SIZE {
                verdict = verdict.and(Err(BlockChainError::NotABlock { block }));
            } else if count == 0 || count > Self::ENTRIES_PER_BLOCK as u64 {
                verdict = verdict.and(Err(BlockChainError::Count { block, count }));
            }
            if verdict.is_ok() {
                let first = size_of::<bindings::kho_block_header_ser>();
                let data = &bytes[first..first + count as usize * size_of::<E>()];
                for raw in data.chunks_exact(size_of::<E>()) {
                    // Every chunk is `size_of::<E>()` bytes, which any `E: FromBytes` takes.
                    let Some(entry) = E::from_bytes_copy(raw) else {
                        continue;
                    };
                    // Out of memory, the rest of the chain is still walked, to be freed.
                    if entries.push(entry, GFP_KERNEL).is_err() {
                        verdict = Err(BlockChainError::NoMemory);
                        break;
                    }
                }
            }
            block += 1;
            // `mem` is freed here: its entries are copied out.
        }
        verdict.map(|()| entries)
    }

    /// The physical address of the first block, 0 when the set is empty.
    pub fn head_phys(&self) -> u64 {
        // SAFETY: `inner` is initialised by the type invariants; the read has no side effects.
        unsafe { (*self.inner.get()).head_pa }
    }

    /// Replaces the entries with `entries`, growing or shrinking the chain as needed.
    ///
    /// Room is made first: when that fails (`ENOMEM`, or `ENOSPC` past the longest chain KHO
    /// allows), the set keeps its previous entries.
    pub fn write_all(self: Pin<&mut Self>, entries: &[E]) -> Result {
        let bs = self.inner.get();
        let count = entries.len() as u64;
        // SAFETY: `bs` is initialised and we have exclusive access through `self`.
        unsafe {
            to_result(bindings::kho_block_set_grow(bs, count))?;
            bindings::kho_block_set_shrink(bs, count);
            bindings::kho_block_set_clear(bs);
        }
        let mut it = core::mem::MaybeUninit::<bindings::kho_block_set_it>::uninit();
        // SAFETY: `it` is initialised by `kho_block_set_it_init()` for this set.
        unsafe { bindings::kho_block_set_it_init(it.as_mut_ptr(), bs) };
        for entry in entries {
            // SAFETY: `it` is initialised; the set has room for `count` entries, so every
            // reservation succeeds.
            let slot = unsafe { bindings::kho_block_set_it_reserve_entry(it.as_mut_ptr()) };
            let slot = NonNull::new(slot).ok_or(ENOSPC)?;
            // SAFETY: `slot` points to `size_of::<E>()` bytes inside a block we own; the write is
            // unaligned because entries follow a 16-byte header and may be packed.
            unsafe { slot.cast::<E>().as_ptr().write_unaligned(*entry) };
        }
        Ok(())
    }

    /// Copies every entry out, in order.
    pub fn read_all(&self) -> Result<KVec<E>> {
        let bs = self.inner.get();
        let mut out = KVec::new();
        let mut it = core::mem::MaybeUninit::<bindings::kho_block_set_it>::uninit();
        // SAFETY: `bs` is initialised; the iterator only reads through it.
        unsafe { bindings::kho_block_set_it_init(it.as_mut_ptr(), bs) };
        loop {
            // SAFETY: `it` is initialised for this set.
            let entry = unsafe { bindings::kho_block_set_it_read_entry(it.as_mut_ptr()) };
            if entry.is_null() {
                return Ok(out);
            }
            // SAFETY: `entry` points to `size_of::<E>()` bytes of a block of this set, and any
            // bit pattern is a valid `E` (`FromBytes`).
            out.push(unsafe { entry.cast::<E>().read_unaligned() }, GFP_KERNEL)?;
        }
    }
}

#[pinned_drop]
impl<E> PinnedDrop for KhoBlockSet<E> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `inner` is initialised; destroying frees (and unpreserves or restores) every
        // block it owns.
        unsafe { bindings::kho_block_set_destroy(self.inner.get()) };
    }
}

#[cfg(CONFIG_RUST_LIVEUPDATE_KUNIT_TEST)]
#[kunit_tests(rust_kernel_kho)]
mod tests {
    use super::*;

    #[test]
    fn alloc_preserve_gives_zeroed_page_aligned_memory() -> Result {
        let mut mem = KhoMem::alloc_preserve(100)?;
        assert_eq!(mem.size(), PAGE_SIZE);
        assert_eq!(mem.phys() % PAGE_SIZE as u64, 0);
        assert!(mem.as_bytes().iter().all(|&b| b == 0));
        *mem.view_mut::<u64>(8)? = 0x1122_3344_5566_7788;
        assert_eq!(*mem.view::<u64>(8)?, 0x1122_3344_5566_7788);
        assert_eq!(mem.as_bytes()[8], 0x88);
        Ok(())
    }

    #[test]
    fn sizes_round_up_to_a_power_of_two_of_pages() -> Result {
        assert_eq!(KhoMem::alloc_preserve(PAGE_SIZE + 1)?.size(), 2 * PAGE_SIZE);
        assert_eq!(KhoMem::alloc_preserve(3 * PAGE_SIZE)?.size(), 4 * PAGE_SIZE);
        Ok(())
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert_eq!(KhoMem::alloc_preserve(0).err(), Some(EINVAL));
        assert_eq!(KhoMem::alloc_preserve(1 << 40).err(), Some(E2BIG));
        assert_eq!(KhoMem::alloc_preserve(usize::MAX).err(), Some(E2BIG));
    }

    #[test]
    fn views_reject_what_does_not_fit() -> Result {
        let mut mem = KhoMem::alloc_preserve(PAGE_SIZE)?;
        let size = mem.size();
        assert!(mem.view::<u64>(size - 8).is_ok());
        assert_eq!(mem.view::<u64>(size - 4).err(), Some(EINVAL));
        assert_eq!(mem.view::<u32>(1).err(), Some(EINVAL));
        assert_eq!(mem.view::<u8>(size).err(), Some(EINVAL));
        assert_eq!(mem.view::<u8>(usize::MAX).err(), Some(EINVAL));
        assert_eq!(mem.view_mut::<u64>(size).err(), Some(EINVAL));
        Ok(())
    }

    /// Addresses a corrupt record could hold; none starts memory handed over to this kernel.
    fn not_handed_over() -> Result<[u64; 5]> {
        // Preserved, but by this kernel for the next one.
        let outgoing = KhoMem::alloc_preserve(PAGE_SIZE)?;
        Ok([
            0,
            PAGE_SIZE as u64 + 8,
            outgoing.phys(),
            outgoing.phys() + 8,
            1 << 52,
        ])
    }

    // KHO warns when asked to restore such an address; the runner fails a warning.
    #[test]
    fn restore_refuses_what_was_not_handed_over_quietly() -> Result {
        for phys in not_handed_over()? {
            assert_eq!(KhoMem::restore(phys).err(), Some(EINVAL));
        }
        Ok(())
    }

    #[test]
    fn block_chains_outside_handed_over_memory_are_refused() -> Result {
        assert!(KhoBlockSet::<u64>::read_incoming(0).is_ok_and(|e| e.is_empty()));
        for phys in not_handed_over()?.into_iter().skip(1) {
            assert_eq!(
                KhoBlockSet::<u64>::read_incoming(phys).err(),
                Some(BlockChainError::NotPreserved { block: 0 })
            );
        }
        Ok(())
    }

    #[test]
    fn block_set_grows_shrinks_and_keeps_order() -> Result {
        let set = KBox::pin_init(KhoBlockSet::<u64>::new(), GFP_KERNEL)?;
        let mut set = set;
        assert_eq!(set.head_phys(), 0);
        let per_block = KhoBlockSet::<u64>::ENTRIES_PER_BLOCK;
        let mut many = KVec::new();
        for i in 0..(per_block * 2 + 3) as u64 {
            many.push(i * 3, GFP_KERNEL)?;
        }
        set.as_mut().write_all(&many)?;
        assert_ne!(set.head_phys(), 0);
        assert_eq!(&set.read_all()?[..], &many[..]);
        set.as_mut().write_all(&many[..5])?;
        assert_eq!(&set.read_all()?[..], &many[..5]);
        set.as_mut().write_all(&[])?;
        assert!(set.read_all()?.is_empty());
        Ok(())
    }
}
