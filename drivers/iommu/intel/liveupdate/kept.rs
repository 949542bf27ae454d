// SPDX-License-Identifier: GPL-2.0

//! Whether physical memory is kept for the next kernel, that is preserved through KHO.
//!
//! A device whose IOMMU translation continues across the kexec may only reach memory that the
//! next kernel leaves alone: memory preserved through KHO (guest memory in a memfd that LUO
//! keeps, the handed-over tables themselves). KHO records preservations as naturally aligned
//! chunks of 2^order pages, so the chunk holding an address, if any, starts at that address
//! rounded down to the chunk's size, for one of the orders. Both kernels answer "does a
//! preservation of this order start here", each from its own view of KHO
//! ([`Preservations`]); this file turns that into answers about ranges.
//!
//! Only `core` is used, so the host tests (`tools/liveupdate-core`) compile this file too.

/// Size of a page, and the granule of every preservation.
pub const PAGE_SHIFT: u32 = 12;

/// Largest order looked for: a chunk of 2^40 pages spans a 52-bit physical address space,
/// the most any x86 CPU or VT-d unit addresses.
pub const MAX_ORDER: u32 = 40;

/// One kernel's view of what is preserved through KHO.
pub trait Preservations {
    /// Whether a preservation of 2^`order` pages starts at `phys`, which is aligned to it.
    fn starts_at(&self, phys: u64, order: u32) -> bool;
}

/// A preserved chunk of memory: `[start, start + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First byte.
    pub start: u64,
    /// Bytes, a power of two of at least a page.
    pub size: u64,
}

impl Chunk {
    /// Whether `phys` lies in the chunk.
    pub fn contains(&self, phys: u64) -> bool {
        phys >= self.start && phys - self.start < self.size
    }
}

/// The preserved chunk holding `phys`, if any.
pub fn chunk_at(preserved: &impl Preservations, phys: u64) -> Option<Chunk> {
    (0..=MAX_ORDER).find_map(|order| {
        let size = 1u64 << (PAGE_SHIFT + order);
        let start = phys & !(size - 1);
        preserved
            .starts_at(start, order)
            .then_some(Chunk { start, size })
    })
}

/// Answers range questions, remembering the last chunk found: the leaves of a page table
/// usually walk a preserved folio page by page, and each is then answered without a lookup.
pub struct KeptMemory<'a, P: Preservations> {
    preserved: &'a P,
    last: Option<Chunk>,
}

impl<'a, P: Preservations> KeptMemory<'a, P> {
    /// Answers from `preserved`.
    pub fn new(preserved: &'a P) -> Self {
        Self {
            preserved,
            last: None,
        }
    }

    /// The first byte of `[phys, phys + len)` that is not kept, or `None` when all are.
    pub fn first_not_kept(&mut self, phys: u64, len: u64) -> Option<u64> {
        let Some(end) = phys.checked_add(len) else {
            return Some(phys);
        };
        let mut at = phys;
        while at < end {
            let chunk = match self.last {
                Some(chunk) if chunk.contains(at) => chunk,
                _ => {
                    let Some(chunk) = chunk_at(self.preserved, at) else {
                        return Some(at);
                    };
                    self.last = Some(chunk);
                    chunk
                }
            };
            // A chunk may end at the top of the address space.
            match chunk.start.checked_add(chunk.size) {
                Some(next) => at = next,
                None => return None,
            }
        }
        None
    }

    /// Whether all of `[phys, phys + len)` is kept.
    pub fn is_kept(&mut self, phys: u64, len: u64) -> bool {
        self.first_not_kept(phys, len).is_none()
    }
}
