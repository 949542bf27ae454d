// SPDX-License-Identifier: GPL-2.0

//! The VT-d translation structures handed over for kept devices, in legacy (non-scalable) mode.
//!
//! The outgoing kernel does not hand over the tables it translates with: the VMM may still
//! change them until the kexec, and they translate devices that are not kept. It builds
//! handover tables instead ([`build_unit`]): a root table, a context table for each bus with a
//! kept device, holding the context entries of the kept devices only, and a copy of each kept
//! domain's second-level page tables, every mapping of which must point at kept memory
//! ([`super::kept`]). At the kexec the unit switches to them without ever turning translation
//! off: kept devices go on translating through the copies, every other device is blocked.
//!
//! The next kernel finds the hardware translating through tables it did not write. Before it
//! adopts them it checks them whole ([`validate_unit`]): every page reached is a handed-over
//! page, reached once; every entry is one the outgoing kernel could have written, for exactly
//! the devices the record names; every mapping points at kept memory. Anything else rejects
//! the tables, and the devices take the safe path instead.
//!
//! Only `core` is used, so the host tests (`tools/liveupdate-core`) compile this file too.

use super::kept::{KeptMemory, Preservations};

/// Entries in a root, context or page table page.
pub const ENTRIES: usize = 512;
/// Root entries (one per bus) or context entries (one per devfn): 128 bits each.
const WIDE_ENTRIES: usize = 256;

/// A present root, context or page table entry.
const PRESENT: u64 = 1 << 0;
/// Second-level entry: read permitted.
pub const SL_READ: u64 = 1 << 0;
/// Second-level entry: write permitted.
pub const SL_WRITE: u64 = 1 << 1;
/// Second-level entry: a superpage leaf (levels 2 and 3 only).
pub const SL_SUPERPAGE: u64 = 1 << 7;
/// Second-level entry: snoop behaviour of the access.
pub const SL_SNOOP: u64 = 1 << 11;
/// Second-level entry: the address of the next table or of the leaf.
pub const SL_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
/// The bits of a second-level leaf that are copied; the others (accessed, dirty, ignored,
/// software bits) are not handed over.
const SL_LEAF_BITS: u64 = SL_READ | SL_WRITE | SL_SUPERPAGE | SL_SNOOP | SL_ADDRESS;

/// Context entry, low half: the translation type field.
const CTX_TT_SHIFT: u32 = 2;
const CTX_TT_MASK: u64 = 3 << CTX_TT_SHIFT;
/// Translation types: through the second-level tables, with or without a device TLB, or
/// pass-through (untranslated, never handed over).
const CTX_TT_MULTI_LEVEL: u64 = 0;
const CTX_TT_DEVICE_TLB: u64 = 1;
const CTX_TT_PASS_THROUGH: u64 = 2;
/// Context entry, low half: the second-level page table pointer.
const CTX_SLPTPTR: u64 = 0xffff_ffff_ffff_f000;
/// Context entry, high half: the address width field.
const CTX_AW_MASK: u64 = 7;
/// Context entry, high half: the domain id field.
const CTX_DID_SHIFT: u32 = 8;
const CTX_DID_MASK: u64 = 0xffff << CTX_DID_SHIFT;
/// Root entry, low half: the context table pointer.
const ROOT_CTP: u64 = 0xffff_ffff_ffff_f000;

/// Page table levels handed over: 3 (39-bit), 4 (48-bit) or 5 (57-bit).
pub const MIN_LEVELS: u8 = 3;
/// See [`MIN_LEVELS`].
pub const MAX_LEVELS: u8 = 5;

/// One kept device as the handover tables translate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptDevice {
    /// Bus number in bits 15:8, device and function in 7:0.
    pub bdf: u16,
    /// The domain id its context entry carries, reserved in the next kernel until adopted.
    pub domain_id: u16,
    /// Page table levels.
    pub levels: u8,
    /// The device caches translations in a device TLB (ATS).
    pub device_tlb: bool,
    /// Physical address of the top page table page.
    pub pgtable: u64,
}

impl KeptDevice {
    /// Its context entry, as the handover tables hold it.
    pub fn context_entry(&self) -> [u64; 2] {
        let tt = if self.device_tlb {
            CTX_TT_DEVICE_TLB
        } else {
            CTX_TT_MULTI_LEVEL
        };
        let lo = self.pgtable | tt << CTX_TT_SHIFT | PRESENT;
        let hi = u64::from(self.domain_id) << CTX_DID_SHIFT | u64::from(self.levels - 2);
        [lo, hi]
    }

    /// The device kept by the live context entry `context` at `bdf`, before its page tables
    /// are copied (`pgtable` is still the live one).
    pub fn from_live(bdf: u16, context: [u64; 2]) -> Result<Self, BuildError> {
        let [lo, hi] = context;
        if lo & PRESENT == 0 {
            return Err(BuildError::NotTranslated(bdf));
        }
        let device_tlb = match (lo & CTX_TT_MASK) >> CTX_TT_SHIFT {
            CTX_TT_MULTI_LEVEL => false,
            CTX_TT_DEVICE_TLB => true,
            CTX_TT_PASS_THROUGH => return Err(BuildError::PassThrough(bdf)),
            _ => return Err(BuildError::Malformed(bdf)),
        };
        let levels = (hi & CTX_AW_MASK) as u8 + 2;
        if !(MIN_LEVELS..=MAX_LEVELS).contains(&levels) {
            return Err(BuildError::Malformed(bdf));
        }
        Ok(Self {
            bdf,
            domain_id: ((hi & CTX_DID_MASK) >> CTX_DID_SHIFT) as u16,
            levels,
            device_tlb,
            pgtable: lo & CTX_SLPTPTR,
        })
    }
}

/// The bits a leaf at `level` may have: the superpage bit means something at levels 2 and 3.
fn leaf_bits(level: u8) -> u64 {
    if level == 1 {
        SL_LEAF_BITS & !SL_SUPERPAGE
    } else {
        SL_LEAF_BITS
    }
}

/// Bytes one entry maps at `level` (1 maps pages).
fn level_size(level: u8) -> u64 {
    1u64 << (12 + 9 * (u32::from(level) - 1))
}

/// Reads table pages of the kernel that wrote them.
pub trait TableMemory {
    /// Entry `index` (of [`ENTRIES`]) of the table page at `page`, or `None` when `page` is not
    /// a page this reader may read.
    fn entry(&self, page: u64, index: usize) -> Option<u64>;
}

/// Writes the handover tables.
pub trait NewTables {
    /// Names a page this writer handed out.
    type Page: Copy;
    /// A new page of zeros and its physical address; `None` when out of memory.
    fn alloc(&mut self) -> Option<(Self::Page, u64)>;
    /// Sets entry `index` of `page`.
    fn set(&mut self, page: Self::Page, index: usize, entry: u64);
}

/// New table pages that are only counted: [`build_unit`] on it says whether, and with how
/// many pages, the tables could be built, and writes nothing.
#[derive(Default)]
pub struct DryRun {
    /// The pages the build asked for.
    pub pages: usize,
}

impl NewTables for DryRun {
    type Page = ();

    fn alloc(&mut self) -> Option<((), u64)> {
        self.pages += 1;
        // An address no two pages share; nothing is written there.
        Some(((), (self.pages as u64) << 12))
    }

    fn set(&mut self, _page: (), _index: usize, _entry: u64) {}
}

/// A mapping of `size` bytes at `iova` of the device `bdf` to `phys`, not all of which is
/// kept memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unkept {
    /// The device.
    pub bdf: u16,
    /// The I/O virtual address of the mapping.
    pub iova: u64,
    /// Where it points.
    pub phys: u64,
    /// How many bytes it maps.
    pub size: u64,
}

impl core::fmt::Display for Unkept {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}: IOVA {:#x} maps {:#x} bytes at {:#x}, memory that is not kept",
            DisplayBdf(self.bdf),
            self.iova,
            self.size,
            self.phys
        )
    }
}

/// Why the handover tables of a unit could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The device's DMA is not translated (no context entry): nothing to hand over.
    NotTranslated(u16),
    /// The device's DMA is passed through untranslated: it could reach any memory.
    PassThrough(u16),
    /// The device's context entry or page tables hold what VT-d does not allow.
    Malformed(u16),
    /// A table page of the device's translation could not be read.
    Unreadable(u16),
    /// Two kept devices carry one domain id with different page tables.
    DomainMismatch(u16),
    /// The device's domain maps nothing: it does no DMA, and its bus mastering may as well
    /// be cleared.
    NothingMapped(u16),
    /// A mapping of the device points at memory that is not kept.
    NotKept(Unkept),
    /// No memory for a new table page.
    OutOfMemory,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::NotTranslated(b) => {
                write!(f, "{}: DMA not translated by the IOMMU", DisplayBdf(*b))
            }
            BuildError::PassThrough(b) => {
                write!(f, "{}: DMA passed through untranslated", DisplayBdf(*b))
            }
            BuildError::Malformed(b) => write!(
                f,
                "{}: translation structures VT-d does not allow",
                DisplayBdf(*b)
            ),
            BuildError::Unreadable(b) => {
                write!(f, "{}: a page table page cannot be read", DisplayBdf(*b))
            }
            BuildError::DomainMismatch(b) => write!(
                f,
                "{}: its domain id names other page tables",
                DisplayBdf(*b)
            ),
            BuildError::NothingMapped(b) => {
                write!(f, "{}: its domain maps nothing", DisplayBdf(*b))
            }
            BuildError::NotKept(mapping) => mapping.fmt(f),
            BuildError::OutOfMemory => write!(f, "out of memory for the handover tables"),
        }
    }
}

/// Builds the handover tables of one unit for the kept devices in `devices`, each given by
/// [`KeptDevice::from_live`], so with its live page tables. On success the devices are sorted
/// by BDF, each `pgtable` is its copy's, and the root table's address is returned. Every page
/// written comes from `new`; on error the caller frees those it handed out.
pub fn build_unit(
    devices: &mut [KeptDevice],
    live: &impl TableMemory,
    new: &mut impl NewTables,
    kept: &mut KeptMemory<'_, impl Preservations>,
) -> Result<u64, BuildError> {
    devices.sort_unstable_by_key(|d| d.bdf);
    for (i, dev) in devices.iter().enumerate() {
        for other in &devices[..i] {
            if other.bdf == dev.bdf {
                return Err(BuildError::Malformed(dev.bdf));
            }
            // A domain id names one domain: one set of page tables, of one depth.
            let same_domain = other.domain_id == dev.domain_id;
            let same_tables = other.pgtable == dev.pgtable && other.levels == dev.levels;
            if same_domain != same_tables {
                return Err(BuildError::DomainMismatch(dev.bdf));
            }
        }
    }
    let (root, root_phys) = new.alloc().ok_or(BuildError::OutOfMemory)?;
    let mut context = None;
    for i in 0..devices.len() {
        let dev = devices[i];
        // Devices of one domain share its copy, made for the first of them.
        let pgtable = match devices[..i].iter().find(|d| d.domain_id == dev.domain_id) {
            Some(first) => first.pgtable,
            None => {
                let (copy, phys) = new.alloc().ok_or(BuildError::OutOfMemory)?;
                if copy_table(dev.bdf, dev.pgtable, copy, dev.levels, 0, live, new, kept)? == 0 {
                    return Err(BuildError::NothingMapped(dev.bdf));
                }
                phys
            }
        };
        let bus = dev.bdf >> 8;
        let table = match context {
            Some((b, table)) if b == bus => table,
            _ => {
                let (table, phys) = new.alloc().ok_or(BuildError::OutOfMemory)?;
                new.set(root, usize::from(bus) * 2, phys | PRESENT);
                context = Some((bus, table));
                table
            }
        };
        devices[i].pgtable = pgtable;
        let [lo, hi] = devices[i].context_entry();
        let devfn = usize::from(dev.bdf & 0xff);
        new.set(table, devfn * 2, lo);
        new.set(table, devfn * 2 + 1, hi);
    }
    Ok(root_phys)
}

/// Copies the live table page `from` at `level` into the new page `to`; `base` is the IOVA
/// the page starts at. The number of mappings copied.
#[allow(clippy::too_many_arguments)]
fn copy_table<N: NewTables>(
    bdf: u16,
    from: u64,
    to: N::Page,
    level: u8,
    base: u64,
    live: &impl TableMemory,
    new: &mut N,
    kept: &mut KeptMemory<'_, impl Preservations>,
) -> Result<usize, BuildError> {
    let size = level_size(level);
    let mut mappings = 0;
    for index in 0..ENTRIES {
        let entry = live.entry(from, index).ok_or(BuildError::Unreadable(bdf))?;
        if entry & (SL_READ | SL_WRITE) == 0 {
            continue;
        }
        let iova = base + index as u64 * size;
        let addr = entry & SL_ADDRESS;
        if level == 1 || entry & SL_SUPERPAGE != 0 {
            if level > 3 || addr & (size - 1) != 0 {
                return Err(BuildError::Malformed(bdf));
            }
            if !kept.is_kept(addr, size) {
                return Err(BuildError::NotKept(Unkept {
                    bdf,
                    iova,
                    phys: addr,
                    size,
                }));
            }
            new.set(to, index, entry & leaf_bits(level));
            mappings += 1;
        } else {
            let (child, phys) = new.alloc().ok_or(BuildError::OutOfMemory)?;
            new.set(to, index, phys | SL_READ | SL_WRITE);
            mappings += copy_table(bdf, addr, child, level - 1, iova, live, new, kept)?;
        }
    }
    Ok(mappings)
}

/// Why handed-over tables were rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A table page is reached that the record does not list as handed over.
    NotHandedOver(u64),
    /// A table page is reached twice.
    ReachedTwice(u64),
    /// The root entry of this bus is not the one the kept devices need.
    RootEntry(u16),
    /// The context entry of this device is not the one the record gives, or is there for a
    /// device the record does not keep.
    ContextEntry(u16),
    /// A page table entry of this device's, mapping `iova`, holds what the outgoing kernel
    /// never writes.
    PageTableEntry {
        /// The device.
        bdf: u16,
        /// The first I/O virtual address the entry maps.
        iova: u64,
    },
    /// A mapping of the device points at memory that is not kept.
    NotKept(Unkept),
    /// A page the record lists is not reached from the tables.
    Unreached(u64),
    /// The list of pages is not in ascending order, or lists an address that is no page.
    PageList,
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let dev = |b: &u16| DisplayBdf(*b);
        match self {
            Invalid::NotHandedOver(p) => write!(f, "table page {p:#x} not handed over"),
            Invalid::ReachedTwice(p) => write!(f, "table page {p:#x} reached twice"),
            Invalid::RootEntry(bus) => write!(f, "root entry of bus {bus:02x} not as kept"),
            Invalid::ContextEntry(b) => write!(f, "context entry of {} not as kept", dev(b)),
            Invalid::PageTableEntry { bdf, iova } => {
                write!(f, "{}: bad page table entry at IOVA {iova:#x}", dev(bdf))
            }
            Invalid::NotKept(mapping) => mapping.fmt(f),
            Invalid::Unreached(p) => write!(f, "table page {p:#x} handed over but not in use"),
            Invalid::PageList => write!(f, "list of table pages out of order"),
        }
    }
}

/// Formats a bus/device/function number the way the PCI core names devices.
pub struct DisplayBdf(pub u16);

impl core::fmt::Display for DisplayBdf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}.{}", b >> 8, (b >> 3) & 0x1f, b & 7)
    }
}

/// The handed-over table pages, each to be reached exactly once.
pub struct HandedOver<'a> {
    pages: &'a [u64],
    reached: &'a mut [bool],
}

impl<'a> HandedOver<'a> {
    /// The pages at `pages`, listed in ascending order as the record lists them; `reached`
    /// has one flag per page: all false at first, as the previous unit's validation left
    /// them for the next unit.
    pub fn new(pages: &'a [u64], reached: &'a mut [bool]) -> Result<Self, Invalid> {
        let ascending = pages.windows(2).all(|w| w[0] < w[1]);
        let aligned = pages.iter().all(|p| *p != 0 && p & 0xfff == 0);
        if !ascending || !aligned || reached.len() != pages.len() {
            return Err(Invalid::PageList);
        }
        Ok(Self { pages, reached })
    }

    fn reach(&mut self, page: u64) -> Result<(), Invalid> {
        let index = self
            .pages
            .binary_search(&page)
            .map_err(|_| Invalid::NotHandedOver(page))?;
        let reached = self
            .reached
            .get_mut(index)
            .ok_or(Invalid::NotHandedOver(page))?;
        if *reached {
            return Err(Invalid::ReachedTwice(page));
        }
        *reached = true;
        Ok(())
    }

    /// After every unit was validated: the first page listed but never reached.
    pub fn unreached(&self) -> Option<u64> {
        self.pages
            .iter()
            .zip(self.reached.iter())
            .find(|(_, reached)| !**reached)
            .map(|(page, _)| *page)
    }
}

/// Validates the handover tables of one unit, rooted at `root`, against the kept devices the
/// record gives for it. `memory` reads the pages in `pages`, which the caller checked are
/// pages preserved for this kernel.
pub fn validate_unit(
    root: u64,
    devices: &[KeptDevice],
    memory: &impl TableMemory,
    pages: &mut HandedOver<'_>,
    kept: &mut KeptMemory<'_, impl Preservations>,
) -> Result<(), Invalid> {
    let read = |page: u64, index: usize| {
        memory
            .entry(page, index)
            .ok_or(Invalid::NotHandedOver(page))
    };
    pages.reach(root)?;
    for bus in 0..WIDE_ENTRIES as u16 {
        let lo = read(root, usize::from(bus) * 2)?;
        let hi = read(root, usize::from(bus) * 2 + 1)?;
        let wanted = devices.iter().any(|d| d.bdf >> 8 == bus);
        if hi != 0 || (lo != 0) != wanted || lo & !(ROOT_CTP | PRESENT) != 0 {
            return Err(Invalid::RootEntry(bus));
        }
        if !wanted {
            continue;
        }
        if lo & PRESENT == 0 {
            return Err(Invalid::RootEntry(bus));
        }
        let table = lo & ROOT_CTP;
        pages.reach(table)?;
        for devfn in 0..WIDE_ENTRIES as u16 {
            let bdf = bus << 8 | devfn;
            let entry = [
                read(table, usize::from(devfn) * 2)?,
                read(table, usize::from(devfn) * 2 + 1)?,
            ];
            let wanted = match devices.iter().find(|d| d.bdf == bdf) {
                Some(dev) if (MIN_LEVELS..=MAX_LEVELS).contains(&dev.levels) => dev.context_entry(),
                Some(_) => return Err(Invalid::ContextEntry(bdf)),
                None => [0, 0],
            };
            if entry != wanted {
                return Err(Invalid::ContextEntry(bdf));
            }
        }
    }
    for (i, dev) in devices.iter().enumerate() {
        // One domain, one set of tables, walked once.
        match devices[..i]
            .iter()
            .find(|d| d.domain_id == dev.domain_id || d.pgtable == dev.pgtable)
        {
            Some(d) if d.domain_id == dev.domain_id && d.pgtable == dev.pgtable => continue,
            Some(_) => return Err(Invalid::ContextEntry(dev.bdf)),
            None => {}
        }
        pages.reach(dev.pgtable)?;
        validate_table(dev.bdf, dev.pgtable, dev.levels, 0, memory, pages, kept)?;
    }
    Ok(())
}

fn validate_table(
    bdf: u16,
    page: u64,
    level: u8,
    base: u64,
    memory: &impl TableMemory,
    pages: &mut HandedOver<'_>,
    kept: &mut KeptMemory<'_, impl Preservations>,
) -> Result<(), Invalid> {
    let size = level_size(level);
    for index in 0..ENTRIES {
        let entry = memory
            .entry(page, index)
            .ok_or(Invalid::NotHandedOver(page))?;
        if entry == 0 {
            continue;
        }
        let iova = base + index as u64 * size;
        let bad = Invalid::PageTableEntry { bdf, iova };
        let addr = entry & SL_ADDRESS;
        if entry & (SL_READ | SL_WRITE) == 0 {
            return Err(bad);
        }
        if level == 1 || entry & SL_SUPERPAGE != 0 {
            if level > 3 || entry & !leaf_bits(level) != 0 || addr & (size - 1) != 0 {
                return Err(bad);
            }
            if !kept.is_kept(addr, size) {
                return Err(Invalid::NotKept(Unkept {
                    bdf,
                    iova,
                    phys: addr,
                    size,
                }));
            }
        } else {
            if entry != addr | SL_READ | SL_WRITE {
                return Err(bad);
            }
            pages.reach(addr)?;
            validate_table(bdf, addr, level - 1, iova, memory, pages, kept)?;
        }
    }
    Ok(())
}
