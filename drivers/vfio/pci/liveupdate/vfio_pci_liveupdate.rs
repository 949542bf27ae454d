// SPDX-License-Identifier: GPL-2.0

//! The vfio-pci Live Update file handler.
//!
//! A VMM preserves the file of a vfio-pci device, opened through its cdev and bound to
//! iommufd, in a Live Update session. This handler records the device with the PCI core, so
//! that it keeps its address across the kexec, and writes its virtual config space, saved PCI
//! state and bus-master state into KHO memory (layout: [`abi`]).
//!
//! Between freeze and the kexec the device's host interrupts are held, the PCI core masks them
//! at the device, and state-changing ioctls and config writes are refused; the freeze waits for
//! those already under way, so the record written at freeze is the device's last state. A
//! cancelled kexec (unfreeze) undoes all that.
//! The kexec then clears the device's bus mastering like every device's: nothing translates
//! its DMA until the VMM has an IOMMU domain for it again. The exception is a device whose
//! VT-d translation is handed over (`CONFIG_INTEL_IOMMU_LIVEUPDATE`): its DMA goes on through
//! the kexec, and in the next kernel its session cannot be finished (`can_finish`) until the
//! VMM has attached it, since finishing may free the memory the handed-over tables map.
//!
//! In the next kernel the VMM retrieves a new file for the device, and the record is checked
//! against the device found at its address. The first open skips the reset and takes the
//! preserved state instead of deriving it from a reset device, and leaves INTx masked. The
//! first attach of the device to an IOAS or HWPT gives it bus mastering back, if it had it:
//! its DMA goes through the VMM's mappings again from then on.

use kernel::{
    bindings,
    fs::File,
    kho::{Incoming, KhoMem, Outgoing},
    liveupdate::{FileHandler, Handle, Preservation, Registration, RetrieveStatus},
    new_condvar, new_mutex,
    pci::{
        self,
        liveupdate::DmaStops,
        saved_state::{SavedCap, SavedState, SavedStateRef},
    },
    prelude::*,
    sync::{aref::ARef, CondVar, Mutex, SetOnce},
    uaccess::UserPtr,
    vfio::{self, FeatureRequest, PciCoreDevice},
};

pub mod abi;
#[cfg(CONFIG_VFIO_PCI_LIVEUPDATE_CORRUPT_TEST)]
mod corrupt;

use abi::{Cap, Identity, Record, State};

// The handler is part of vfio-pci-core, whose module init and exit register and unregister it.
kernel::module_part! {
    type: VfioPciLiveupdate,
    name: "vfio_pci_liveupdate",
    init: vfio_pci_liveupdate_init,
    exit: vfio_pci_liveupdate_exit,
}

/// A device's address: PCI domain, and bus, device and function.
#[derive(Clone, Copy, PartialEq, Eq)]
struct DevAddr {
    domain: u32,
    bdf: u16,
}

impl kernel::fmt::Display for abi::Invalid {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl DevAddr {
    fn of(dev: &pci::Device) -> Self {
        Self {
            domain: dev.domain_nr(),
            bdf: dev.dev_id(),
        }
    }

    fn device(self) -> Option<ARef<pci::Device>> {
        let [bus, devfn] = self.bdf.to_be_bytes();
        pci::Device::get(self.domain, bus, devfn)
    }
}

/// What the first open of a retrieved device takes instead of resetting it: its record,
/// checked against the device and converted when the device was retrieved.
struct Kept {
    saved: SavedState,
    vconfig: KVec<u8>,
    reset_works: bool,
    bus_master: bool,
}

/// How far a retrieved device was taken back.
enum Stage {
    /// Retrieved: the first open takes this state instead of resetting the device.
    Retrieved(Kept),
    /// The first open skipped the reset and restores this state once its config space is set
    /// up. The open holds the state from its start, so a finish meanwhile cannot leave the
    /// device with neither reset nor restored state.
    Opening(Kept),
    /// Restored by the first open; `bus_master` comes back at the first attach to an IOAS.
    Restored { bus_master: bool },
    /// Attached with bus mastering as it was, or its open or restore failed: nothing left to
    /// do.
    TakenBack,
}

/// A device retrieved in this kernel, until the session is finished and no open is under way.
struct Retrieved {
    /// The handle it was retrieved with, which `finish` names it by.
    handle: u64,
    addr: DevAddr,
    stage: Stage,
    /// The session was finished while the device was [`Stage::Opening`]: the open completes,
    /// then the device is forgotten.
    finished: bool,
}

/// A device whose file is preserved, in the outgoing kernel.
struct Preserved {
    addr: DevAddr,
    /// Its user requires its DMA to go on through the kexec
    /// (`VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA`): the freeze fails rather than stop it.
    dma_required: bool,
}

/// What the handler tracks across its callbacks and vfio-pci-core's calls.
struct Devices {
    /// Outgoing kernel: devices whose file is preserved, until unpreserved.
    preserved: KVec<Preserved>,
    /// Outgoing kernel: preserved devices between freeze and the kexec (or unfreeze).
    frozen: KVec<DevAddr>,
    /// State changes under way (resets, interrupt set-up, config writes), counted per device:
    /// a freeze waits until there are none left for its device.
    changing: KVec<(DevAddr, usize)>,
    /// Incoming kernel: retrieved devices, until finished.
    retrieved: KVec<Retrieved>,
}

impl Devices {
    /// Runs `f` on the retrieved device at `addr`, then forgets it if it was finished and no
    /// open is under way any more; `None` when `addr` is none.
    fn with_retrieved<R>(
        &mut self,
        addr: DevAddr,
        f: impl FnOnce(&mut Retrieved) -> R,
    ) -> Option<R> {
        let at = self.retrieved.iter().position(|r| r.addr == addr)?;
        let out = f(&mut self.retrieved[at]);
        let entry = &self.retrieved[at];
        if entry.finished && !matches!(entry.stage, Stage::Opening(_)) {
            if let Ok(gone) = self.retrieved.remove(at) {
                warn_if_left_without_bus_master(gone);
            }
        }
        Some(out)
    }
}

/// A device finished before its first attach stays without bus mastering: say so.
fn warn_if_left_without_bus_master(retrieved: Retrieved) {
    if let Stage::Restored { bus_master: true } = retrieved.stage {
        if let Some(dev) = retrieved.addr.device() {
            dev_warn!(
                dev.as_ref(),
                "finished before any IOAS was attached: bus mastering stays off\n"
            );
        }
    }
}

/// The tracked devices, and what a freeze waits on for state changes to end.
#[pin_data]
struct Tracked {
    #[pin]
    devices: Mutex<Devices>,
    #[pin]
    changes_ended: CondVar,
}

static TRACKED: SetOnce<Pin<KBox<Tracked>>> = SetOnce::new();

/// What the handler tracks; `None` before the module is initialised, when there is nothing.
fn tracked() -> Option<&'static Tracked> {
    TRACKED.as_ref().map(|t| &**t)
}

/// The tracked devices; `None` before the module is initialised, when none can exist.
fn devices() -> Option<&'static Mutex<Devices>> {
    tracked().map(|t| &t.devices)
}

/// The identity a record must carry to be taken for `dev`.
fn identity_of(dev: &pci::Device) -> Identity {
    Identity {
        domain: dev.domain_nr(),
        bdf: dev.dev_id(),
        vendor: dev.vendor_id().as_raw(),
        device: dev.device_id(),
        class: dev.pci_class().as_raw(),
    }
}

/// The capabilities of a [`State`] built by [`with_state`].
type Caps<'a> = core::iter::Copied<core::slice::Iter<'a, Cap<'a>>>;

/// Hands `f` the record of a device: `identity`, `flags`, its virtual config space and the
/// PCI state vfio-pci-core would restore.
fn with_state<R>(
    identity: Identity,
    flags: u16,
    vconfig: &[u8],
    saved: SavedStateRef<'_>,
    f: impl for<'a> FnOnce(&State<'a, Caps<'a>>) -> Result<R>,
) -> Result<R> {
    let mut caps = KVec::new();
    for c in saved.caps() {
        caps.push(
            Cap {
                cap_nr: c.cap_nr,
                extended: c.extended,
                data: c.data,
            },
            GFP_KERNEL,
        )?;
    }
    f(&State {
        identity,
        flags,
        vconfig,
        config_header: saved.config_header(),
        caps: caps.iter().copied(),
    })
}

/// Reads `vdev`'s current state once and hands it to `f` as the record describes it.
fn with_record<R>(
    vdev: &PciCoreDevice,
    f: impl for<'a> FnOnce(&State<'a, Caps<'a>>) -> Result<R>,
) -> Result<R> {
    let dev = vdev.pci_dev();
    let mut vconfig = KVec::from_elem(0u8, vdev.cfg_size(), GFP_KERNEL)?;
    vdev.read_vconfig(&mut vconfig)?;
    // Without a saved state vfio-pci-core cannot restore the device on close; neither could
    // the next kernel, so such a device is not preserved.
    let saved = vdev.saved_state()?.ok_or(ENODATA)?;
    let mut flags = 0;
    if dev.command() & kernel::bindings::PCI_COMMAND_MASTER as u16 != 0 {
        flags |= abi::FLAG_BUS_MASTER;
    }
    if vdev.reset_works() {
        flags |= abi::FLAG_RESET_WORKS;
    }
    with_state(identity_of(dev), flags, &vconfig, saved, f)
}

/// The PCI state a validated record holds, laid out for the PCI core.
fn saved_state_of(record: &Record<'_>) -> Result<SavedState> {
    let caps = record.caps().map(|c| SavedCap {
        cap_nr: c.cap_nr,
        extended: c.extended,
        data: c.data,
    });
    SavedState::build(&record.config_header, caps)
}

/// Writes the record of `state` into `out`, which must be large enough.
fn write_record<'a>(dev: &pci::Device, state: &State<'a, Caps<'a>>, out: &mut [u8]) -> Result {
    abi::encode(state, out).map(|_| ()).map_err(|e| {
        dev_err!(dev.as_ref(), "cannot record the device: {:?}\n", e);
        EINVAL
    })
}

/// The BARs of `dev`, as it decodes them now.
fn bars_of(dev: &pci::Device) -> Result<[u32; abi::BARS]> {
    let mut bars = [0; abi::BARS];
    for (at, bar) in (bindings::PCI_BASE_ADDRESS_0 as u16..)
        .step_by(4)
        .zip(&mut bars)
    {
        *bar = dev.config_read32(at)?;
    }
    Ok(bars)
}

/// The record handed over for a device, checked whole against the device at its address,
/// whose BARs are `bars`, config space size included.
fn parse_record<'a>(
    mem: &'a KhoMem<Incoming>,
    dev: &pci::Device,
    bars: &[u32; abi::BARS],
) -> Result<Record<'a>, abi::Invalid> {
    let record = abi::parse(mem.as_bytes(), &identity_of(dev))?;
    record.check_device(bars, dev.config_space_size())?;
    Ok(record)
}

/// What the first open of a device takes from its validated `record`.
fn kept_state(record: &Record<'_>) -> Result<Kept> {
    // What the record does not store is zero.
    let mut vconfig = KVec::from_elem(0u8, record.config_size, GFP_KERNEL)?;
    vconfig[..record.vconfig.len()].copy_from_slice(record.vconfig);
    Ok(Kept {
        saved: saved_state_of(record)?,
        vconfig,
        reset_works: record.flags & abi::FLAG_RESET_WORKS != 0,
        bus_master: record.flags & abi::FLAG_BUS_MASTER != 0,
    })
}

/// Gives `dev`, which came from the previous kernel but whose state is not taken back, to
/// normal use (the PCI core resets it).
fn give_back(dev: &pci::Device) {
    if let Err(e) = dev.liveupdate_release() {
        dev_warn!(
            dev.as_ref(),
            "cannot give the device back as reset: {:?}\n",
            e
        );
    }
}

struct VfioPciHandler;

#[vtable]
impl FileHandler for VfioPciHandler {
    /// The device's record, rewritten at freeze.
    type Preserved = Pin<KBox<Mutex<KhoMem<Outgoing>>>>;

    /// Files of vfio-pci devices of physical functions. Variant drivers keep device state this
    /// handler does not preserve, and a VF's address is not stable across the kexec.
    fn can_preserve(file: &File) -> bool {
        PciCoreDevice::from_bound_cdev_file(file)
            .is_some_and(|vdev| vdev.is_vfio_pci() && !vdev.pci_dev().is_virtfn())
    }

    fn preserve(file: &File) -> Result<Preservation<Self::Preserved>> {
        let vdev = PciCoreDevice::from_bound_cdev_file(file).ok_or(EINVAL)?;
        let (mem, len, config_len, stored) = with_record(vdev, |record| {
            let len = abi::encoded_len(record);
            let mut mem = KhoMem::alloc_preserve(len)?;
            write_record(vdev.pci_dev(), record, mem.as_bytes_mut())?;
            let stored = abi::config_stored(record.vconfig);
            Ok((mem, len, record.vconfig.len(), stored))
        })?;
        let handle = Handle::of(&mem);
        let kho_size = mem.size();
        let state = KBox::pin_init(new_mutex!(mem), GFP_KERNEL)?;
        let devices = devices().ok_or(ENODEV)?;
        let addr = DevAddr::of(vdev.pci_dev());
        devices.lock().preserved.push(
            Preserved {
                addr,
                dma_required: false,
            },
            GFP_KERNEL,
        )?;
        // Last, so that nothing else can fail after the PCI core has the device.
        if let Err(e) = vdev.pci_dev().liveupdate_preserve() {
            devices.lock().preserved.retain(|p| p.addr != addr);
            return Err(e);
        }
        dev_info!(
            vdev.pci_dev().as_ref(),
            "preserved for Live Update: {}-byte record in {} bytes of KHO memory (config space {} of {} bytes, PCI state {})\n",
            len,
            kho_size,
            stored,
            config_len,
            len - abi::HEADER_SIZE - stored
        );
        Ok(Preservation { handle, state })
    }

    fn unpreserve(file: &File, _handle: Handle, _state: Self::Preserved) {
        // Dropping the state frees the record.
        if let Some(vdev) = PciCoreDevice::from_bound_cdev_file(file) {
            if let Some(devices) = devices() {
                let addr = DevAddr::of(vdev.pci_dev());
                devices.lock().preserved.retain(|p| p.addr != addr);
            }
            if vdev.pci_dev().liveupdate_unpreserve().is_err() {
                dev_err!(
                    vdev.pci_dev().as_ref(),
                    "the PCI core lost a preserved device\n"
                );
            }
        }
    }

    fn freeze(file: &File, state: Pin<&Mutex<KhoMem<Outgoing>>>, _handle: &mut Handle) -> Result {
        let vdev = PciCoreDevice::from_bound_cdev_file(file).ok_or(EINVAL)?;
        let dev = vdev.pci_dev();
        let tracked = tracked().ok_or(ENODEV)?;
        let addr = DevAddr::of(dev);
        let mut devices = tracked.devices.lock();
        devices.frozen.push(addr, GFP_KERNEL)?;
        // New state changes are refused from here on; the record must come after the last one.
        while devices.changing.iter().any(|(a, _)| *a == addr) {
            tracked.changes_ended.wait(&mut devices);
        }
        drop(devices);
        vdev.hold_irqs(true);
        let frozen = dev.liveupdate_freeze().and_then(|()| {
            with_record(vdev, |record| {
                let mut mem = state.lock();
                write_record(dev, record, mem.as_bytes_mut())?;
                #[cfg(CONFIG_VFIO_PCI_LIVEUPDATE_CORRUPT_TEST)]
                corrupt::apply(dev, mem.as_bytes_mut());
                Ok(())
            })
        });
        // Last: once handed over, the translation is what the kexec leaves bus mastering on for.
        #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
        let frozen = frozen
            .and_then(|()| dev.liveupdate_freeze_translation())
            .and_then(|handed_over| {
                if handed_over || !dma_required(addr) {
                    return Ok(());
                }
                dev_err!(
                    dev.as_ref(),
                    "refusing the kexec: its user requires its DMA to go on through it, and it would stop (see above)\n"
                );
                Err(EINVAL)
            });
        if let Err(e) = frozen {
            dev.liveupdate_unfreeze();
            thaw(vdev);
            return Err(e);
        }
        Ok(())
    }

    fn unfreeze(file: &File, _state: Pin<&Mutex<KhoMem<Outgoing>>>, _handle: Handle) {
        if let Some(vdev) = PciCoreDevice::from_bound_cdev_file(file) {
            #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
            vdev.pci_dev().liveupdate_unfreeze_translation();
            vdev.pci_dev().liveupdate_unfreeze();
            thaw(vdev);
            dev_info!(
                vdev.pci_dev().as_ref(),
                "kexec cancelled: interrupts and state changes allowed again\n"
            );
        }
    }

    fn retrieve(handle: Handle) -> Result<ARef<File>> {
        let mem = handle.restore()?;
        let (domain, bdf) = abi::address(mem.as_bytes()).map_err(|e| {
            pr_err!("vfio-pci Live Update record rejected: {}\n", e);
            EINVAL
        })?;
        let addr = DevAddr { domain, bdf };
        let dev = addr.device().ok_or_else(|| {
            let [bus, devfn] = bdf.to_be_bytes();
            pr_err!(
                "no PCI device {:04x}:{:02x}:{:02x}.{} to retrieve\n",
                domain,
                bus,
                devfn >> 3,
                devfn & 7
            );
            ENODEV
        })?;
        let bars = bars_of(&dev)?;
        let record = parse_record(&mem, &dev, &bars);
        // A record that is not this device's must not cost the device its own record: it is
        // left incoming, for that record, or for the PCI core to release.
        if let Err(why) = record.as_ref().map(|_| ()) {
            if why.describes_another_device() {
                dev_err!(
                    dev.as_ref(),
                    "rejecting a vfio-pci record naming this device: {}; the device is left as it is\n",
                    why
                );
                return Err(EINVAL);
            }
        }
        if let Err(e) = dev.liveupdate_claim() {
            dev_err!(
                dev.as_ref(),
                "retrieved, but not incoming (never preserved, or released unclaimed): {:?}\n",
                e
            );
            return Err(EINVAL);
        }
        let stage = record
            .map_err(|why| {
                dev_err!(
                    dev.as_ref(),
                    "rejecting the preserved vfio-pci state: {}; the device is reset as usual\n",
                    why
                );
                EINVAL
            })
            .and_then(|record| kept_state(&record))
            .map(Stage::Retrieved);
        // The KHO memory goes once its content is checked and copied.
        drop(mem);
        let retrieved = stage.and_then(|stage| {
            let file = vfio::open_device_file(&dev)?;
            let devices = devices().ok_or(ENODEV)?;
            let entry = Retrieved {
                handle: handle.raw(),
                addr,
                stage,
                finished: false,
            };
            devices.lock().retrieved.push(entry, GFP_KERNEL)?;
            Ok(file)
        });
        if retrieved.is_err() {
            give_back(&dev);
        }
        retrieved
    }

    /// Not while the device still DMAs through the translation the previous kernel handed
    /// over: the memory it maps (guest memory in a kept memfd) is not held for the device in
    /// this kernel, and finishing the session may free it (a memfd never retrieved is freed
    /// at its finish). The VMM attaches the device to an IOAS first, or turns its bus
    /// mastering off; until then LUO fails the finish with `EBUSY` and nothing is lost.
    fn can_finish(_file: Option<&File>, handle: Handle, status: RetrieveStatus) -> bool {
        let addr = match status {
            RetrieveStatus::Failed(_) => return true,
            RetrieveStatus::NotAttempted => {
                let mut header = [0u8; abi::HEADER_SIZE];
                match handle.read(&mut header).map(|()| abi::address(&header)) {
                    Ok(Ok((domain, bdf))) => DevAddr { domain, bdf },
                    // The finish gives nothing back for a record it cannot read either.
                    _ => return true,
                }
            }
            RetrieveStatus::Retrieved => {
                let Some(devices) = devices() else {
                    return true;
                };
                let devices = devices.lock();
                match devices.retrieved.iter().find(|r| r.handle == handle.raw()) {
                    Some(retrieved) => retrieved.addr,
                    None => return true,
                }
            }
        };
        let Some(dev) = addr.device() else {
            return true;
        };
        if dma_reaches_handed_over_memory(&dev) {
            dev_warn!(
                dev.as_ref(),
                "cannot finish yet: it still DMAs through the translation the previous kernel handed over, into memory the finish may free; attach it to an IOAS or turn its bus mastering off first\n"
            );
            return false;
        }
        true
    }

    fn finish(_file: Option<&File>, handle: Handle, status: RetrieveStatus) {
        let dev = match status {
            // A failed retrieve already gave the device back.
            RetrieveStatus::Failed(_) => return,
            RetrieveStatus::NotAttempted => {
                let mem = handle.restore();
                let addr = mem
                    .as_ref()
                    .ok()
                    .and_then(|m| abi::address(m.as_bytes()).ok());
                match addr.and_then(|(domain, bdf)| DevAddr { domain, bdf }.device()) {
                    Some(dev) => dev,
                    None => {
                        pr_err!("vfio-pci Live Update: unusable record never retrieved\n");
                        return;
                    }
                }
            }
            RetrieveStatus::Retrieved => {
                let Some(devices) = devices() else { return };
                let mut devices = devices.lock();
                let Some(at) = devices
                    .retrieved
                    .iter()
                    .position(|r| r.handle == handle.raw())
                else {
                    return;
                };
                let Some(dev) = devices.retrieved[at].addr.device() else {
                    let _ = devices.retrieved.remove(at);
                    return;
                };
                if let Stage::Opening(_) = devices.retrieved[at].stage {
                    // The open under way restores the device, then it is forgotten.
                    devices.retrieved[at].finished = true;
                    drop(devices);
                    end_incoming(&dev);
                    return;
                }
                let Ok(retrieved) = devices.retrieved.remove(at) else {
                    return;
                };
                drop(devices);
                if !matches!(retrieved.stage, Stage::Retrieved(_)) {
                    warn_if_left_without_bus_master(retrieved);
                    end_incoming(&dev);
                    return;
                }
                dev
            }
        };
        dev_info!(
            dev.as_ref(),
            "never taken back after the Live Update; resetting it\n"
        );
        give_back(&dev);
    }
}

/// Whether the user of the preserved device at `addr` requires its DMA to go on through the
/// kexec.
fn dma_required(addr: DevAddr) -> bool {
    devices().is_some_and(|d| {
        d.lock()
            .preserved
            .iter()
            .any(|p| p.addr == addr && p.dma_required)
    })
}

/// `VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA`: whether the device's DMA would go on through a kexec
/// now, and the requirement that it does, for a preserved device.
fn feature_dma(vdev: &PciCoreDevice, flags: u32, arg: UserPtr, argsz: usize) -> Result {
    let size = core::mem::size_of::<bindings::vfio_device_feature_liveupdate_dma>();
    let dev = vdev.pci_dev();
    let addr = DevAddr::of(dev);
    match FeatureRequest::new(flags, arg, argsz, true, true, size)? {
        FeatureRequest::Probe => Ok(()),
        FeatureRequest::Get(mut out) => {
            let (mut flags, reason) = match dev.liveupdate_dma_stops()? {
                None => (bindings::VFIO_LIVEUPDATE_DMA_CONTINUES, 0),
                Some(why) => (0, dma_stops_reason(why)),
            };
            if dma_required(addr) {
                flags |= bindings::VFIO_LIVEUPDATE_DMA_REQUIRED;
            }
            out.write(&flags)?;
            out.write(&reason)
        }
        FeatureRequest::Set(mut input) => {
            let flags: u32 = input.read()?;
            let reason: u32 = input.read()?;
            if flags & !bindings::VFIO_LIVEUPDATE_DMA_REQUIRED != 0 || reason != 0 {
                return Err(EINVAL);
            }
            let required = flags != 0;
            let devices = devices().ok_or(ENODEV)?;
            let mut devices = devices.lock();
            let preserved = devices
                .preserved
                .iter_mut()
                .find(|p| p.addr == addr)
                .ok_or(EINVAL)?;
            if required && !cfg!(CONFIG_INTEL_IOMMU_LIVEUPDATE) {
                return Err(EOPNOTSUPP);
            }
            preserved.dma_required = required;
            Ok(())
        }
    }
}

/// The `VFIO_LIVEUPDATE_DMA_*` reason for `why`.
fn dma_stops_reason(why: DmaStops) -> u32 {
    match why {
        DmaStops::Unsupported => bindings::VFIO_LIVEUPDATE_DMA_UNSUPPORTED,
        DmaStops::NotKept => bindings::VFIO_LIVEUPDATE_DMA_NOT_KEPT,
        DmaStops::NothingMapped => bindings::VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED,
        DmaStops::Tables => bindings::VFIO_LIVEUPDATE_DMA_TABLES,
    }
}

/// Whether `dev` may still DMA through the tables the previous kernel handed over.
#[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
fn dma_reaches_handed_over_memory(dev: &pci::Device) -> bool {
    dev.liveupdate_translation_adopted() && dev.command() & bindings::PCI_COMMAND_MASTER as u16 != 0
}

/// Without the VT-d hand-over, no translation outlives the kexec.
#[cfg(not(CONFIG_INTEL_IOMMU_LIVEUPDATE))]
fn dma_reaches_handed_over_memory(_dev: &pci::Device) -> bool {
    false
}

/// The previous kernel's claim on `dev` ends: it is no longer incoming.
fn end_incoming(dev: &pci::Device) {
    if dev.liveupdate_finish().is_err() {
        dev_warn!(
            dev.as_ref(),
            "the PCI core did not know the device as incoming\n"
        );
    }
}

/// Undoes what freeze did to the device itself: lets its interrupts and its user go again.
fn thaw(vdev: &PciCoreDevice) {
    vdev.hold_irqs(false);
    if let Some(devices) = devices() {
        let addr = DevAddr::of(vdev.pci_dev());
        devices.lock().frozen.retain(|a| *a != addr);
    }
}

/// Whether `cmd` changes the state a freeze records, or could lose it.
fn ioctl_changes_state(cmd: c_uint) -> bool {
    matches!(
        cmd,
        vfio::DEVICE_SET_IRQS | vfio::DEVICE_RESET | vfio::DEVICE_PCI_HOT_RESET
    )
}

/// Whether a write to region `index` changes the state a freeze records.
fn write_changes_state(index: c_uint) -> bool {
    index == vfio::PCI_CONFIG_REGION_INDEX
}

/// An operation of `vdev`'s user starts; when it `changes_state`, unless the device is frozen
/// for a kexec, and [`end_change`] must follow.
fn begin_change(vdev: &PciCoreDevice, changes_state: bool) -> Result {
    let Some(devices) = devices().filter(|_| changes_state) else {
        return Ok(());
    };
    let addr = DevAddr::of(vdev.pci_dev());
    let mut devices = devices.lock();
    if devices.frozen.contains(&addr) {
        return Err(EBUSY);
    }
    match devices.changing.iter_mut().find(|(a, _)| *a == addr) {
        Some((_, count)) => *count += 1,
        None => devices.changing.push((addr, 1), GFP_KERNEL)?,
    }
    Ok(())
}

/// An operation begun by [`begin_change`] is done: a freeze may go on once it was the last
/// state change of `vdev`.
fn end_change(vdev: &PciCoreDevice, changes_state: bool) {
    let Some(tracked) = tracked().filter(|_| changes_state) else {
        return;
    };
    let addr = DevAddr::of(vdev.pci_dev());
    let mut devices = tracked.devices.lock();
    let Some(at) = devices.changing.iter().position(|(a, _)| *a == addr) else {
        return;
    };
    devices.changing[at].1 -= 1;
    if devices.changing[at].1 == 0 {
        let _ = devices.changing.remove(at);
        tracked.changes_ended.notify_all();
    }
}

fn ioctl_begin(vdev: &PciCoreDevice, cmd: c_uint) -> Result {
    begin_change(vdev, ioctl_changes_state(cmd))
}

fn ioctl_end(vdev: &PciCoreDevice, cmd: c_uint) {
    end_change(vdev, ioctl_changes_state(cmd))
}

fn write_begin(vdev: &PciCoreDevice, index: c_uint) -> Result {
    begin_change(vdev, write_changes_state(index))
}

fn write_end(vdev: &PciCoreDevice, index: c_uint) {
    end_change(vdev, write_changes_state(index))
}

/// Runs `f` on the retrieved device `vdev` is, under the lock; `None` when it is none.
fn with_retrieved<R>(vdev: &PciCoreDevice, f: impl FnOnce(&mut Retrieved) -> R) -> Option<R> {
    devices()?
        .lock()
        .with_retrieved(DevAddr::of(vdev.pci_dev()), f)
}

/// The first open of a retrieved device starts: it skips the reset and takes the state over
/// from here until [`restore`]. Any later open is a normal one, also after an open that failed
/// before it restored the device: that one did not reset it, so this one must.
fn incoming(vdev: &PciCoreDevice) -> bool {
    with_retrieved(vdev, |retrieved| {
        match core::mem::replace(&mut retrieved.stage, Stage::TakenBack) {
            Stage::Retrieved(kept) => {
                retrieved.stage = Stage::Opening(kept);
                true
            }
            Stage::Opening(_) => false,
            stage => {
                retrieved.stage = stage;
                false
            }
        }
    })
    .unwrap_or(false)
}

fn restore(vdev: &PciCoreDevice) {
    let dev = vdev.pci_dev();
    with_retrieved(vdev, |retrieved| {
        let stage = core::mem::replace(&mut retrieved.stage, Stage::TakenBack);
        let Stage::Opening(kept) = stage else {
            retrieved.stage = stage;
            return;
        };
        // The retrieve checked everything `restore()` can refuse.
        match vdev.restore(kept.reset_works, kept.saved, &kept.vconfig) {
            Ok(()) => {
                retrieved.stage = Stage::Restored {
                    bus_master: kept.bus_master,
                };
                dev_info!(
                    dev.as_ref(),
                    "state restored from the previous kernel, not reset\n"
                );
            }
            Err(e) => dev_err!(
                dev.as_ref(),
                "cannot restore the preserved state after skipping the reset: {:?}\n",
                e
            ),
        }
    });
}

fn attached(vdev: &PciCoreDevice) {
    let dev = vdev.pci_dev();
    with_retrieved(vdev, |retrieved| {
        if let Stage::Restored { bus_master } = retrieved.stage {
            retrieved.stage = Stage::TakenBack;
            if bus_master {
                dev.enable_bus_master();
                dev_info!(
                    dev.as_ref(),
                    "bus mastering on again: an IOMMU domain translates its DMA\n"
                );
            }
        }
    });
}

kernel::export_vfio_pci_core_fns! {

    vfio_pci_liveupdate_incoming() -> bool = incoming;
    vfio_pci_liveupdate_restore() -> () = restore;
    vfio_pci_liveupdate_attached() -> () = attached;
    vfio_pci_liveupdate_ioctl_begin(cmd: c_uint) -> c_int = ioctl_begin;
    vfio_pci_liveupdate_ioctl_end(cmd: c_uint) -> () = ioctl_end;
    vfio_pci_liveupdate_write_begin(index: c_uint) -> c_int = write_begin;
    vfio_pci_liveupdate_write_end(index: c_uint) -> () = write_end;
    vfio_pci_liveupdate_feature_dma(flags: u32, arg: UserPtr, argsz: usize) -> c_int = feature_dma;
}

#[pin_data]
struct VfioPciLiveupdate {
    #[pin]
    handler: Registration<VfioPciHandler>,
}

impl kernel::InPlaceModule for VfioPciLiveupdate {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            handler <- Registration::new(abi::COMPATIBLE),
        })
        .pin_chain(|this| {
            let tracked = KBox::pin_init(
                pin_init!(Tracked {
                    devices <- new_mutex!(Devices {
                        preserved: KVec::new(),
                        frozen: KVec::new(),
                        changing: KVec::new(),
                        retrieved: KVec::new(),
                    }),
                    changes_ended <- new_condvar!(),
                }),
                GFP_KERNEL,
            )?;
            if !TRACKED.populate(tracked) {
                return Err(EBUSY);
            }
            #[cfg(CONFIG_VFIO_PCI_LIVEUPDATE_CORRUPT_TEST)]
            corrupt::init()?;
            #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
            kernel::iommu::vtd::register_flb(&this.handler)?;
            pci::liveupdate::register_flb(&this.handler)
        })
    }
}

#[cfg(CONFIG_VFIO_PCI_LIVEUPDATE_KUNIT_TEST)]
#[kunit_tests(rust_vfio_pci_liveupdate)]
mod tests {
    use super::*;
    use abi::Invalid;

    /// The devices of the test machine (tools/vmtest): the root port 00:01.0, whose saved
    /// state has capabilities, and the edu device 01:00.0 behind it. Elsewhere `None`, the test
    /// marked skipped.
    fn machine() -> Option<[ARef<pci::Device>; 2]> {
        Some([
            pci::kunit_machine_device(0, 0)?,
            pci::kunit_machine_device(1, 0)?,
        ])
    }

    /// The config header of `saved` at the start of a 256-byte virtual config space.
    fn vconfig_of(saved: SavedStateRef<'_>) -> Result<KVec<u8>> {
        let mut vconfig = KVec::from_elem(0u8, 256, GFP_KERNEL)?;
        for (out, dword) in vconfig.chunks_exact_mut(4).zip(saved.config_header()) {
            out.copy_from_slice(&dword.to_le_bytes());
        }
        Ok(vconfig)
    }

    /// The record of `dev` with the saved state `saved`, as preserve writes it.
    fn encode(dev: &pci::Device, saved: SavedStateRef<'_>) -> Result<KVec<u8>> {
        let vconfig = vconfig_of(saved)?;
        let flags = abi::FLAG_BUS_MASTER;
        with_state(identity_of(dev), flags, &vconfig, saved, |state| {
            let mut out = KVec::from_elem(0u8, abi::encoded_len(state), GFP_KERNEL)?;
            write_record(dev, state, &mut out)?;
            Ok(out)
        })
    }

    /// `dev`'s real saved state and its record.
    fn record_of(dev: &pci::Device) -> Result<(SavedState, KVec<u8>)> {
        let saved = dev.save_state()?;
        let record = encode(dev, saved.as_ref())?;
        Ok((saved, record))
    }

    fn parse_as<'a>(bytes: &'a [u8], dev: &pci::Device) -> Result<Record<'a>, Invalid> {
        abi::parse(bytes, &identity_of(dev))
    }

    #[test]
    fn edu_state_survives_its_record() -> Result {
        let Some([_, edu]) = machine() else {
            return Ok(());
        };
        let (saved, bytes) = record_of(&edu)?;
        let record = parse_as(&bytes, &edu).map_err(|_| EINVAL)?;
        assert_eq!(record.identity, identity_of(&edu));
        assert_eq!(record.identity.vendor, 0x1234);
        assert_eq!(record.flags, abi::FLAG_BUS_MASTER);
        // Stored up to its last non-zero dword, given back whole.
        let vconfig = vconfig_of(saved.as_ref())?;
        assert_eq!(record.vconfig.len(), abi::config_stored(&vconfig));
        assert!(record.vconfig.len() < vconfig.len());
        assert_eq!(&kept_state(&record)?.vconfig[..], &vconfig[..]);
        assert_eq!(record.config_header, saved.as_ref().config_header());
        let rebuilt = saved_state_of(&record)?;
        assert_eq!(rebuilt.as_ref().as_bytes(), saved.as_ref().as_bytes());
        Ok(())
    }

    #[test]
    fn a_device_whose_bars_or_config_space_changed_is_refused() -> Result {
        let Some([_, edu]) = machine() else {
            return Ok(());
        };
        let (_saved, bytes) = record_of(&edu)?;
        let record = parse_as(&bytes, &edu).map_err(|_| EINVAL)?;
        let size = edu.config_space_size();
        let mut bars = bars_of(&edu)?;
        assert_eq!(record.check_device(&bars, size), Ok(()));
        let other_size = if size == 256 { 4096 } else { 256 };
        assert_eq!(
            record.check_device(&bars, other_size),
            Err(Invalid::DeviceConfigSize {
                recorded: size,
                found: other_size
            })
        );
        // BAR 0 of the edu holds its 1 MiB of registers somewhere below 4 GiB.
        assert_ne!(bars[0], 0);
        bars[0] ^= 0x0010_0000;
        assert!(matches!(
            record.check_device(&bars, size),
            Err(Invalid::Bar { index: 0, .. })
        ));
        Ok(())
    }

    #[test]
    fn root_port_capabilities_survive_the_record() -> Result {
        let Some([port, _]) = machine() else {
            return Ok(());
        };
        let (saved, bytes) = record_of(&port)?;
        let caps = saved.as_ref().caps().count();
        // At least the PCI Express capability (ID 0x10) is saved for a root port.
        assert!(saved
            .as_ref()
            .caps()
            .any(|c| c.cap_nr == 0x10 && !c.extended));
        let record = parse_as(&bytes, &port).map_err(|_| EINVAL)?;
        assert_eq!(record.caps().count(), caps);
        let saved_caps = saved.as_ref().caps().map(|c| Cap {
            cap_nr: c.cap_nr,
            extended: c.extended,
            data: c.data,
        });
        assert!(record.caps().eq(saved_caps));
        let rebuilt = saved_state_of(&record)?;
        assert_eq!(rebuilt.as_ref().as_bytes(), saved.as_ref().as_bytes());
        Ok(())
    }

    #[test]
    fn corrupted_records_are_rejected() -> Result {
        let Some([port, edu]) = machine() else {
            return Ok(());
        };
        let (saved, good) = record_of(&port)?;
        let stored = usize::from(u16::from_le_bytes([good[22], good[23]]));
        let first_cap = abi::HEADER_SIZE + stored + abi::CONFIG_HEADER_DWORDS * 4;
        let end = good.len() - abi::CAP_HEADER_SIZE;
        let corrupt = |at: usize, bytes: &[u8]| -> Result<KVec<u8>> {
            let mut bad = KVec::new();
            bad.extend_from_slice(&good, GFP_KERNEL)?;
            bad[at..at + bytes.len()].copy_from_slice(bytes);
            Ok(bad)
        };
        let saved_size = u32::try_from(good.len() - abi::HEADER_SIZE - stored)?;
        let vconfig = abi::HEADER_SIZE;
        let next = abi::VERSION + 1;
        let cases: [(usize, &[u8], Invalid); 16] = [
            (0, &next.to_le_bytes(), Invalid::Version(next)),
            (10, &0x81u16.to_le_bytes(), Invalid::Flags(0x81)),
            (10, &0x05u16.to_le_bytes(), Invalid::ByteOrder),
            (22, &60u16.to_le_bytes(), Invalid::ConfigStored(60)),
            (22, &66u16.to_le_bytes(), Invalid::ConfigStored(66)),
            (22, &260u16.to_le_bytes(), Invalid::ConfigStored(260)),
            (20, &512u16.to_le_bytes(), Invalid::ConfigSize(512)),
            (8, &0x0100u16.to_le_bytes(), Invalid::Identity),
            (16, &0u32.to_le_bytes(), Invalid::Identity),
            (vconfig, &0xffffu16.to_le_bytes(), Invalid::ConfigIdentity),
            (24, &(saved_size + 4).to_le_bytes(), Invalid::Truncated),
            (24, &(saved_size - 8).to_le_bytes(), Invalid::NoEnd),
            (first_cap + 4, &0x8000u32.to_le_bytes(), Invalid::CapSize(0)),
            (first_cap + 4, &u32::MAX.to_le_bytes(), Invalid::CapSize(0)),
            (first_cap + 2, &[2], Invalid::CapKind(0)),
            (end, &0x10u16.to_le_bytes(), Invalid::NoEnd),
        ];
        for (at, bytes, why) in cases {
            assert_eq!(parse_as(&corrupt(at, bytes)?, &port).err(), Some(why));
        }
        assert_eq!(
            parse_as(&corrupt(first_cap + 3, &[1])?, &port).err(),
            Some(Invalid::Reserved)
        );
        assert_eq!(
            parse_as(&good[..abi::HEADER_SIZE - 1], &port).err(),
            Some(Invalid::Truncated)
        );
        assert_eq!(parse_as(&good, &edu).err(), Some(Invalid::Identity));

        // The same capability saved twice.
        let caps = saved.as_ref().caps();
        let twice = SavedState::build(
            &saved.as_ref().config_header(),
            Iterator::chain(caps.clone(), caps),
        )?;
        let first = saved.as_ref().caps().next().ok_or(ENODATA)?;
        assert_eq!(
            parse_as(&encode(&port, twice.as_ref())?, &port).err(),
            Some(Invalid::CapDuplicate(first.cap_nr))
        );

        // None of it touched the record it started from.
        assert!(parse_as(&good, &port).is_ok());
        Ok(())
    }

    #[test]
    fn saved_states_without_data_are_refused() -> Result {
        let header = [0; pci::saved_state::CONFIG_HEADER_DWORDS];
        let empty = SavedCap {
            cap_nr: 0x10,
            extended: false,
            data: &[],
        };
        assert_eq!(
            SavedState::build(&header, [empty].into_iter()).err(),
            Some(EINVAL)
        );
        let one = SavedCap {
            data: &[1, 0],
            ..empty
        };
        let many = core::iter::repeat_n(one, pci::saved_state::MAX_CAPS + 1);
        assert_eq!(SavedState::build(&header, many).err(), Some(E2BIG));
        Ok(())
    }
}
