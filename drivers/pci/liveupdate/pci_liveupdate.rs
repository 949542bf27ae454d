// SPDX-License-Identifier: GPL-2.0

//! PCI Live Update: which PCI devices are preserved across a kexec.
//!
//! A driver that preserves a device in its Live Update file handler calls
//! `pci_liveupdate_preserve()`. The PCI core records the device and every bridge above it
//! (see [`table`]) and keeps the record in KHO memory, in the layout of
//! `include/linux/kho/abi/pci.h` (see [`abi`]), under the File-Lifecycle-Bound object `"pci"`
//! that LUO preserves with the first file of any handler registered with
//! `pci_liveupdate_register_flb()`.
//!
//! At the freeze before the kexec, a preserved device's interrupts are masked at the device
//! ([`interrupts`]). At the kexec shutdown its bus mastering is cleared like every device's:
//! the IOMMU stops translating at the kexec, and a device mastering the bus then would reach
//! any host memory. The device is not reset; its driver in the next kernel gives it bus
//! mastering back once an IOMMU domain translates its DMA again.
//!
//! The next kernel reads the record back the first time it asks whether a device is incoming
//! (from PCI enumeration), validates it as a whole, and answers from it until the driver calls
//! `pci_liveupdate_finish()`. While a device is incoming, enumeration leaves its configuration
//! as the previous kernel left it, and nothing but its Live Update driver may bind to it or
//! reset the bus it is on. A driver takes a device back by claiming it
//! (`pci_liveupdate_claim()`); a device no driver claimed within `claim_timeout` seconds (a
//! kernel without the driver, a VMM that never came back) is released: no longer incoming,
//! bus mastering off, reset, like any device at boot.
//!
//! Unlike the C proposal upstream, nothing here panics. Handed-over state that does not
//! validate is rejected with a message saying why, and the kernel boots as if nothing had been
//! preserved: the devices take the normal path (reset on open). That is a lost update for the
//! VMs using them, never memory corruption: bus mastering is off since the kexec. A device
//! preserved but never finished is reported, not fatal.
//!
//! One reader/writer semaphore guards both tables. Lock order: LUO's FLB locks, then ours;
//! nothing here calls into LUO while holding ours.

use kernel::{
    kho::{BlockChainError, KhoBlockSet, KhoMem, Outgoing},
    liveupdate::{Flb, FlbOps, Handle},
    new_rwsem,
    page::PAGE_SIZE,
    pci,
    prelude::*,
    sync::{aref::ARef, Arc, RwSemaphore, SetOnce},
    time::msecs_to_jiffies,
    workqueue::{self, impl_has_delayed_work, new_delayed_work, DelayedWork, WorkItem},
};

pub mod abi;
#[cfg(CONFIG_PCI_LIVEUPDATE_CORRUPT_TEST)]
mod corrupt;
mod interrupts;
pub mod table;
#[cfg(CONFIG_PCI_LIVEUPDATE_KUNIT_TEST)]
mod table_bench;

use abi::{DevId, Header, COMPATIBLE, ENTRY_SIZE, HEADER_SIZE, VERSION};
use table::{Invalid, LoadError, OutOfMemory, Slot, Storage, Table, TableError};

module! {
    type: PciLiveupdate,
    name: "pci_liveupdate",
    authors: ["Rust Live Update developers"],
    description: "PCI core support for Live Update",
    license: "GPL",
    params: {
        claim_timeout: u32 {
            default: 300,
            description: "Seconds after boot within which a driver must claim an incoming device before it is released and reset; 0: never",
        },
    },
}

/// Everything lives in statics created on first use; there is nothing to set up.
struct PciLiveupdate;

impl kernel::Module for PciLiveupdate {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        #[cfg(CONFIG_PCI_LIVEUPDATE_CORRUPT_TEST)]
        corrupt::init()?;
        Ok(Self)
    }
}

// The codec in `abi.rs` and the C definition of the layout agree.
const _: () = {
    use core::mem::{offset_of, size_of};
    use kernel::bindings::{pci_dev_ser, pci_ser};
    assert!(size_of::<pci_ser>() == HEADER_SIZE);
    assert!(offset_of!(pci_ser, nr_devices) == 4);
    assert!(offset_of!(pci_ser, devices) == 8);
    assert!(size_of::<pci_dev_ser>() == ENTRY_SIZE);
    assert!(offset_of!(pci_dev_ser, bdf) == 4);
    assert!(offset_of!(pci_dev_ser, refcount) == 6);
};

// The pure core formats with `core::fmt`; the kernel's printing macros take `kernel::fmt`.
impl kernel::fmt::Display for DevId {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for Invalid {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl Storage<Slot> for KVec<Slot> {
    fn items(&self) -> &[Slot] {
        self.as_slice()
    }

    fn items_mut(&mut self) -> &mut [Slot] {
        self.as_mut_slice()
    }

    fn reserve(&mut self, additional: usize) -> Result<(), OutOfMemory> {
        KVec::reserve(self, additional, GFP_KERNEL).map_err(|_| OutOfMemory)
    }

    fn push_reserved(&mut self, item: Slot) {
        // `Table` reserves before it pushes, so this cannot run out of room.
        let _ = self.push_within_capacity(item);
    }

    fn pop(&mut self) -> Option<Slot> {
        KVec::pop(self)
    }
}

type DeviceTable = Table<KVec<Slot>>;

fn errno(e: TableError) -> Error {
    match e {
        TableError::Busy => EBUSY,
        TableError::NotPreserved => ENOENT,
        TableError::Overflow => EOVERFLOW,
        TableError::BadPath => EINVAL,
        TableError::NoMemory => ENOMEM,
    }
}

/// A device its driver froze for the kexec.
struct Frozen {
    id: DevId,
    /// What masking its interrupts changed, undone if the kexec is cancelled.
    masked: interrupts::Masked,
}

/// The outgoing record: the table, and its copy in KHO memory for the next kernel.
struct OutgoingRecord {
    header: KhoMem<Outgoing>,
    entries: Pin<KBox<KhoBlockSet<[u8; ENTRY_SIZE]>>>,
    table: DeviceTable,
    /// Devices frozen for the kexec; no change to the table is allowed while any is.
    frozen: KVec<Frozen>,
}

impl OutgoingRecord {
    fn new() -> Result<Self> {
        let mut record = Self {
            header: KhoMem::alloc_preserve(HEADER_SIZE)?,
            entries: KBox::pin_init(KhoBlockSet::new(), GFP_KERNEL)?,
            table: Table::new(KVec::new()),
            frozen: KVec::new(),
        };
        record.write_header();
        Ok(record)
    }

    fn write_header(&mut self) {
        let header = self.table.header(self.entries.head_phys());
        self.header.as_bytes_mut()[..HEADER_SIZE].copy_from_slice(&header.encode());
    }

    /// Copies the table into KHO memory.
    fn sync(&mut self) -> Result {
        let mut raw = KVec::with_capacity(self.table.len(), GFP_KERNEL)?;
        for entry in self.table.entries() {
            raw.push(entry.encode(), GFP_KERNEL)?;
        }
        self.entries.as_mut().write_all(&raw)?;
        self.write_header();
        Ok(())
    }

    /// Applies `change` to the table and copies the result to KHO memory; when the copy fails,
    /// `undo` restores the table, so a failed call changes nothing.
    fn update(&mut self, path: &[DevId], change: TableOp, undo: TableOp) -> Result {
        if !self.frozen.is_empty() {
            return Err(EINVAL);
        }
        change(&mut self.table, path).map_err(errno)?;
        if let Err(e) = self.sync() {
            // `undo` reverts what `change` just did to the same path, so it cannot fail.
            let _ = undo(&mut self.table, path);
            return Err(e);
        }
        Ok(())
    }

    fn preserve(&mut self, path: &[DevId]) -> Result {
        self.update(path, DeviceTable::preserve, DeviceTable::unpreserve)
    }

    fn unpreserve(&mut self, path: &[DevId]) -> Result {
        self.update(path, DeviceTable::unpreserve, DeviceTable::preserve)
    }
}

/// A change to the device table: [`Table::preserve`] or [`Table::unpreserve`].
type TableOp = fn(&mut DeviceTable, &[DevId]) -> Result<(), TableError>;

struct Tables {
    outgoing: Option<OutgoingRecord>,
    incoming: Option<DeviceTable>,
    /// Incoming devices a driver claimed; they are not released when the claim timeout passes.
    /// Room for every incoming device is made when the table comes in, so that a claim cannot
    /// fail for memory.
    claimed: KVec<DevId>,
    /// The handed-over record was looked for (found or not).
    incoming_checked: bool,
    /// The previous kernel handed over preserved devices; never cleared.
    had_incoming: bool,
}

static TABLES: SetOnce<Pin<KBox<RwSemaphore<Tables>>>> = SetOnce::new();

/// The tables, created on first use (which may be PCI enumeration, before any initcall of
/// ours could run).
fn tables() -> Result<&'static RwSemaphore<Tables>> {
    if TABLES.as_ref().is_none() {
        let new = KBox::pin_init(
            new_rwsem!(Tables {
                outgoing: None,
                incoming: None,
                claimed: KVec::new(),
                incoming_checked: false,
                had_incoming: false,
            }),
            GFP_KERNEL,
        )?;
        // Losing a race to another first user is fine: theirs is as good as ours.
        TABLES.populate(new);
    }
    TABLES.as_ref().map(|t| &**t).ok_or(EAGAIN)
}

/// The device's address, as the record names it.
fn id_of(dev: &pci::Device) -> DevId {
    DevId {
        domain: dev.domain_nr(),
        bdf: dev.dev_id(),
    }
}

/// `dev` and the bridges above it, walking up: the path [`DeviceTable::finish`] takes, with no
/// memory to allocate.
fn walk_up(dev: &pci::Device) -> impl Iterator<Item = DevId> + Clone {
    core::iter::successors(Some(ARef::from(dev)), |d| d.upstream_bridge()).map(|d| id_of(&d))
}

/// The device and the bridges above it, from the one nearest the root down.
fn path_of(dev: &pci::Device) -> Result<KVec<DevId>> {
    let mut path = KVec::new();
    for id in walk_up(dev) {
        path.push(id, GFP_KERNEL)?;
    }
    path.reverse();
    Ok(path)
}

/// Why the handed-over table was not taken.
enum Rejected {
    /// The header is not in memory KHO handed over.
    NotHandedOver,
    /// The chain of entry blocks is corrupt.
    Chain(BlockChainError),
    /// The header or the entries are invalid.
    Invalid(Invalid),
    /// Out of memory.
    NoMemory,
}

impl kernel::fmt::Display for Rejected {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self {
            Self::NotHandedOver => f.write_str("the header is not in memory KHO handed over"),
            Self::Chain(e) => f.write_fmt(fmt!("entry blocks: {e}")),
            Self::Invalid(why) => kernel::fmt::Display::fmt(why, f),
            Self::NoMemory => f.write_str("out of memory"),
        }
    }
}

/// Rebuilds the table the previous kernel handed over at `handle`, and frees the KHO memory
/// it was in, taken or not.
/// The table handed over, and the bytes of KHO memory it came in: the header's allocation and
/// the blocks of entries.
fn load_incoming(handle: Handle) -> Result<(DeviceTable, usize), Rejected> {
    let mem = handle.restore().map_err(|_| Rejected::NotHandedOver)?;
    let mut bytes = [0; HEADER_SIZE];
    bytes.copy_from_slice(&mem.as_bytes()[..HEADER_SIZE]);
    let header = Header::decode(&bytes);
    // Every version keeps the entry chain's address where this one has it (`pci.h`), so the
    // chain is freed even when its entries cannot be read; each block is checked first.
    let raw = KhoBlockSet::<[u8; ENTRY_SIZE]>::read_incoming(header.devices);
    if header.version != VERSION {
        return Err(Rejected::Invalid(Invalid::Version(header.version)));
    }
    let raw = raw.map_err(Rejected::Chain)?;
    // The outgoing kernel fills every block but the last (`KhoBlockSet::write_all`).
    let per_block = KhoBlockSet::<[u8; ENTRY_SIZE]>::ENTRIES_PER_BLOCK;
    let kho_bytes = mem.size() + raw.len().div_ceil(per_block) * PAGE_SIZE;
    let table = Table::load(&header, &raw, KVec::new()).map_err(|e| match e {
        LoadError::Invalid(why) => Rejected::Invalid(why),
        LoadError::NoMemory => Rejected::NoMemory,
    })?;
    Ok((table, kho_bytes))
}

struct PciFlb;

#[vtable]
impl FlbOps for PciFlb {
    type Outgoing = ();
    type Incoming = ();

    fn preserve() -> Result<(Handle, ())> {
        let record = OutgoingRecord::new()?;
        let handle = Handle::of(&record.header);
        tables()?.write().outgoing = Some(record);
        Ok((handle, ()))
    }

    fn unpreserve(_handle: Handle, _obj: ()) {
        if let Ok(tables) = tables() {
            if let Some(record) = tables.write().outgoing.take() {
                if !record.table.is_empty() {
                    pr_warn!(
                        "{} devices still preserved when the last file went\n",
                        record.table.len()
                    );
                }
            }
        }
    }

    fn retrieve(handle: Handle) -> Result<()> {
        let loaded = load_incoming(handle);
        let mut tables = tables()?.write();
        match loaded {
            Ok((table, kho_bytes)) => {
                pr_info!(
                    "{} preserved devices and bridges handed over: {} bytes of entries in {} bytes of KHO memory\n",
                    table.len(),
                    table.len() * ENTRY_SIZE,
                    kho_bytes
                );
                tables.had_incoming |= !table.is_empty();
                if tables.claimed.reserve(table.len(), GFP_KERNEL).is_err() {
                    pr_err!("out of memory for the handed-over state; booting as if no device had been preserved\n");
                    tables.incoming = None;
                    return Ok(());
                }
                if !table.is_empty() {
                    schedule_release();
                }
                tables.incoming = Some(table);
            }
            Err(why) => {
                pr_err!(
                    "rejecting the handed-over state: {}; booting as if no device had been preserved\n",
                    why
                );
                tables.incoming = None;
            }
        }
        // Returning an error would make LUO retry at finish time; the verdict is final.
        Ok(())
    }

    fn finish(_obj: ()) {
        // Every file that could claim a device is finished now: a device still unclaimed (its
        // record unreadable, or its file never retrieved) need not wait for the timeout.
        if let Err(e) = release_unclaimed(Release::Finished) {
            pr_err!("cannot release the unclaimed incoming devices: {:?}\n", e);
        }
        let Ok(tables) = tables() else { return };
        if let Some(table) = tables.write().incoming.take() {
            for entry in table.entries() {
                pr_warn!("{} was preserved but never finished\n", entry.id);
            }
        }
    }
}

/// The FLB every handler of PCI device files registers (`pci_liveupdate_register_flb()`).
#[export_name = "pci_liveupdate_flb"]
static PCI_FLB: Flb<PciFlb> = Flb::new(COMPATIBLE);

/// Looks the handed-over record up once, without holding our lock (LUO calls back into us).
fn check_incoming() {
    let Ok(tables) = tables() else { return };
    if tables.read().incoming_checked {
        return;
    }
    match PCI_FLB.incoming() {
        // The reference only had to trigger retrieve(); our copy outlives it.
        Ok(incoming) => drop(incoming),
        Err(e) if e == ENODATA || e == ENOENT || e == EOPNOTSUPP => {}
        Err(e) => pr_err!("cannot retrieve the handed-over state: {:?}\n", e),
    }
    tables.write().incoming_checked = true;
}

/// Preserves `dev` (and counts it on the bridges above it) for the next kernel.
///
/// Called from a file handler's preserve, after LUO preserved the PCI FLB. Errors: `EINVAL` for
/// a virtual function (its BDF is not stable) or while a device is frozen for the kexec,
/// `EBUSY` when already preserved, `ENOENT` outside a preserve (no FLB), `ENOMEM`.
fn preserve(dev: &pci::Device) -> Result {
    if dev.is_virtfn() {
        return Err(EINVAL);
    }
    let path = path_of(dev)?;
    let mut tables = tables()?.write();
    tables.outgoing.as_mut().ok_or(ENOENT)?.preserve(&path)
}

/// Undoes [`preserve`].
fn unpreserve(dev: &pci::Device) -> Result {
    let path = path_of(dev)?;
    let mut tables = tables()?.write();
    tables.outgoing.as_mut().ok_or(ENOENT)?.unpreserve(&path)
}

/// The kexec is under way for `dev`: its interrupts are masked at the device, and no preserve
/// or unpreserve is allowed until [`unfreeze`].
fn freeze(dev: &pci::Device) -> Result {
    let mut tables = tables()?.write();
    let record = tables.outgoing.as_mut().ok_or(ENOENT)?;
    let id = id_of(dev);
    record.table.refcount(id).ok_or(ENOENT)?;
    if record.frozen.iter().any(|f| f.id == id) {
        return Err(EBUSY);
    }
    record.frozen.reserve(1, GFP_KERNEL)?;
    let masked = interrupts::mask(dev).inspect_err(|e| {
        dev_err!(dev.as_ref(), "cannot mask its interrupts: {:?}\n", e);
    })?;
    // Room was reserved above.
    let _ = record.frozen.push_within_capacity(Frozen { id, masked });
    // Nothing rewrites the record from here on.
    #[cfg(CONFIG_PCI_LIVEUPDATE_CORRUPT_TEST)]
    corrupt::apply(record);
    Ok(())
}

/// The kexec was cancelled for `dev`: its interrupts are as they were before [`freeze`].
fn unfreeze(dev: &pci::Device) {
    let Ok(tables) = tables() else { return };
    let mut tables = tables.write();
    let Some(record) = tables.outgoing.as_mut() else {
        return;
    };
    let id = id_of(dev);
    let Some(at) = record.frozen.iter().position(|f| f.id == id) else {
        return;
    };
    if let Ok(frozen) = record.frozen.remove(at) {
        if let Err(e) = interrupts::unmask(dev, &frozen.masked) {
            dev_err!(dev.as_ref(), "cannot unmask its interrupts: {:?}\n", e);
        }
    }
}

/// Whether the previous kernel preserved `dev` and its driver has not finished with it.
fn is_incoming(dev: &pci::Device) -> bool {
    check_incoming();
    let Ok(tables) = tables() else { return false };
    tables
        .read()
        .incoming
        .as_ref()
        .is_some_and(|t| t.refcount(id_of(dev)).is_some())
}

/// Whether no bus or slot reset may reach `dev`: it keeps its state for a Live Update, frozen
/// for the kexec (its record is written) or incoming (not taken back yet). Such resets are
/// asked for on behalf of other devices, a sibling's hot reset for one.
fn blocks_reset(dev: &pci::Device) -> bool {
    if is_incoming(dev) {
        return true;
    }
    let Ok(tables) = tables() else { return false };
    let id = id_of(dev);
    tables
        .read()
        .outgoing
        .as_ref()
        .is_some_and(|r| r.frozen.iter().any(|f| f.id == id))
}

/// Enumeration found `dev`: say so when it comes preserved from the previous kernel, and keep
/// it quiet until its driver takes it back. The first call validates the handed-over record,
/// so it is never used half-read.
fn setup_device(dev: &pci::Device) {
    if !is_incoming(dev) {
        return;
    }
    dev_info!(
        dev.as_ref(),
        "preserved by the previous kernel; incoming until its driver finishes it\n"
    );
    // The previous kernel masked the interrupts of the devices it preserved; one that did not
    // would leave them to fire before any handler is ready here. Bridges only lead to the
    // preserved devices: their interrupts are their own driver's.
    if dev.is_bridge() {
        return;
    }
    match interrupts::mask(dev) {
        Ok(masked) if masked.changed_anything() => dev_warn!(
            dev.as_ref(),
            "its interrupts came unmasked from the previous kernel; masked them\n"
        ),
        Ok(_) => {}
        Err(e) => dev_err!(dev.as_ref(), "cannot mask its interrupts: {:?}\n", e),
    }
}

/// Whether enumeration must keep the bus numbers bridges come up with, `pci=assign-busses`
/// notwithstanding: the previous kernel preserved devices, and new bus numbers would change
/// their BDFs. All bridges keep theirs, since renumbering any could shift the others, and they
/// keep them after the devices are finished, since those are still running.
fn keep_bus_numbers(_bridge: &pci::Device) -> bool {
    check_incoming();
    tables().is_ok_and(|t| t.read().had_incoming)
}

/// A driver takes the incoming `dev` back: it stays incoming until the driver finishes it, and
/// is not released when the claim timeout passes.
fn claim(dev: &pci::Device) -> Result {
    check_incoming();
    let id = id_of(dev);
    let mut guard = tables()?.write();
    let tables = &mut *guard;
    let table = tables.incoming.as_ref().ok_or(ENOENT)?;
    if dev.is_bridge() || table.refcount(id).is_none() {
        return Err(ENOENT);
    }
    if tables.claimed.contains(&id) {
        return Err(EBUSY);
    }
    // Room for every incoming device was made when the table came in.
    tables.claimed.push_within_capacity(id).map_err(|_| ENOMEM)
}

/// The driver is done with the incoming `dev`.
fn finish(dev: &pci::Device) -> Result {
    check_incoming();
    let id = id_of(dev);
    let mut guard = tables()?.write();
    let tables = &mut *guard;
    let table = tables.incoming.as_mut().ok_or(ENOENT)?;
    table.finish(walk_up(dev)).map_err(errno)?;
    tables.claimed.retain(|c| *c != id);
    Ok(())
}

/// Gives the incoming `dev`, whose state no driver takes back, to the normal path: no longer
/// incoming, bus mastering off, reset. It stops being incoming first, as bus resets of incoming
/// devices are refused.
fn release(dev: &pci::Device) -> Result {
    // A bridge is finished with the devices below it, never on its own.
    if dev.is_bridge() {
        return Err(EINVAL);
    }
    finish(dev)?;
    reset_released(dev)
}

/// Resets `dev`, just released, as at boot: bus mastering off first, so that nothing it does
/// until the reset reaches memory.
fn reset_released(dev: &pci::Device) -> Result {
    dev.clear_master();
    dev.reset_function()
}

/// Releases the incoming devices no driver claimed within the claim timeout, from the workqueue
/// for long work items: each reset may wait for the device a while.
#[pin_data]
struct ReleaseUnclaimed {
    #[pin]
    work: DelayedWork<ReleaseUnclaimed>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for ReleaseUnclaimed { self.work }
}

impl WorkItem for ReleaseUnclaimed {
    type Pointer = Arc<Self>;

    fn run(_this: Arc<Self>) {
        if let Err(e) = release_unclaimed(Release::Timeout) {
            pr_err!("cannot release the unclaimed incoming devices: {:?}\n", e);
        }
    }
}

/// Arms the claim timeout for the devices just handed over.
fn schedule_release() {
    let seconds = module_parameters::claim_timeout.value();
    if seconds == 0 {
        return;
    }
    let work = Arc::pin_init(
        pin_init!(ReleaseUnclaimed {
            work <- new_delayed_work!("pci_liveupdate::release"),
        }),
        GFP_KERNEL,
    );
    match work {
        Ok(work) => {
            let delay = msecs_to_jiffies(seconds.saturating_mul(1000));
            let _ = workqueue::system_long().enqueue_delayed(work, delay);
        }
        Err(e) => pr_err!(
            "cannot arm the claim timeout ({:?}): unclaimed devices stay incoming\n",
            e
        ),
    }
}

/// Why unclaimed devices are released.
#[derive(Clone, Copy)]
enum Release {
    /// The claim timeout passed.
    Timeout,
    /// The last file of the handlers was finished.
    Finished,
}

/// Gives every incoming endpoint no driver claimed to the normal path: no longer incoming,
/// bus mastering off, reset. Its bridges are only paths to it and stay as they are.
///
/// One device at a time, in the table's order, so that nothing needs memory: a transient
/// shortage must not leave a device incoming for good.
fn release_unclaimed(why: Release) -> Result {
    let tables = tables()?;
    let seconds = module_parameters::claim_timeout.value();
    let mut after = None;
    loop {
        let next = {
            let guard = tables.read();
            let Some(table) = guard.incoming.as_ref() else {
                return Ok(());
            };
            let next = table
                .entries()
                .map(|e| e.id)
                .find(|id| Some(*id) > after && !guard.claimed.contains(id));
            next
        };
        let Some(id) = next else { return Ok(()) };
        after = Some(id);
        // Looked up without our lock: enumeration calls into us with the PCI bus locks held.
        let [bus, devfn] = id.bdf.to_be_bytes();
        let Some(dev) = pci::Device::get(id.domain, bus, devfn) else {
            continue;
        };
        if dev.is_bridge() {
            continue;
        }
        {
            let mut guard = tables.write();
            let tables = &mut *guard;
            let Some(table) = tables.incoming.as_mut() else {
                return Ok(());
            };
            // Claimed or finished meanwhile: its driver has it.
            if tables.claimed.contains(&id) || table.finish(walk_up(&dev)).is_err() {
                continue;
            }
        }
        match (why, reset_released(&dev)) {
            (Release::Timeout, Ok(())) => dev_warn!(
                dev.as_ref(),
                "no driver claimed it within {} s of boot: released, bus mastering off, reset\n",
                seconds
            ),
            (Release::Finished, Ok(())) => dev_warn!(
                dev.as_ref(),
                "no driver claimed it before its files were finished: released, bus mastering off, reset\n"
            ),
            (_, Err(e)) => dev_warn!(
                dev.as_ref(),
                "released unclaimed, bus mastering off, but cannot reset it: {:?}\n",
                e
            ),
        }
    }
}

/// A driver is about to bind to `dev`. While `dev` is incoming, only a driver that leaves its
/// DMA to userspace (`driver_managed_dma`: VFIO drivers) may take it: it is still its VM's, and
/// any other driver would set it up for the kernel's use, starting with a reset. Bridges above
/// it go to their own driver as usual.
fn check_probe(dev: &pci::Device, driver_managed_dma: bool) -> Result {
    if driver_managed_dma || dev.is_bridge() || !is_incoming(dev) {
        return Ok(());
    }
    dev_warn!(
        dev.as_ref(),
        "preserved by the previous kernel: only a VFIO driver may bind until it is finished\n"
    );
    Err(EBUSY)
}

kernel::export_pci_device_fns! {
    pci_liveupdate_preserve() -> c_int = preserve;
    pci_liveupdate_unpreserve() -> c_int = unpreserve;
    pci_liveupdate_freeze() -> c_int = freeze;
    pci_liveupdate_unfreeze() -> () = unfreeze;
    pci_liveupdate_is_incoming() -> bool = is_incoming;
    pci_liveupdate_claim() -> c_int = claim;
    pci_liveupdate_setup_device() -> () = setup_device;
    pci_liveupdate_check_probe(driver_managed_dma: bool) -> c_int = check_probe;
    pci_liveupdate_keep_bus_numbers() -> bool = keep_bus_numbers;
    pci_liveupdate_blocks_reset() -> bool = blocks_reset;
    pci_liveupdate_finish() -> c_int = finish;
    pci_liveupdate_release() -> c_int = release;
}

#[cfg(CONFIG_PCI_LIVEUPDATE_KUNIT_TEST)]
#[kunit_tests(rust_pci_liveupdate)]
mod tests {
    use super::*;
    use abi::Entry;
    use kernel::{bindings, sync::aref::ARef};

    /// The devices of the test machine (tools/vmtest): root port 00:01.0, and two functions of
    /// one device behind it, 01:00.0 and 01:00.1. Elsewhere `None`, the test marked skipped.
    fn machine() -> Option<[ARef<pci::Device>; 3]> {
        Some([
            pci::kunit_machine_device(0, 0)?,
            pci::kunit_machine_device(1, 0)?,
            pci::kunit_machine_device(1, 1)?,
        ])
    }

    /// What the next kernel would read: the header, and the entries it points to.
    fn handed_over(record: &OutgoingRecord) -> Result<(Header, KVec<Entry>)> {
        let mut bytes = [0; HEADER_SIZE];
        bytes.copy_from_slice(&record.header.as_bytes()[..HEADER_SIZE]);
        let mut entries = KVec::new();
        for raw in record.entries.read_all()?.iter() {
            entries.push(Entry::decode(raw), GFP_KERNEL)?;
        }
        Ok((Header::decode(&bytes), entries))
    }

    #[test]
    fn bridges_count_the_devices_preserved_below() -> Result {
        let Some([port, f0, f1]) = machine() else {
            return Ok(());
        };
        let mut record = OutgoingRecord::new()?;
        record.preserve(&path_of(&f0)?)?;
        assert_eq!(record.table.refcount(id_of(&port)), Some(1));
        assert_eq!(record.table.refcount(id_of(&f0)), Some(1));
        record.preserve(&path_of(&f1)?)?;
        assert_eq!(record.table.refcount(id_of(&port)), Some(2));

        let (header, entries) = handed_over(&record)?;
        assert_eq!((header.version, header.nr_devices), (VERSION, 3));
        assert_eq!(header.devices, record.entries.head_phys());
        assert_eq!(entries.len(), 3);
        assert!(entries
            .iter()
            .zip(record.table.entries())
            .all(|(a, b)| *a == b));

        record.unpreserve(&path_of(&f0)?)?;
        assert_eq!(record.table.refcount(id_of(&port)), Some(1));
        assert_eq!(record.table.refcount(id_of(&f0)), None);
        record.unpreserve(&path_of(&f1)?)?;
        assert!(record.table.is_empty());
        let (header, entries) = handed_over(&record)?;
        assert_eq!((header.nr_devices, header.devices), (0, 0));
        assert!(entries.is_empty());
        Ok(())
    }

    #[test]
    fn refused_changes_are_reported_and_change_nothing() -> Result {
        let Some([_, f0, f1]) = machine() else {
            return Ok(());
        };
        let mut record = OutgoingRecord::new()?;
        record.preserve(&path_of(&f0)?)?;
        assert_eq!(record.preserve(&path_of(&f0)?), Err(EBUSY));
        assert_eq!(record.unpreserve(&path_of(&f1)?), Err(ENOENT));
        let masked = interrupts::mask(&f0)?;
        let id = id_of(&f0);
        record.frozen.push(Frozen { id, masked }, GFP_KERNEL)?;
        assert_eq!(record.preserve(&path_of(&f1)?), Err(EINVAL));
        assert_eq!(record.unpreserve(&path_of(&f0)?), Err(EINVAL));
        assert_eq!(handed_over(&record)?.0.nr_devices, 2);
        interrupts::unmask(&f0, &masked)
    }

    #[test]
    fn interrupts_are_masked_at_the_device_then_as_before() -> Result {
        let Some([_, f0, _]) = machine() else {
            return Ok(());
        };
        let intx_disable = bindings::PCI_COMMAND_INTX_DISABLE as u16;
        let before = f0.command();
        f0.config_write16(bindings::PCI_COMMAND as u16, before & !intx_disable)?;
        let masked = interrupts::mask(&f0)?;
        assert!(masked.changed_anything());
        assert_ne!(f0.command() & intx_disable, 0);
        // Masking what is masked changes nothing, and so has nothing to undo.
        assert!(!interrupts::mask(&f0)?.changed_anything());
        interrupts::unmask(&f0, &masked)?;
        assert_eq!(f0.command() & intx_disable, 0);
        f0.config_write16(bindings::PCI_COMMAND as u16, before)
    }

    #[test]
    fn paths_run_from_the_root_port_down() -> Result {
        let Some([_, _, f1]) = machine() else {
            return Ok(());
        };
        let path = path_of(&f1)?;
        assert_eq!(path.len(), 2);
        assert_eq!((path[0].bdf, path[1].bdf), (0x0008, 0x0101));
        Ok(())
    }

    #[test]
    fn corrupted_records_are_rejected() -> Result {
        let Some([_, f0, f1]) = machine() else {
            return Ok(());
        };
        let mut record = OutgoingRecord::new()?;
        record.preserve(&path_of(&f0)?)?;
        record.preserve(&path_of(&f1)?)?;
        let (good_header, good) = handed_over(&record)?;
        let raw = |entries: &[Entry]| -> Result<KVec<[u8; ENTRY_SIZE]>> {
            let mut out = KVec::new();
            for e in entries {
                out.push(e.encode(), GFP_KERNEL)?;
            }
            Ok(out)
        };
        let rejects = |header: Header, entries: &[Entry]| -> Result<bool> {
            Ok(Table::load(&header, &raw(entries)?, KVec::new()).is_err())
        };
        let mut h = good_header;
        assert!(!rejects(h, &good)?);
        for version in [0, 1, VERSION + 1, u32::MAX] {
            h.version = version;
            assert!(rejects(h, &good)?);
        }
        h = good_header;
        for nr_devices in [0, 2, 4, u32::MAX] {
            h.nr_devices = nr_devices;
            assert!(rejects(h, &good)?);
        }
        let mut e = KVec::new();
        e.extend_from_slice(&good, GFP_KERNEL)?;
        e[2] = e[0];
        assert!(rejects(good_header, &e)?);
        e[2] = good[2];
        e[1].id.domain = 0x8000_0000;
        assert!(rejects(good_header, &e)?);
        e[1] = good[1];
        e[0].refcount = 0;
        assert!(rejects(good_header, &e)?);
        assert!(rejects(good_header, &[])?);
        Ok(())
    }
}
