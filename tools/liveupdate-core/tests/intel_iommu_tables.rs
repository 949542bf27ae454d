// SPDX-License-Identifier: GPL-2.0
//! Tests of the VT-d handover tables: kept memory, building them from live tables, and
//! validating what another kernel handed over, corrupted or not.

use std::collections::{BTreeMap, BTreeSet};

use liveupdate_core::intel_iommu::kept::{chunk_at, Chunk, KeptMemory, Preservations};
use liveupdate_core::intel_iommu::tables::{
    build_unit, validate_unit, BuildError, DryRun, HandedOver, Invalid, KeptDevice, NewTables,
    TableMemory, Unkept, ENTRIES, SL_ADDRESS, SL_READ, SL_SNOOP, SL_SUPERPAGE, SL_WRITE,
};
use proptest::prelude::*;

const PAGE: u64 = 4096;
const MIB2: u64 = 2 << 20;

/// Preservations as a set of (start, order).
#[derive(Default)]
struct Preserved(BTreeSet<(u64, u32)>);

impl Preservations for Preserved {
    fn starts_at(&self, phys: u64, order: u32) -> bool {
        self.0.contains(&(phys, order))
    }
}

/// Physical memory holding table pages, with a bump allocator for new ones.
struct Memory {
    pages: BTreeMap<u64, [u64; ENTRIES]>,
    next: u64,
}

impl Memory {
    fn new(first: u64) -> Self {
        Memory {
            pages: BTreeMap::new(),
            next: first,
        }
    }
}

impl TableMemory for Memory {
    fn entry(&self, page: u64, index: usize) -> Option<u64> {
        self.pages.get(&page).map(|p| p[index])
    }
}

impl NewTables for Memory {
    type Page = u64;

    fn alloc(&mut self) -> Option<(u64, u64)> {
        let page = self.next;
        self.next += PAGE;
        self.pages.insert(page, [0; ENTRIES]);
        Some((page, page))
    }

    fn set(&mut self, page: u64, index: usize, entry: u64) {
        self.pages.get_mut(&page).unwrap()[index] = entry;
    }
}

/// A live 4-level domain built the way the kernel's page table code would.
struct LiveDomain {
    top: u64,
}

impl LiveDomain {
    fn new(mem: &mut Memory) -> Self {
        LiveDomain {
            top: mem.alloc().unwrap().0,
        }
    }

    /// Maps `size` (4 KiB or 2 MiB) at `iova` to `phys`, with the accessed and software bits
    /// the live tables carry and the handover does not.
    fn map(&self, mem: &mut Memory, iova: u64, phys: u64, size: u64) {
        let leaf_level = if size == MIB2 { 2 } else { 1 };
        let mut page = self.top;
        for level in (leaf_level + 1..=4u32).rev() {
            let index = ((iova >> (12 + 9 * (level - 1))) & 511) as usize;
            let entry = mem.entry(page, index).unwrap();
            page = if entry & SL_ADDRESS != 0 {
                entry & SL_ADDRESS
            } else {
                let child = mem.alloc().unwrap().0;
                mem.set(page, index, child | SL_READ | SL_WRITE | 1 << 8);
                child
            };
        }
        let index = ((iova >> (12 + 9 * (leaf_level - 1))) & 511) as usize;
        let ps = if leaf_level == 2 { SL_SUPERPAGE } else { 0 };
        let entry = phys | SL_READ | SL_WRITE | SL_SNOOP | ps | 1 << 8 | 1 << 9 | 1 << 52;
        mem.set(page, index, entry);
    }
}

/// A live context entry: translated by `top`, 4 levels, domain `did`.
fn live_context(top: u64, did: u16, tt: u64) -> [u64; 2] {
    [top | tt << 2 | 1, u64::from(did) << 8 | 2]
}

/// The scene of most tests: guest memory of 16 pages at 1 GiB and one 2 MiB superpage at
/// 2 GiB, all preserved; a domain 1 mapping them for 00:03.0 and 00:03.1 (one IOMMU group)
/// and a domain 2 mapping one page for 02:00.0.
struct Scene {
    live: Memory,
    preserved: Preserved,
    devices: Vec<KeptDevice>,
}

const GUEST: u64 = 1 << 30;
const HUGE: u64 = 2 << 30;

fn scene() -> Scene {
    let mut live = Memory::new(0x10_0000);
    let mut preserved = Preserved::default();
    preserved.0.insert((GUEST, 4)); // 16 pages
    preserved.0.insert((HUGE, 9)); // 2 MiB
    let d1 = LiveDomain::new(&mut live);
    for i in 0..16 {
        d1.map(&mut live, 0x10_0000 + i * PAGE, GUEST + i * PAGE, PAGE);
    }
    d1.map(&mut live, 0x4000_0000, HUGE, MIB2);
    let d2 = LiveDomain::new(&mut live);
    d2.map(&mut live, 0xfee0_0000 - PAGE, GUEST + 3 * PAGE, PAGE);
    let devices = [
        (0x0219, live_context(d1.top, 1, 0)),
        (0x0018, live_context(d1.top, 1, 0)),
        (0x0200, live_context(d2.top, 2, 0)),
    ]
    .iter()
    .map(|(bdf, ctx)| KeptDevice::from_live(*bdf, *ctx).unwrap())
    .collect();
    Scene {
        live,
        preserved,
        devices,
    }
}

/// Builds the handover tables of `scene` into memory of their own.
fn build(scene: &mut Scene) -> Result<(u64, Memory), BuildError> {
    let mut new = Memory::new(0x8000_0000);
    let mut kept = KeptMemory::new(&scene.preserved);
    let root = build_unit(&mut scene.devices, &scene.live, &mut new, &mut kept)?;
    Ok((root, new))
}

/// Validates handed-over tables, every page of `new` listed.
fn validate(
    root: u64,
    devices: &[KeptDevice],
    new: &Memory,
    preserved: &Preserved,
) -> Result<(), Invalid> {
    let pages: Vec<u64> = new.pages.keys().copied().collect();
    let mut reached = vec![false; pages.len()];
    let mut handed = HandedOver::new(&pages, &mut reached)?;
    let mut kept = KeptMemory::new(preserved);
    validate_unit(root, devices, new, &mut handed, &mut kept)?;
    match handed.unreached() {
        Some(page) => Err(Invalid::Unreached(page)),
        None => Ok(()),
    }
}

#[test]
fn chunks_are_found_at_every_order() {
    let mut p = Preserved::default();
    p.0.insert((0x20_0000, 9));
    p.0.insert((0x1000, 0));
    assert_eq!(
        chunk_at(&p, 0x20_0000 + 0x1234),
        Some(Chunk {
            start: 0x20_0000,
            size: MIB2
        })
    );
    assert_eq!(
        chunk_at(&p, 0x1fff),
        Some(Chunk {
            start: 0x1000,
            size: PAGE
        })
    );
    assert_eq!(chunk_at(&p, 0x2000), None);
    assert_eq!(chunk_at(&p, 0x40_0000), None);
}

#[test]
fn ranges_are_kept_only_when_every_byte_is() {
    let mut p = Preserved::default();
    p.0.insert((0x1000, 0));
    p.0.insert((0x2000, 1)); // 0x2000..0x4000
    p.0.insert((0x8000, 0));
    let mut kept = KeptMemory::new(&p);
    assert!(kept.is_kept(0x1000, 0x3000));
    assert_eq!(kept.first_not_kept(0x1000, 0x4000), Some(0x4000));
    assert_eq!(kept.first_not_kept(0x0, 0x2000), Some(0x0));
    assert!(kept.is_kept(0x8000, PAGE));
    assert_eq!(kept.first_not_kept(0x8000, 2 * PAGE), Some(0x9000));
    assert_eq!(
        kept.first_not_kept(u64::MAX - 0xfff, 0x2000),
        Some(u64::MAX - 0xfff)
    );
}

#[test]
fn handover_tables_validate_in_the_next_kernel() {
    let mut s = scene();
    let (root, new) = build(&mut s).unwrap();
    // Sorted by BDF; one copy of domain 1 for both of its devices.
    let bdfs: Vec<u16> = s.devices.iter().map(|d| d.bdf).collect();
    assert_eq!(bdfs, [0x0018, 0x0200, 0x0219]);
    assert_eq!(s.devices[0].pgtable, s.devices[2].pgtable);
    assert_ne!(s.devices[0].pgtable, s.devices[1].pgtable);
    // Root, two context tables (buses 0 and 2); domain 1: levels 4 and 3, the level-2 and
    // level-1 tables of its pages, the level-2 table of its superpage; domain 2: 4 levels.
    assert_eq!(new.pages.len(), 1 + 2 + 5 + 4);
    validate(root, &s.devices, &new, &s.preserved).unwrap();
}

#[test]
fn copies_carry_only_the_bits_the_hardware_needs() {
    let mut s = scene();
    let (root, new) = build(&mut s).unwrap();
    // Walk domain 2's copy to its only leaf.
    let mut page = s.devices[1].pgtable;
    let iova = 0xfee0_0000u64 - PAGE;
    for level in (2..=4u32).rev() {
        let entry = new
            .entry(page, ((iova >> (12 + 9 * (level - 1))) & 511) as usize)
            .unwrap();
        assert_eq!(entry & !SL_ADDRESS, SL_READ | SL_WRITE);
        page = entry & SL_ADDRESS;
    }
    let leaf = new.entry(page, ((iova >> 12) & 511) as usize).unwrap();
    assert_eq!(leaf, (GUEST + 3 * PAGE) | SL_READ | SL_WRITE | SL_SNOOP);
    // The context entry: present, multi-level, 4 levels, domain 2, fault reporting on.
    let ctx = new.entry(root, 2 * 2).unwrap() & SL_ADDRESS;
    assert_eq!(new.entry(ctx, 0).unwrap(), s.devices[1].pgtable | 1);
    assert_eq!(new.entry(ctx, 1).unwrap(), 2 << 8 | 2);
}

#[test]
fn a_mapping_of_memory_not_kept_refuses_the_handover() {
    let mut s = scene();
    let d = LiveDomain {
        top: s.devices[2].pgtable,
    }; // domain 2, live
    d.map(&mut s.live, 0x20_0000, 0x7000_0000, PAGE);
    let err = build(&mut s).err().unwrap();
    assert_eq!(
        err,
        BuildError::NotKept(Unkept {
            bdf: 0x0200,
            iova: 0x20_0000,
            phys: 0x7000_0000,
            size: PAGE
        })
    );
    assert_eq!(
        err.to_string(),
        "02:00.0: IOVA 0x200000 maps 0x1000 bytes at 0x70000000, memory that is not kept"
    );
    // A superpage half kept is not kept.
    let mut s = scene();
    s.preserved.0.remove(&(HUGE, 9));
    s.preserved.0.insert((HUGE, 8));
    assert!(matches!(
        build(&mut s),
        Err(BuildError::NotKept(Unkept { size: MIB2, .. }))
    ));
}

/// The verdict of a dry run of `scene`'s build, and its page count.
fn dry_run(scene: &Scene) -> Result<usize, BuildError> {
    let mut devices = scene.devices.clone();
    let mut pages = DryRun::default();
    let mut kept = KeptMemory::new(&scene.preserved);
    build_unit(&mut devices, &scene.live, &mut pages, &mut kept)?;
    Ok(pages.pages)
}

#[test]
fn a_dry_run_gives_the_verdict_of_the_build() {
    let mut s = scene();
    let (_, built) = build(&mut s).unwrap();
    assert_eq!(dry_run(&scene()), Ok(built.pages.len()));
    // Memory that is not kept, a domain that maps nothing, one domain id on two tables.
    let mut unkept = scene();
    unkept.preserved.0.remove(&(HUGE, 9));
    let mut empty = scene();
    let top = LiveDomain::new(&mut empty.live).top;
    empty
        .devices
        .push(KeptDevice::from_live(0x0300, live_context(top, 3, 0)).unwrap());
    let mut mismatch = scene();
    mismatch.devices[2].domain_id = 1;
    for mut s in [unkept, empty, mismatch] {
        let verdict = dry_run(&s);
        assert!(verdict.is_err());
        assert_eq!(verdict.err(), build(&mut s).err());
    }
}

#[test]
fn untranslated_and_inconsistent_devices_are_refused() {
    let s = scene();
    let top = s.devices[0].pgtable;
    assert_eq!(
        KeptDevice::from_live(0x0100, [0, 0]),
        Err(BuildError::NotTranslated(0x0100))
    );
    assert_eq!(
        KeptDevice::from_live(0x0100, live_context(top, 1, 2)),
        Err(BuildError::PassThrough(0x0100))
    );
    assert_eq!(
        KeptDevice::from_live(0x0100, [top | 1, 1 << 8 | 5]),
        Err(BuildError::Malformed(0x0100))
    );
    // A domain that maps nothing: nothing to hand over.
    let mut s = scene();
    let empty = LiveDomain::new(&mut s.live);
    s.devices
        .push(KeptDevice::from_live(0x0300, live_context(empty.top, 3, 0)).unwrap());
    assert_eq!(build(&mut s).err(), Some(BuildError::NothingMapped(0x0300)));
    // One domain id, two page tables.
    let mut s = scene();
    s.devices[2].domain_id = 1;
    assert_eq!(
        build(&mut s).err(),
        Some(BuildError::DomainMismatch(0x0200))
    );
    // The same device twice.
    let mut s = scene();
    let again = s.devices[0];
    s.devices.push(again);
    assert!(matches!(build(&mut s), Err(BuildError::Malformed(_))));
}

#[test]
fn tampered_tables_are_rejected() {
    let mut s = scene();
    let (root, new) = build(&mut s).unwrap();
    let devices = s.devices.clone();
    let check = |edit: &dyn Fn(&mut Memory, &mut Vec<KeptDevice>)| {
        let mut mem = Memory {
            pages: new.pages.clone(),
            next: new.next,
        };
        let mut devs = devices.clone();
        edit(&mut mem, &mut devs);
        validate(root, &devs, &mem, &s.preserved)
    };
    let leaf_page = |mem: &Memory| {
        // Domain 2's last-level table: the highest-addressed page of its copy.
        let mut page = devices[1].pgtable;
        let iova = 0xfee0_0000u64 - PAGE;
        for level in (2..=4u32).rev() {
            page = mem
                .entry(page, ((iova >> (12 + 9 * (level - 1))) & 511) as usize)
                .unwrap()
                & SL_ADDRESS;
        }
        page
    };
    let leaf_index = (((0xfee0_0000u64 - PAGE) >> 12) & 511) as usize;
    // A mapping pointed at memory that is not kept: the host's.
    assert_eq!(
        check(&|m, _| {
            let p = leaf_page(m);
            m.set(p, leaf_index, 0x7000_0000 | SL_READ | SL_WRITE);
        }),
        Err(Invalid::NotKept(Unkept {
            bdf: 0x0200,
            iova: 0xfee0_0000 - PAGE,
            phys: 0x7000_0000,
            size: PAGE
        }))
    );
    // A bit the outgoing kernel never writes.
    assert!(matches!(
        check(&|m, _| {
            let p = leaf_page(m);
            let e = m.entry(p, leaf_index).unwrap();
            m.set(p, leaf_index, e | 1 << 62);
        }),
        Err(Invalid::PageTableEntry { bdf: 0x0200, .. })
    ));
    // A table pointer with a bit the outgoing kernel never writes.
    assert_eq!(
        check(&|m, d| {
            let top = d[1].pgtable;
            let e = m.entry(top, 0).unwrap();
            m.set(top, 0, e | SL_SNOOP);
        }),
        Err(Invalid::PageTableEntry {
            bdf: 0x0200,
            iova: 0
        })
    );
    // A table pointer to a page that is not handed over.
    assert_eq!(
        check(&|m, d| {
            let top = d[1].pgtable;
            m.set(top, 5, 0x7000_0000 | SL_READ | SL_WRITE);
        }),
        Err(Invalid::NotHandedOver(0x7000_0000))
    );
    // Two entries pointing at one table: a loop or a shared page.
    assert!(matches!(
        check(&|m, d| {
            let top = d[1].pgtable;
            let e = m.entry(top, 0).unwrap();
            m.set(top, 1, e);
        }),
        Err(Invalid::ReachedTwice(_))
    ));
    // A context entry for a device the record does not keep.
    assert_eq!(
        check(&|m, d| {
            let ctx = m.entry(root, 0).unwrap() & SL_ADDRESS;
            let [lo, hi] = d[0].context_entry();
            m.set(ctx, 0x20 * 2, lo);
            m.set(ctx, 0x20 * 2 + 1, hi);
        }),
        Err(Invalid::ContextEntry(0x0020))
    );
    // The record says another domain id than the context entry.
    assert_eq!(
        check(&|_, d| d[1].domain_id = 9),
        Err(Invalid::ContextEntry(0x0200))
    );
    // A root entry for a bus without kept devices.
    assert_eq!(
        check(&|m, _| {
            let e = m.entry(root, 0).unwrap();
            m.set(root, 2 * 5, e);
        }),
        Err(Invalid::RootEntry(5))
    );
    // Pass-through in a context entry.
    assert_eq!(
        check(&|m, _| {
            let ctx = m.entry(root, 4).unwrap() & SL_ADDRESS;
            let lo = m.entry(ctx, 0).unwrap();
            m.set(ctx, 0, lo | 2 << 2);
        }),
        Err(Invalid::ContextEntry(0x0200))
    );
    // A page listed but not reached.
    assert_eq!(
        check(&|m, _| {
            m.pages.insert(0x9000_0000, [0; ENTRIES]);
        }),
        Err(Invalid::Unreached(0x9000_0000))
    );
}

#[test]
fn the_page_list_must_be_ascending_pages() {
    let mut r = [false; 2];
    assert!(HandedOver::new(&[0x2000, 0x1000], &mut r).is_err());
    assert!(HandedOver::new(&[0x1000, 0x1000], &mut r).is_err());
    assert!(HandedOver::new(&[0x1000, 0x1800], &mut r).is_err());
    assert!(HandedOver::new(&[0, 0x1000], &mut r).is_err());
    assert!(HandedOver::new(&[0x1000], &mut r).is_err());
    assert!(HandedOver::new(&[0x1000, 0x2000], &mut r).is_ok());
}

/// What the hardware would reach from `root`, walked without any of the validator's checks:
/// every table page and every leaf, each as (phys, size). Stops at pages not in `mem`.
fn reachable(root: u64, mem: &Memory) -> (Vec<u64>, Vec<(u64, u64)>) {
    let mut tables = vec![root];
    let mut leaves = vec![];
    let read = |p: u64, i: usize| mem.entry(p, i).unwrap_or(0);
    for bus in 0..256 {
        let lo = read(root, bus * 2);
        if lo & 1 == 0 {
            continue;
        }
        let ctx = lo & SL_ADDRESS;
        tables.push(ctx);
        for devfn in 0..256 {
            let lo = read(ctx, devfn * 2);
            let hi = read(ctx, devfn * 2 + 1);
            if lo & 1 == 0 || (lo >> 2) & 3 > 1 {
                continue;
            }
            let levels = (hi & 7) as u32 + 2;
            let mut stack = vec![(lo & 0xffff_ffff_ffff_f000, levels)];
            let mut steps = 0;
            while let Some((page, level)) = stack.pop() {
                steps += 1;
                if steps > 10_000 || !mem.pages.contains_key(&page) {
                    tables.push(page);
                    continue;
                }
                tables.push(page);
                for i in 0..ENTRIES {
                    let e = read(page, i);
                    if e & 3 == 0 {
                        continue;
                    }
                    if level == 1 || (e & SL_SUPERPAGE != 0 && level <= 3) {
                        leaves.push((e & SL_ADDRESS, 1u64 << (12 + 9 * (level - 1))));
                    } else if level > 1 {
                        stack.push((e & SL_ADDRESS, level - 1));
                    }
                }
            }
        }
    }
    (tables, leaves)
}

proptest! {
    /// Whatever one corrupted entry does, tables that validate let the hardware reach only
    /// handed-over table pages and kept memory.
    #[test]
    fn validated_tables_reach_only_kept_memory(
        pick in 0usize..1000, index in 0usize..ENTRIES, bit in 0u32..64, value in any::<u64>(),
        replace in any::<bool>(),
    ) {
        let mut s = scene();
        let (root, mut new) = build(&mut s).unwrap();
        let pages: Vec<u64> = new.pages.keys().copied().collect();
        let page = pages[pick % pages.len()];
        let old = new.entry(page, index).unwrap();
        new.set(page, index, if replace { value } else { old ^ 1 << bit });
        if validate(root, &s.devices, &new, &s.preserved).is_ok() {
            let (tables, leaves) = reachable(root, &new);
            for t in &tables {
                prop_assert!(pages.contains(t), "reaches table {t:#x}");
            }
            let mut kept = KeptMemory::new(&s.preserved);
            for (phys, size) in leaves {
                prop_assert!(kept.is_kept(phys, size), "reaches {phys:#x}+{size:#x}");
            }
        }
    }
}
