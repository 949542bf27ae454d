// SPDX-License-Identifier: GPL-2.0
//! The devices a benchmark keeps or opens cold, used as a VMM uses them: a vfio cdev file bound
//! to iommufd, an IOAS, and guest memory in a memfd mapped at a fixed IOVA.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use liveupdate::{DmaBuffer, Iommufd, Session, VfioDevice, CONFIG_REGION};

use crate::nvme::{self, AdminQueue};
use crate::Result;

/// Where every device's guest memory is in its IO address space.
const IOVA: u64 = 0x10_0000;
const PCI_COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_MASTER: u16 = 1 << 2;
const COMMAND_INTX_DISABLE: u16 = 1 << 10;

/// The device models the benchmarks use. Both reset with a function-level reset, after which
/// the kernel waits the 100 ms the PCIe specification requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Intel 82576 NIC (QEMU's igb).
    Igb,
    /// QEMU's NVMe controller.
    Nvme,
}

impl Model {
    fn of(vendor: &str, device: &str) -> Option<Self> {
        match (vendor, device) {
            ("0x8086", "0x10c9") => Some(Self::Igb),
            ("0x1b36", "0x0010") => Some(Self::Nvme),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Igb => "igb",
            Self::Nvme => "nvme",
        }
    }

    /// Bytes of guest memory the device gets.
    fn memory(self) -> usize {
        match self {
            Self::Igb => 4096,
            Self::Nvme => nvme::MEMORY,
        }
    }
}

/// The igb's (82576) Device Status register, and its Receive Long Packet Maximum Length: a
/// function reset sets RLPML back to 0x2600, and the receive path ignores it unless long
/// packets are enabled, so it shows whether the device was reset.
const IGB_STATUS: u64 = 0x08;
const IGB_RLPML: u64 = 0x5004;
const IGB_RLPML_RESET: u32 = 0x2600;
const IGB_RLPML_SET: u32 = 0x1234;

/// How a device gets to the VMM after an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Kept across the update: RETRIEVE_FD, no reset.
    Kept,
    /// Not kept: opened cold, and vfio-pci resets it.
    Cold,
    /// Not kept, opened cold with its resets turned off (sysfs `reset_method`): what opening
    /// and binding cost without the reset, the floor for a kept device.
    ColdNoReset,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::Cold => "cold",
            Self::ColdNoReset => "cold-noreset",
        }
    }
}

/// A device bound to vfio-pci, found in sysfs.
#[derive(Clone, Debug)]
pub struct Found {
    pub address: String,
    pub model: Model,
    /// Its place among all the devices found, which gives its tokens in a session.
    pub index: usize,
}

impl Found {
    /// The token of the device's file in a session.
    pub fn device_token(&self) -> u64 {
        2 * self.index as u64 + 1
    }

    /// The token of the memfd with the device's guest memory.
    pub fn memory_token(&self) -> u64 {
        2 * self.index as u64 + 2
    }
}

/// Every device bound to vfio-pci whose model the benchmarks know, by address.
pub fn vfio_devices() -> Result<Vec<Found>> {
    let read = |path: String| fs::read_to_string(&path).map(|s| s.trim().to_string());
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/bus/pci/devices").map_err(|e| e.to_string())? {
        let address = entry.map_err(|e| e.to_string())?.file_name();
        let address = address.to_string_lossy().into_owned();
        let dir = format!("/sys/bus/pci/devices/{address}");
        let driver = fs::read_link(format!("{dir}/driver")).ok();
        if driver.as_ref().and_then(|d| d.file_name()) != Some("vfio-pci".as_ref()) {
            continue;
        }
        let (Ok(vendor), Ok(device)) =
            (read(format!("{dir}/vendor")), read(format!("{dir}/device")))
        else {
            continue;
        };
        if let Some(model) = Model::of(&vendor, &device) {
            found.push(Found {
                address,
                model,
                index: 0,
            });
        }
    }
    found.sort_by(|a, b| a.address.cmp(&b.address));
    for (index, f) in found.iter_mut().enumerate() {
        f.index = index;
    }
    Ok(found)
}

/// A device in the VMM's hands: its file bound to an IOAS with its guest memory mapped.
pub struct Usable {
    pub found: Found,
    pub device: VfioDevice,
    pub memfd: OwnedFd,
    memory: DmaBuffer,
    iommufd: Iommufd,
}

/// How long a device took to become usable, from the VMM's first call for it.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    /// To its file (RETRIEVE_FD, or open with the reset) and guest memory.
    pub get: Duration,
    /// To its file bound to iommufd (where vfio-pci enables the device: a cold one is reset).
    pub bind: Duration,
    /// To its file also attached to an IOAS, with bus mastering on (the kernel turns it back on
    /// for a kept device at the attach, the VMM for any other).
    pub attach: Duration,
    /// To its guest memory also mapped in the IOAS.
    pub mapped: Duration,
    /// To the first successful access to its BAR 0, bound and attached.
    pub bar: Duration,
    /// To its first completed DMA (NVMe: an Identify command), when the model does one.
    pub dma: Option<Duration>,
}

fn err(e: liveupdate::Error) -> String {
    e.to_string()
}

fn memfd(len: usize) -> Result<OwnedFd> {
    let file = guest::memfd(c"lu-bench-guest-memory").map_err(|e| e.to_string())?;
    file.set_len(len as u64).map_err(|e| e.to_string())?;
    Ok(file.into())
}

/// Binds `device` to a new IOAS with `memfd` mapped at [`IOVA`]; the times since `started`
/// when it was bound to iommufd and attached to the IOAS. A kept device gets bus mastering back
/// from the kernel at the attach; any other gets it from the VMM right after, so that every
/// path ends the attach with the same device state.
fn bind(
    found: &Found,
    path: Path,
    device: VfioDevice,
    memfd: OwnedFd,
    started: Instant,
) -> Result<(Usable, Duration, Duration)> {
    let iommufd = Iommufd::open().map_err(err)?;
    let ioas = iommufd.alloc_ioas().map_err(err)?;
    device.bind(&iommufd).map_err(err)?;
    let bound = started.elapsed();
    device.attach(ioas).map_err(err)?;
    let memory = DmaBuffer::shared(memfd.as_fd(), found.model.memory()).map_err(err)?;
    let usable = Usable {
        found: found.clone(),
        device,
        memfd,
        memory,
        iommufd,
    };
    if path != Path::Kept {
        usable.set_command(COMMAND_MEMORY | COMMAND_MASTER | COMMAND_INTX_DISABLE)?;
    }
    let attached = started.elapsed();
    usable
        .iommufd
        .map(ioas, &usable.memory, IOVA)
        .map_err(err)?;
    Ok((usable, bound, attached))
}

impl Usable {
    fn bar(&self) -> Result<liveupdate::Region> {
        self.device.region(0).map_err(err)
    }

    fn admin_queue(&self) -> Result<AdminQueue<'_>> {
        Ok(AdminQueue {
            device: &self.device,
            bar: self.bar()?,
            memory: &self.memory,
            iova: IOVA,
        })
    }

    /// The first access to BAR 0 a VMM would make; fails on a device that does not answer.
    fn first_bar_access(&self) -> Result<()> {
        let bar = self.bar()?;
        let value = match self.found.model {
            Model::Igb => self.device.read_u32(&bar, IGB_STATUS).map_err(err)?,
            Model::Nvme => return self.admin_queue()?.is_ready().map(|_| ()),
        };
        match value {
            u32::MAX => Err("BAR 0 reads all ones".into()),
            _ => Ok(()),
        }
    }

    fn set_command(&self, bits: u16) -> Result<()> {
        let config = self.device.region(CONFIG_REGION).map_err(err)?;
        let mut b = [0; 2];
        self.device
            .read(&config, PCI_COMMAND, &mut b)
            .map_err(err)?;
        let command = u16::from_le_bytes(b) | bits;
        self.device
            .write(&config, PCI_COMMAND, &command.to_le_bytes())
            .map_err(err)
    }

    /// Sets the device up as a guest driver would have: decoding, bus mastering, and the
    /// device's own state (the igb's RLPML written; the NVMe controller enabled with its admin
    /// queue in guest memory). Kept across the update, this is what must come back.
    pub fn set_up(&self) -> Result<()> {
        self.set_command(COMMAND_MEMORY | COMMAND_MASTER | COMMAND_INTX_DISABLE)?;
        match self.found.model {
            Model::Igb => self
                .device
                .write_u32(&self.bar()?, IGB_RLPML, IGB_RLPML_SET)
                .map_err(err),
            Model::Nvme => {
                let queue = self.admin_queue()?;
                if !queue.is_ready()? {
                    queue.enable()?;
                }
                queue.identify().map(|_| ())
            }
        }
    }

    /// Checks that the device kept the state [`Usable::set_up`] gave it (`kept`) or is back to
    /// its reset state.
    pub fn check_state(&self, kept: bool) -> Result<()> {
        match self.found.model {
            Model::Igb => {
                let rlpml = self.device.read_u32(&self.bar()?, IGB_RLPML).map_err(err)?;
                let want = if kept { IGB_RLPML_SET } else { IGB_RLPML_RESET };
                if rlpml != want {
                    return Err(format!("RLPML {rlpml:#x}, expected {want:#x}"));
                }
                Ok(())
            }
            // Checked on the way to the first DMA: a kept controller must still be enabled.
            Model::Nvme => Ok(()),
        }
    }

    /// The first DMA, for a model that does one: a kept controller goes on with its admin queue,
    /// any other is set up again first, as its driver would.
    fn first_dma(&self, path: Path) -> Result<Option<()>> {
        if self.found.model != Model::Nvme {
            return Ok(None);
        }
        let queue = self.admin_queue()?;
        match (path, queue.is_ready()?) {
            (Path::Kept, true) => {}
            (Path::Kept, false) => return Err("the kept controller is not enabled any more".into()),
            (Path::Cold, true) => {
                return Err("the controller is still enabled after a reset".into())
            }
            (Path::Cold | Path::ColdNoReset, _) => queue.enable()?,
        }
        const PCI_VENDOR_REDHAT: u16 = 0x1b36;
        match queue.identify()? {
            PCI_VENDOR_REDHAT => Ok(Some(())),
            vendor => Err(format!("Identify returned vendor {vendor:#06x}")),
        }
    }
}

/// Gets `found` usable through `get` (which returns its file and guest memory), timed.
fn usable_with(
    found: &Found,
    path: Path,
    get: impl FnOnce() -> Result<(VfioDevice, OwnedFd)>,
) -> Result<(Usable, Ready)> {
    let started = Instant::now();
    let (device, memfd) = get()?;
    let get = started.elapsed();
    let (usable, bind, attach) = bind(found, path, device, memfd, started)?;
    let mapped = started.elapsed();
    usable.first_bar_access()?;
    let bar = started.elapsed();
    let dma = usable.first_dma(path)?.map(|()| started.elapsed());
    Ok((
        usable,
        Ready {
            get,
            bind,
            attach,
            mapped,
            bar,
            dma,
        },
    ))
}

/// Turns off every reset of `found` for this boot, so that vfio-pci opens it without one.
pub fn turn_off_resets(found: &Found) -> Result<()> {
    let path = format!("/sys/bus/pci/devices/{}/reset_method", found.address);
    fs::write(&path, "\n").map_err(|e| format!("{path}: {e}"))
}

/// Opens `found` cold (`path` is [`Path::Cold`], or [`Path::ColdNoReset`] after
/// [`turn_off_resets`]): vfio-pci resets it on open when it can.
pub fn open_cold(found: &Found, path: Path) -> Result<(Usable, Ready)> {
    usable_with(found, path, || {
        let device = VfioDevice::open(&found.address).map_err(err)?;
        Ok((device, memfd(found.model.memory())?))
    })
}

/// Retrieves `found` and its guest memory, kept in `session` by the previous kernel.
pub fn retrieve_kept(session: &Session, found: &Found) -> Result<(Usable, Ready)> {
    usable_with(found, Path::Kept, || {
        let device = session.retrieve(found.device_token()).map_err(err)?;
        let memfd = session.retrieve(found.memory_token()).map_err(err)?;
        Ok((VfioDevice::from_fd(device), memfd))
    })
}

/// Preserves `usable`'s file and guest memory in `session`; returns how long the device's
/// PRESERVE_FD took.
pub fn preserve(session: &Session, usable: &Usable) -> Result<Duration> {
    let started = Instant::now();
    session
        .preserve(usable.device.as_fd(), usable.found.device_token())
        .map_err(err)?;
    let took = started.elapsed();
    session
        .preserve(usable.memfd.as_fd(), usable.found.memory_token())
        .map_err(err)?;
    Ok(took)
}
