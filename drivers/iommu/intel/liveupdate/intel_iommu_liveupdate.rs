// SPDX-License-Identifier: GPL-2.0

//! VT-d Live Update: the DMA of kept devices stays translated through the kexec.
//!
//! When the vfio-pci handler freezes a kept device for the kexec, it asks here to hand the
//! device's translation over (`Device::liveupdate_freeze_translation()`). For the device's
//! unit this builds handover tables ([`tables`]): a root table, context tables holding the
//! unit's handed-over devices only, and a copy of each of their domains' page tables, every
//! mapping of which must point at memory preserved through KHO ([`kept`]), in practice guest
//! memory in a memfd that LUO keeps. A device whose translation cannot be handed over (it maps
//! memory that is not kept, its unit is in scalable mode) is told so in the kernel log and
//! quiesced at the kexec, as without this support. The record of what was handed over
//! ([`abi`]) goes to the next kernel with the File-Lifecycle-Bound object
//! [`abi::COMPATIBLE`], which LUO preserves with the first file of the vfio-pci handler.
//!
//! At the kexec, the PCI core leaves bus mastering on for the handed-over devices and the
//! bridges above them (`intel_iommu_liveupdate_translates()`), and the VT-d driver points
//! each unit with handed-over devices at its handover root table instead of turning
//! translation off (`intel_iommu_liveupdate_shutdown()`): from then on the kept devices
//! translate through the copies, every other device of the unit is blocked.
//!
//! The next kernel boots with translation on. When its VT-d driver starts, it asks here
//! whether to keep it on (`intel_iommu_liveupdate_adopt()`): the record and the tables are
//! validated as a whole, against the unit's root table register; tables that validate are
//! adopted the way a kdump kernel adopts the tables it finds (each kept device translates
//! through them until its user attaches it to a domain of its own), and freed when the last
//! file is finished. Tables that do not validate are never used again: the unit is pointed
//! at an empty root table, which blocks all DMA, the kept devices are released (bus
//! mastering off, reset), and translation is never switched off under them.

use kernel::{
    bindings,
    iommu::vtd::{self, Unit},
    kho::{self, Incoming, KhoBlockSet, KhoMem, Outgoing},
    liveupdate::{Flb, FlbOps, Handle},
    new_mutex, new_spinlock,
    page::PAGE_SIZE,
    pci,
    prelude::*,
    sync::{aref::ARef, Mutex, SetOnce, SpinLock},
};

pub mod abi;
#[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE_CORRUPT_TEST)]
mod corrupt;
pub mod kept;
pub mod tables;

use abi::{Record, COMPATIBLE, RECORD_SIZE};
use kept::{KeptMemory, Preservations};
use tables::{BuildError, DisplayBdf, DryRun, HandedOver, KeptDevice, NewTables, TableMemory};

module! {
    type: IntelIommuLiveupdate,
    name: "intel_iommu_liveupdate",
    authors: ["Rust Live Update developers"],
    description: "VT-d translation of devices kept across a Live Update",
    license: "GPL",
}

/// Everything lives in statics created on first use (the VT-d driver asks before any
/// initcall of ours runs).
struct IntelIommuLiveupdate;

impl kernel::Module for IntelIommuLiveupdate {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE_CORRUPT_TEST)]
        corrupt::init()?;
        // LUO counts on every FLB being read back before its files are finished, which the
        // VT-d driver does only when it found translation on.
        retrieve_record();
        Ok(Self)
    }
}

/// Has LUO read the handed-over record back, once.
fn retrieve_record() {
    // The reference only has to trigger retrieve(); our copy outlives it.
    match INTEL_FLB.incoming() {
        Ok(incoming) => drop(incoming),
        Err(e) if e == ENODATA || e == ENOENT || e == EOPNOTSUPP => {}
        Err(e) => pr_err!("cannot retrieve the handed-over VT-d record: {:?}\n", e),
    }
}

// The codec in `abi.rs` and the C definition of the layout agree.
const _: () = {
    use core::mem::{offset_of, size_of};
    use kernel::bindings::{intel_iommu_lu_dev, intel_iommu_lu_ser, intel_iommu_lu_unit};
    assert!(size_of::<intel_iommu_lu_ser>() == abi::HEADER_SIZE);
    assert!(offset_of!(intel_iommu_lu_ser, tables) == 8);
    assert!(size_of::<intel_iommu_lu_unit>() == abi::UNIT_SIZE);
    assert!(offset_of!(intel_iommu_lu_unit, nr_devices) == 18);
    assert!(size_of::<intel_iommu_lu_dev>() == abi::DEVICE_SIZE);
    assert!(offset_of!(intel_iommu_lu_dev, pgtable) == 8);
    assert!(RECORD_SIZE == PAGE_SIZE);
};

/// Most units that hand over translation at once.
const MAX_UNITS: usize = 8;

/// What this kernel preserves for the next one, from KHO's outgoing tracker.
struct PreservedHere;

impl Preservations for PreservedHere {
    fn starts_at(&self, phys: u64, order: u32) -> bool {
        kho::is_preserved(phys, order)
    }
}

/// What the previous kernel preserved for this one and nobody restored yet.
struct HandedOverHere;

impl Preservations for HandedOverHere {
    fn starts_at(&self, phys: u64, order: u32) -> bool {
        kho::is_handed_over(phys, order)
    }
}

/// The page tables this kernel translates with.
struct LiveTables;

impl TableMemory for LiveTables {
    fn entry(&self, page: u64, index: usize) -> Option<u64> {
        vtd::read_table_entry(page, index)
    }
}

/// Handover table pages, each preserved for the next kernel.
struct NewPages(KVec<KhoMem<Outgoing>>);

impl NewTables for NewPages {
    type Page = usize;

    fn alloc(&mut self) -> Option<(usize, u64)> {
        let page = KhoMem::alloc_preserve(PAGE_SIZE).ok()?;
        let phys = page.phys();
        self.0.push(page, GFP_KERNEL).ok()?;
        Some((self.0.len() - 1, phys))
    }

    fn set(&mut self, page: usize, index: usize, entry: u64) {
        if let Some(page) = self.0.get_mut(page) {
            page.as_bytes_mut()[index * 8..index * 8 + 8].copy_from_slice(&entry.to_le_bytes());
        }
    }
}

/// The handover tables of one unit.
struct Built {
    root: u64,
    /// The kept devices as the tables translate them (their copies' page tables).
    devices: KVec<KeptDevice>,
    pages: KVec<KhoMem<Outgoing>>,
}

/// A unit with devices whose translation is handed over.
struct HandoverUnit {
    unit: &'static Unit,
    /// The devices, as their live context entries give them.
    live: KVec<KeptDevice>,
    /// The same devices, for the PCI core's question at the kexec.
    devs: KVec<ARef<pci::Device>>,
    built: Option<Built>,
}

impl HandoverUnit {
    /// Builds the handover tables for `live` anew.
    fn rebuild(&mut self) -> Result<(), BuildError> {
        self.built = None;
        if self.live.is_empty() {
            return Ok(());
        }
        let mut devices = KVec::new();
        devices
            .extend_from_slice(&self.live, GFP_KERNEL)
            .map_err(|_| BuildError::OutOfMemory)?;
        let mut pages = NewPages(KVec::new());
        let mut kept = KeptMemory::new(&PreservedHere);
        let root = tables::build_unit(&mut devices, &LiveTables, &mut pages, &mut kept)?;
        for page in pages.0.iter() {
            self.unit.flush_table(page);
        }
        self.built = Some(Built {
            root,
            devices,
            pages: pages.0,
        });
        Ok(())
    }
}

/// The record for the next kernel, and the units it describes.
struct OutgoingRecord {
    record: KhoMem<Outgoing>,
    pages: Pin<KBox<KhoBlockSet<[u8; 8]>>>,
    units: KVec<HandoverUnit>,
}

impl OutgoingRecord {
    /// Writes what the units hand over into the record, and publishes their root tables for
    /// the kexec.
    fn sync(&mut self) -> Result {
        let mut units = KVec::new();
        let mut devices = KVec::new();
        let mut pages = KVec::new();
        let mut roots = [None; MAX_UNITS];
        for (slot, hu) in self.units.iter().filter(|u| u.built.is_some()).enumerate() {
            let Some(built) = hu.built.as_ref() else {
                continue;
            };
            *roots.get_mut(slot).ok_or(E2BIG)? = Some((hu.unit.reg_base(), built.root));
            units.push(
                abi::Unit {
                    reg_base: hu.unit.reg_base(),
                    root_table: built.root,
                    segment: hu.unit.segment(),
                    nr_devices: u16::try_from(built.devices.len()).map_err(|_| E2BIG)?,
                },
                GFP_KERNEL,
            )?;
            for dev in built.devices.iter() {
                devices.push(*dev, GFP_KERNEL)?;
            }
            for page in built.pages.iter() {
                pages.push(page.phys(), GFP_KERNEL)?;
            }
        }
        pages.sort_unstable();
        let mut raw = KVec::with_capacity(pages.len(), GFP_KERNEL)?;
        for page in pages.iter() {
            raw.push(page.to_le_bytes(), GFP_KERNEL)?;
        }
        self.pages.as_mut().write_all(&raw)?;
        let out: &mut [u8; RECORD_SIZE] = (&mut self.record.as_bytes_mut()[..RECORD_SIZE])
            .try_into()
            .map_err(|_| EINVAL)?;
        abi::encode(out, self.pages.head_phys(), &units, &devices).map_err(|_| E2BIG)?;
        #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE_CORRUPT_TEST)]
        corrupt::apply(out, self.units.iter_mut().find_map(|u| u.built.as_mut()));
        *roots_lock()?.lock() = roots;
        Ok(())
    }

    /// Takes `dev` out of the unit that hands its translation over, if any, and rebuilds the
    /// unit's tables for the others; when they cannot be rebuilt (their tables changed since
    /// their freeze), none of the unit's devices hands over. The record is synced by the
    /// caller.
    fn remove(&mut self, dev: &pci::Device) {
        for hu in self.units.iter_mut() {
            let Some(i) = hu.devs.iter().position(|d| core::ptr::eq(&**d, dev)) else {
                continue;
            };
            // `i` is in range for both, which grow and shrink together.
            let _ = hu.devs.remove(i);
            let _ = hu.live.remove(i);
            if let Err(why) = hu.rebuild() {
                pr_info!(
                    "the unit's other devices' DMA stops at the kexec too: {}\n",
                    why
                );
                hu.live.clear();
                hu.devs.clear();
            }
        }
    }

    fn unit_of(&mut self, unit: &'static Unit) -> Result<&mut HandoverUnit> {
        let reg_base = unit.reg_base();
        let index = match self
            .units
            .iter()
            .position(|u| u.unit.reg_base() == reg_base)
        {
            Some(index) => index,
            None => {
                if self.units.len() == MAX_UNITS {
                    return Err(E2BIG);
                }
                self.units.push(
                    HandoverUnit {
                        unit,
                        live: KVec::new(),
                        devs: KVec::new(),
                        built: None,
                    },
                    GFP_KERNEL,
                )?;
                self.units.len() - 1
            }
        };
        Ok(&mut self.units[index])
    }
}

/// The handed-over tables of the previous kernel, read back.
struct IncomingRecord {
    units: KVec<abi::Unit>,
    /// The devices of all units, unit by unit.
    devices: KVec<KeptDevice>,
    /// The table pages, by ascending address, and whether validation reached each.
    page_addrs: KVec<u64>,
    pages: KVec<KhoMem<Incoming>>,
    reached: KVec<bool>,
}

impl IncomingRecord {
    /// The record of the unit at `reg_base` and its kept devices.
    fn unit(&self, reg_base: u64) -> Option<(abi::Unit, &[KeptDevice])> {
        let index = self.units.iter().position(|u| u.reg_base == reg_base)?;
        let first: usize = self.units[..index]
            .iter()
            .map(|u| usize::from(u.nr_devices))
            .sum();
        let unit = self.units[index];
        let devices = self
            .devices
            .get(first..first + usize::from(unit.nr_devices))?;
        Some((unit, devices))
    }
}

impl TableMemory for IncomingRecord {
    fn entry(&self, page: u64, index: usize) -> Option<u64> {
        let at = self.page_addrs.binary_search(&page).ok()?;
        let bytes = self
            .pages
            .get(at)?
            .as_bytes()
            .get(index * 8..index * 8 + 8)?;
        let mut raw = [0; 8];
        raw.copy_from_slice(bytes);
        Some(u64::from_le_bytes(raw))
    }
}

/// A unit whose handed-over tables were adopted, and its kept devices.
struct Adopted {
    unit: &'static Unit,
    bdfs: KVec<u16>,
}

struct State {
    outgoing: Option<OutgoingRecord>,
    /// The record read back, or why it was rejected.
    incoming: Option<Result<IncomingRecord, Rejected>>,
    adopted: KVec<Adopted>,
    /// Units, by register base, whose tables were adopted or blocked.
    settled: KVec<u64>,
}

static STATE: SetOnce<Pin<KBox<Mutex<State>>>> = SetOnce::new();

fn state() -> Result<&'static Mutex<State>> {
    if STATE.as_ref().is_none() {
        let new = KBox::pin_init(
            new_mutex!(State {
                outgoing: None,
                incoming: None,
                adopted: KVec::new(),
                settled: KVec::new(),
            }),
            GFP_KERNEL,
        )?;
        // Losing a race to another first user is fine: theirs is as good as ours.
        STATE.populate(new);
    }
    STATE.as_ref().map(|s| &**s).ok_or(EAGAIN)
}

/// The handover root table of each unit, by register base, read at the kexec with
/// interrupts off.
type Roots = [Option<(u64, u64)>; MAX_UNITS];

static ROOTS: SetOnce<Pin<KBox<SpinLock<Roots>>>> = SetOnce::new();

fn roots_lock() -> Result<&'static SpinLock<Roots>> {
    if ROOTS.as_ref().is_none() {
        let new = KBox::pin_init(new_spinlock!([None; MAX_UNITS]), GFP_KERNEL)?;
        ROOTS.populate(new);
    }
    ROOTS.as_ref().map(|r| &**r).ok_or(EAGAIN)
}

/// Why handed-over tables were not adopted.
#[derive(Clone, Copy)]
enum Rejected {
    /// No record came with the translation left on.
    NoRecord,
    /// The record or its page list is not in memory KHO handed over.
    NotHandedOver,
    /// The record is invalid.
    Record(abi::Invalid),
    /// The record has no entry for the unit.
    NoUnit,
    /// The unit translates through another root table than the record's.
    RootTable { recorded: u64, found: u64 },
    /// The tables are invalid.
    Tables(tables::Invalid),
    /// Out of memory.
    NoMemory,
}

impl kernel::fmt::Display for Rejected {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self {
            Self::NoRecord => f.write_str("translation left on without a record"),
            Self::NotHandedOver => f.write_str("the record is not in memory KHO handed over"),
            Self::Record(why) => f.write_fmt(fmt!("record: {why}")),
            Self::NoUnit => f.write_str("the record has no entry for the unit"),
            Self::RootTable { recorded, found } => {
                f.write_fmt(fmt!("root table {found:#x}, the record says {recorded:#x}"))
            }
            Self::Tables(why) => f.write_fmt(fmt!("tables: {why}")),
            Self::NoMemory => f.write_str("out of memory"),
        }
    }
}

// The pure core formats with `core::fmt`; the kernel's printing macros take `kernel::fmt`.
impl kernel::fmt::Display for abi::Invalid {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for tables::Invalid {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for BuildError {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for DisplayBdf {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// Reads the record at `handle` and every table page it lists, restoring them.
fn read_incoming(handle: Handle) -> Result<IncomingRecord, Rejected> {
    let mem = handle.restore().map_err(|_| Rejected::NotHandedOver)?;
    let bytes: &[u8; RECORD_SIZE] = mem
        .as_bytes()
        .get(..RECORD_SIZE)
        .and_then(|b| b.try_into().ok())
        .ok_or(Rejected::NotHandedOver)?;
    let record = Record::parse(bytes).map_err(Rejected::Record)?;
    let raw = KhoBlockSet::<[u8; 8]>::read_incoming(record.tables)
        .map_err(|_| Rejected::NotHandedOver)?;
    let mut incoming = IncomingRecord {
        units: KVec::new(),
        devices: KVec::new(),
        page_addrs: KVec::with_capacity(raw.len(), GFP_KERNEL).map_err(|_| Rejected::NoMemory)?,
        pages: KVec::with_capacity(raw.len(), GFP_KERNEL).map_err(|_| Rejected::NoMemory)?,
        reached: KVec::new(),
    };
    for (i, unit) in record.units().enumerate() {
        incoming
            .units
            .push(unit, GFP_KERNEL)
            .map_err(|_| Rejected::NoMemory)?;
        for dev in record.devices(i) {
            incoming
                .devices
                .push(dev, GFP_KERNEL)
                .map_err(|_| Rejected::NoMemory)?;
        }
    }
    for page in raw.iter() {
        let page = u64::from_le_bytes(*page);
        incoming
            .page_addrs
            .push(page, GFP_KERNEL)
            .map_err(|_| Rejected::NoMemory)?;
    }
    incoming
        .reached
        .resize(raw.len(), false, GFP_KERNEL)
        .map_err(|_| Rejected::NoMemory)?;
    // Checks the order before anything is restored: a page listed twice is restored once.
    HandedOver::new(&incoming.page_addrs, &mut incoming.reached).map_err(Rejected::Tables)?;
    for page in incoming.page_addrs.iter() {
        if !kho::is_handed_over(*page, 0) {
            return Err(Rejected::Tables(tables::Invalid::NotHandedOver(*page)));
        }
        let mem = KhoMem::restore(*page).map_err(|_| Rejected::NotHandedOver)?;
        incoming
            .pages
            .push(mem, GFP_KERNEL)
            .map_err(|_| Rejected::NoMemory)?;
    }
    Ok(incoming)
}

/// Validates the tables the record gives for `unit`; on success, the unit's kept devices.
/// The pages validation reaches are marked in `incoming`, for the next unit's.
fn validate(incoming: &mut IncomingRecord, unit: &Unit) -> Result<KVec<u16>, Rejected> {
    let mut reached = core::mem::take(&mut incoming.reached);
    let verdict = validate_reaching(incoming, &mut reached, unit);
    incoming.reached = reached;
    verdict
}

fn validate_reaching(
    incoming: &IncomingRecord,
    reached: &mut [bool],
    unit: &Unit,
) -> Result<KVec<u16>, Rejected> {
    let (recorded, devices) = incoming.unit(unit.reg_base()).ok_or(Rejected::NoUnit)?;
    let found = unit.root_table();
    if found != recorded.root_table || recorded.segment != unit.segment() {
        return Err(Rejected::RootTable {
            recorded: recorded.root_table,
            found,
        });
    }
    let mut handed = HandedOver::new(&incoming.page_addrs, reached).map_err(Rejected::Tables)?;
    let mut kept = KeptMemory::new(&HandedOverHere);
    tables::validate_unit(
        recorded.root_table,
        devices,
        incoming,
        &mut handed,
        &mut kept,
    )
    .map_err(Rejected::Tables)?;
    let mut bdfs = KVec::new();
    for dev in devices {
        bdfs.push(dev.bdf, GFP_KERNEL)
            .map_err(|_| Rejected::NoMemory)?;
    }
    Ok(bdfs)
}

/// Releases the kept devices of `unit`, bus mastering off, reset: those the record names for
/// it, or every incoming device of its segment when the record cannot say.
fn release_kept(incoming: Option<&IncomingRecord>, unit: &Unit) {
    let segment = u32::from(unit.segment());
    let release = |bus: u8, devfn: u8| {
        // Bridges are only paths to the kept devices; they stay as they are.
        let Some(pdev) = pci::Device::get(segment, bus, devfn) else {
            return;
        };
        if pdev.is_bridge() || !pdev.liveupdate_is_incoming() {
            return;
        }
        match pdev.liveupdate_release() {
            Ok(()) => dev_info!(
                pdev.as_ref(),
                "released: its translation was not adopted; bus mastering off, reset\n"
            ),
            Err(e) => dev_err!(pdev.as_ref(), "cannot release it: {:?}\n", e),
        }
    };
    let Some(incoming) = incoming else {
        for bus in 0..=u8::MAX {
            for devfn in 0..=u8::MAX {
                release(bus, devfn);
            }
        }
        return;
    };
    if let Some((_, devices)) = incoming.unit(unit.reg_base()) {
        for dev in devices {
            release((dev.bdf >> 8) as u8, dev.bdf as u8);
        }
    }
}

struct IntelFlb;

#[vtable]
impl FlbOps for IntelFlb {
    type Outgoing = ();
    type Incoming = ();

    fn preserve() -> Result<(Handle, ())> {
        let mut record = OutgoingRecord {
            record: KhoMem::alloc_preserve(RECORD_SIZE)?,
            pages: KBox::pin_init(KhoBlockSet::new(), GFP_KERNEL)?,
            units: KVec::new(),
        };
        record.sync()?;
        let handle = Handle::of(&record.record);
        state()?.lock().outgoing = Some(record);
        Ok((handle, ()))
    }

    fn unpreserve(_handle: Handle, _obj: ()) {
        if let Ok(state) = state() {
            state.lock().outgoing = None;
        }
        if let Ok(roots) = roots_lock() {
            *roots.lock() = [None; MAX_UNITS];
        }
    }

    fn retrieve(handle: Handle) -> Result<()> {
        let incoming = read_incoming(handle);
        state()?.lock().incoming = Some(incoming);
        // Returning an error would make LUO retry at finish time; the verdict is final.
        Ok(())
    }

    fn finish(_obj: ()) {
        let Ok(state) = state() else { return };
        let mut state = state.lock();
        let Some(Ok(incoming)) = state.incoming.take() else {
            return;
        };
        // The tables may be freed once no unit can reach them: every unit the record names
        // was either blocked or adopted, and no adopted device still translates through them.
        let unsettled = incoming
            .units
            .iter()
            .any(|u| !state.settled.contains(&u.reg_base));
        let in_use = state.adopted.iter().find_map(|a| {
            a.bdfs
                .iter()
                .find(|bdf| a.unit.context_copied(**bdf))
                .map(|bdf| (a.unit.segment(), *bdf))
        });
        if let Some((segment, bdf)) = in_use {
            pr_warn!(
                "{:04x}:{}: still translated by the tables the previous kernel handed over; they stay allocated\n",
                segment,
                DisplayBdf(bdf)
            );
        } else if unsettled {
            pr_warn!(
                "the VT-d driver never looked at the handed-over tables; they stay allocated\n"
            );
        } else {
            pr_info!(
                "freed the {} table pages the previous kernel handed over\n",
                incoming.pages.len()
            );
            return;
        }
        // Leaked: a unit may still reach them. Nothing is dropped.
        core::mem::forget(incoming);
    }
}

/// The FLB of the vfio-pci handler's files (`intel_iommu_liveupdate_register_flb()`).
#[export_name = "intel_iommu_liveupdate_flb"]
static INTEL_FLB: Flb<IntelFlb> = Flb::new(COMPATIBLE);

/// Why `dev`'s translation cannot be handed over before its tables are looked at.
fn unsupported(e: Error) -> &'static str {
    if e == EOPNOTSUPP {
        "its VT-d unit is in scalable mode"
    } else {
        "no VT-d unit translates it"
    }
}

/// Hands `dev`'s translation over, when it can (see `Device::liveupdate_freeze_translation`).
/// Whether it did.
fn freeze(dev: &pci::Device) -> Result<bool> {
    let kept = vtd::context_of(dev)
        .map(|(unit, bdf, context)| (unit, KeptDevice::from_live(bdf, context)));
    let (unit, kept) = match kept {
        Ok((unit, Ok(kept))) => (unit, kept),
        Ok((_, Err(why))) => {
            dev_info!(dev.as_ref(), "DMA stops at the kexec: {}\n", why);
            return Ok(false);
        }
        Err(e) => {
            dev_info!(dev.as_ref(), "DMA stops at the kexec: {}\n", unsupported(e));
            return Ok(false);
        }
    };
    let mut state = state()?.lock();
    let Some(outgoing) = state.outgoing.as_mut() else {
        dev_info!(
            dev.as_ref(),
            "DMA stops at the kexec: no VT-d record for the next kernel\n"
        );
        return Ok(false);
    };
    let hu = outgoing.unit_of(unit)?;
    hu.live.push(kept, GFP_KERNEL)?;
    if let Err(e) = hu.devs.push(ARef::from(dev), GFP_KERNEL) {
        hu.live.pop();
        return Err(e.into());
    }
    let verdict = hu.rebuild();
    let pages = hu.built.as_ref().map_or(0, |b| b.pages.len());
    if let Err(why) = verdict {
        // A VMM's choice (guest memory that is not kept), not a fault: information.
        dev_info!(dev.as_ref(), "DMA stops at the kexec: {}\n", why);
        outgoing.remove(dev);
    }
    // What the record says and what the kexec does must agree: all of it, or none of it.
    if let Err(e) = outgoing.sync() {
        outgoing.remove(dev);
        let _ = outgoing.sync();
        return Err(e);
    }
    if verdict.is_ok() {
        dev_info!(
            dev.as_ref(),
            "DMA stays translated through the kexec: {} handover table pages for its unit\n",
            pages
        );
    }
    Ok(verdict.is_ok())
}

/// Whether a kexec now could hand `dev`'s translation over, were the device kept: 0, or the
/// `INTEL_IOMMU_LU_STOPS_*` code of why its DMA would stop.
fn check(dev: &pci::Device) -> Result<u32> {
    let (bdf, context) = match vtd::context_of(dev) {
        Ok((_, bdf, context)) => (bdf, context),
        Err(e) => {
            dev_info!(
                dev.as_ref(),
                "DMA would stop at a kexec: {}\n",
                unsupported(e)
            );
            return Ok(bindings::INTEL_IOMMU_LU_STOPS_UNSUPPORTED);
        }
    };
    let verdict = KeptDevice::from_live(bdf, context).and_then(|dev| {
        let mut kept = KeptMemory::new(&PreservedHere);
        tables::build_unit(&mut [dev], &LiveTables, &mut DryRun::default(), &mut kept)
    });
    match verdict {
        Ok(_) => Ok(0),
        Err(why) => {
            dev_info!(dev.as_ref(), "DMA would stop at a kexec: {}\n", why);
            stops(why)
        }
    }
}

/// The `INTEL_IOMMU_LU_STOPS_*` code of `why`.
fn stops(why: BuildError) -> Result<u32> {
    Ok(match why {
        BuildError::OutOfMemory => return Err(ENOMEM),
        BuildError::NotKept(_) => bindings::INTEL_IOMMU_LU_STOPS_NOT_KEPT,
        BuildError::NothingMapped(_) => bindings::INTEL_IOMMU_LU_STOPS_NOTHING_MAPPED,
        BuildError::NotTranslated(_)
        | BuildError::PassThrough(_)
        | BuildError::Malformed(_)
        | BuildError::Unreadable(_)
        | BuildError::DomainMismatch(_) => bindings::INTEL_IOMMU_LU_STOPS_TABLES,
    })
}

/// Undoes [`freeze`] when the kexec is cancelled.
fn unfreeze(dev: &pci::Device) {
    let Ok(state) = state() else { return };
    let mut state = state.lock();
    let Some(outgoing) = state.outgoing.as_mut() else {
        return;
    };
    outgoing.remove(dev);
    let _ = outgoing.sync();
}

/// Whether the kexec leaves `dev`'s bus mastering on: its translation is handed over, or it
/// is a bridge above such a device.
fn translates(dev: &pci::Device) -> bool {
    let Ok(state) = state() else { return false };
    let state = state.lock();
    let Some(outgoing) = state.outgoing.as_ref() else {
        return false;
    };
    for hu in outgoing.units.iter().filter(|hu| hu.built.is_some()) {
        for kept in hu.devs.iter() {
            let mut at = Some(kept.clone());
            while let Some(d) = at {
                if core::ptr::eq(&*d, dev) {
                    return true;
                }
                at = d.upstream_bridge();
            }
        }
    }
    false
}

/// In the next kernel: whether `dev` still translates through the tables the previous kernel
/// handed over, no domain of this kernel attached to it yet. Such a device reaches the memory
/// those tables map, which this kernel does not hold for it.
fn adopted(dev: &pci::Device) -> bool {
    let Ok(state) = state() else { return false };
    let state = state.lock();
    let Ok(segment) = u16::try_from(dev.domain_nr()) else {
        return false;
    };
    let bdf = dev.dev_id();
    state
        .adopted
        .iter()
        .any(|a| a.unit.segment() == segment && a.bdfs.contains(&bdf) && a.unit.context_copied(bdf))
}

kernel::export_pci_device_fns! {
    intel_iommu_liveupdate_freeze() -> c_int = freeze;
    intel_iommu_liveupdate_unfreeze() -> () = unfreeze;
    intel_iommu_liveupdate_translates() -> bool = translates;
    intel_iommu_liveupdate_adopted() -> bool = adopted;
    intel_iommu_liveupdate_check() -> c_int = check;
}

/// At the kexec, with interrupts off: points `unit` at its handover root table, if it has
/// one. Whether it keeps translating.
fn shutdown(unit: &Unit) -> bool {
    let Some(roots) = ROOTS.as_ref() else {
        return false;
    };
    let reg_base = unit.reg_base();
    let root = roots
        .lock()
        .iter()
        .flatten()
        .find(|(r, _)| *r == reg_base)
        .map(|(_, root)| *root);
    match root {
        Some(root) => {
            unit.set_root_table(root);
            true
        }
        None => false,
    }
}

/// In a kernel booted by a Live Update, when the VT-d driver finds `unit` translating:
/// adopts the handed-over tables if they validate, blocks all DMA of the unit otherwise.
/// Whether the unit keeps translating (always, after a Live Update).
fn adopt(unit: &'static Unit) -> bool {
    if !kho::is_kho_boot() {
        return false;
    }
    retrieve_record();
    let Ok(state) = state() else {
        return block(unit, None, Rejected::NoMemory);
    };
    let mut state = state.lock();
    if state.settled.push(unit.reg_base(), GFP_KERNEL).is_err() {
        return block(unit, None, Rejected::NoMemory);
    }
    let verdict = match state.incoming.as_mut() {
        None => Err(Rejected::NoRecord),
        Some(Err(why)) => Err(*why),
        Some(Ok(incoming)) => validate(incoming, unit),
    };
    match verdict {
        Ok(bdfs) => {
            pr_info!(
                "{:#x}: adopted the translation of {} kept devices from the previous kernel\n",
                unit.reg_base(),
                bdfs.len()
            );
            if state
                .adopted
                .push(Adopted { unit, bdfs }, GFP_KERNEL)
                .is_err()
            {
                pr_warn!("out of memory: its tables stay allocated\n");
            }
            true
        }
        Err(why) => {
            let incoming = match state.incoming.as_ref() {
                Some(Ok(incoming)) => Some(incoming),
                _ => None,
            };
            block(unit, incoming, why)
        }
    }
}

/// Blocks all DMA of `unit`, translation left on, and releases its kept devices.
fn block(unit: &Unit, incoming: Option<&IncomingRecord>, why: Rejected) -> bool {
    pr_err!(
        "{:#x}: rejecting the handed-over translation: {}; blocking its DMA and resetting the kept devices\n",
        unit.reg_base(),
        why
    );
    if let Err(e) = unit.block() {
        pr_err!("cannot block the unit's DMA: {:?}\n", e);
    }
    release_kept(incoming, unit);
    true
}

kernel::export_vtd_unit_fns! {
    intel_iommu_liveupdate_shutdown() -> bool = shutdown;
    intel_iommu_liveupdate_adopt() -> bool = adopt;
}
