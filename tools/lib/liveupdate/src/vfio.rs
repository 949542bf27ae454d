// SPDX-License-Identifier: GPL-2.0
//! vfio device files opened through the device cdev, as a VMM uses them with iommufd.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

use vfio_bindings::bindings::vfio as sys;

use crate::error::{Error, Op, Result};
use crate::iommufd::{Ioas, Iommufd};
use crate::sys::{ioctl, ioctl_none, open_rw};
use crate::uapi::{
    FeatureLiveupdateDma, VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_FEATURE, VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA, VFIO_DEVICE_GET_REGION_INFO,
    VFIO_DEVICE_RESET, VFIO_LIVEUPDATE_DMA_CONTINUES, VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED,
    VFIO_LIVEUPDATE_DMA_NOT_KEPT, VFIO_LIVEUPDATE_DMA_REQUIRED, VFIO_LIVEUPDATE_DMA_TABLES,
    VFIO_LIVEUPDATE_DMA_UNSUPPORTED,
};

/// Index of a PCI device's config space region.
pub const CONFIG_REGION: u32 = sys::VFIO_PCI_CONFIG_REGION_INDEX;

/// Whether `address` is a PCI address as sysfs names devices: `dddd:bb:dd.f`, in hex.
pub fn is_pci_address(address: &str) -> bool {
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let Some((domain, rest)) = address.split_once(':') else {
        return false;
    };
    let Some((bus, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((dev, function)) = rest.split_once('.') else {
        return false;
    };
    hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && u8::from_str_radix(dev, 16).is_ok_and(|d| d < 32)
        && matches!(function.as_bytes(), [b'0'..=b'7'])
}

/// Why a kept device's DMA would stop at the kexec rather than go on
/// (`VFIO_LIVEUPDATE_DMA_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaStops {
    /// No IOMMU that translates the device can hand its translation over.
    Unsupported,
    /// A mapping of its IOAS points at memory that is not kept (not a memfd preserved in a
    /// Live Update session).
    NotKept,
    /// Its IOAS maps nothing.
    NothingMapped,
    /// Its translation structures cannot be handed over.
    Tables,
    /// A reason this crate does not know.
    Other(u32),
}

/// What a Live Update now would do to a device's DMA
/// ([`VfioDevice::dma_through_update`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaThroughUpdate {
    /// Why it would stop at the kexec; `None` when it would go on, translated throughout.
    pub stops: Option<DmaStops>,
    /// Its user requires it to go on ([`VfioDevice::require_dma_through_update`]).
    pub required: bool,
}

/// A region of a vfio device (`struct vfio_region_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The region's index (`VFIO_PCI_BAR0_REGION_INDEX`, ...).
    pub index: u32,
    /// Its offset in the device file.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// A vfio device file, opened through `/dev/vfio/devices/vfioN` or retrieved from a Live
/// Update session. Nothing works on it before [`VfioDevice::bind`].
#[derive(Debug)]
pub struct VfioDevice {
    file: fs::File,
}

impl VfioDevice {
    /// Opens the vfio cdev of the PCI device at `address` (`0000:01:00.0`).
    pub fn open(address: &str) -> Result<Self> {
        if !is_pci_address(address) {
            return Err(Error::InvalidArgument {
                op: Op::OpenVfioDevice,
                why: "not a PCI address such as 0000:01:00.0",
            });
        }
        let dir = format!("/sys/bus/pci/devices/{address}/vfio-dev");
        let entries = fs::read_dir(&dir).map_err(|e| Error::os(Op::OpenVfioDevice, e))?;
        let name = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("vfio"))
            .ok_or(Error::Os {
                op: Op::OpenVfioDevice,
                errno: libc::ENOENT,
            })?;
        let file = open_rw(&format!("/dev/vfio/devices/{name}"))
            .map_err(|e| Error::os(Op::OpenVfioDevice, e))?;
        Ok(Self { file })
    }

    /// The device file `fd`, as retrieved from a Live Update session.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { file: fd.into() }
    }

    /// Binds the device to `iommufd`; returns the device ID iommufd gave it.
    pub fn bind(&self, iommufd: &Iommufd) -> Result<u32> {
        let mut arg = sys::vfio_device_bind_iommufd {
            argsz: std::mem::size_of::<sys::vfio_device_bind_iommufd>() as u32,
            iommufd: iommufd.as_fd().as_raw_fd(),
            ..Default::default()
        };
        ioctl(self.file.as_fd(), VFIO_DEVICE_BIND_IOMMUFD, &mut arg)
            .map_err(|e| Error::os(Op::Bind, e))?;
        Ok(arg.out_devid)
    }

    /// Attaches the bound device to `ioas`: its DMA then goes through that address space.
    pub fn attach(&self, ioas: Ioas) -> Result<()> {
        let mut arg = sys::vfio_device_attach_iommufd_pt {
            argsz: std::mem::size_of::<sys::vfio_device_attach_iommufd_pt>() as u32,
            pt_id: ioas.id(),
            ..Default::default()
        };
        ioctl(self.file.as_fd(), VFIO_DEVICE_ATTACH_IOMMUFD_PT, &mut arg)
            .map_err(|e| Error::os(Op::Attach, e))?;
        Ok(())
    }

    /// Whether the device's DMA would go on through a Live Update now, should its file be
    /// kept (`VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA`): only when the IOMMU hands its
    /// translation over, which needs every mapping of its IOAS to point at memory that is
    /// kept too, guest memory in a memfd preserved in a session. Otherwise the device is
    /// quiesced at the kexec and gets bus mastering back when attached again.
    pub fn dma_through_update(&self) -> Result<DmaThroughUpdate> {
        let arg = self.liveupdate_dma(sys::VFIO_DEVICE_FEATURE_GET, 0)?;
        let stops = if arg.dma_flags & VFIO_LIVEUPDATE_DMA_CONTINUES != 0 {
            None
        } else {
            Some(match arg.reason {
                VFIO_LIVEUPDATE_DMA_UNSUPPORTED => DmaStops::Unsupported,
                VFIO_LIVEUPDATE_DMA_NOT_KEPT => DmaStops::NotKept,
                VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED => DmaStops::NothingMapped,
                VFIO_LIVEUPDATE_DMA_TABLES => DmaStops::Tables,
                other => DmaStops::Other(other),
            })
        };
        Ok(DmaThroughUpdate {
            stops,
            required: arg.dma_flags & VFIO_LIVEUPDATE_DMA_REQUIRED != 0,
        })
    }

    /// For a device whose file is preserved: requires its DMA to go on through the Live
    /// Update, or lifts the requirement. While required, a kexec that cannot keep the
    /// device's DMA going fails (`reboot()` gives `EINVAL`) rather than stop it, and the
    /// device goes on as before. The requirement ends with the preservation.
    pub fn require_dma_through_update(&self, required: bool) -> Result<()> {
        let flags = if required {
            VFIO_LIVEUPDATE_DMA_REQUIRED
        } else {
            0
        };
        self.liveupdate_dma(sys::VFIO_DEVICE_FEATURE_SET, flags)
            .map(|_| ())
    }

    fn liveupdate_dma(&self, op: u32, dma_flags: u32) -> Result<FeatureLiveupdateDma> {
        let mut arg = FeatureLiveupdateDma {
            argsz: std::mem::size_of::<FeatureLiveupdateDma>() as u32,
            flags: op | VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA,
            dma_flags,
            reason: 0,
        };
        ioctl(self.file.as_fd(), VFIO_DEVICE_FEATURE, &mut arg)
            .map_err(|e| Error::os(Op::LiveUpdateDma, e))?;
        Ok(arg)
    }

    /// The region `index` (`VFIO_PCI_BAR0_REGION_INDEX` is 0, [`CONFIG_REGION`] 7).
    pub fn region(&self, index: u32) -> Result<Region> {
        let mut arg = sys::vfio_region_info {
            argsz: std::mem::size_of::<sys::vfio_region_info>() as u32,
            index,
            ..Default::default()
        };
        ioctl(self.file.as_fd(), VFIO_DEVICE_GET_REGION_INFO, &mut arg)
            .map_err(|e| Error::os(Op::RegionInfo, e))?;
        Ok(Region {
            index,
            offset: arg.offset,
            size: arg.size,
        })
    }

    fn at(region: &Region, offset: u64, len: usize) -> Result<u64> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= region.size => Ok(region.offset + offset),
            _ => Err(Error::InvalidArgument {
                op: Op::RegionAccess,
                why: "access past the end of the region",
            }),
        }
    }

    /// Reads `out.len()` bytes of `region` at `offset`.
    pub fn read(&self, region: &Region, offset: u64, out: &mut [u8]) -> Result<()> {
        let at = Self::at(region, offset, out.len())?;
        self.file
            .read_exact_at(out, at)
            .map_err(|e| Error::os(Op::RegionAccess, e))
    }

    /// Writes `data` into `region` at `offset`.
    pub fn write(&self, region: &Region, offset: u64, data: &[u8]) -> Result<()> {
        let at = Self::at(region, offset, data.len())?;
        self.file
            .write_all_at(data, at)
            .map_err(|e| Error::os(Op::RegionAccess, e))
    }

    /// Reads the 32-bit register of `region` at `offset`.
    pub fn read_u32(&self, region: &Region, offset: u64) -> Result<u32> {
        let mut b = [0; 4];
        self.read(region, offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes the 32-bit register of `region` at `offset`.
    pub fn write_u32(&self, region: &Region, offset: u64, value: u32) -> Result<()> {
        self.write(region, offset, &value.to_le_bytes())
    }

    /// Reads the 64-bit register of `region` at `offset`.
    pub fn read_u64(&self, region: &Region, offset: u64) -> Result<u64> {
        let mut b = [0; 8];
        self.read(region, offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes the 64-bit register of `region` at `offset`.
    pub fn write_u64(&self, region: &Region, offset: u64, value: u64) -> Result<()> {
        self.write(region, offset, &value.to_le_bytes())
    }

    /// Resets the device (`VFIO_DEVICE_RESET`).
    pub fn reset(&self) -> Result<()> {
        ioctl_none(self.file.as_fd(), VFIO_DEVICE_RESET).map_err(|e| Error::os(Op::Reset, e))?;
        Ok(())
    }
}

impl AsFd for VfioDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
