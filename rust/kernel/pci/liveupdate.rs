// SPDX-License-Identifier: GPL-2.0

//! The PCI core's Live Update support, for Rust drivers.
//!
//! C header: [`include/linux/pci_liveupdate.h`](srctree/include/linux/pci_liveupdate.h)
//!
//! A driver whose [`FileHandler`] preserves PCI devices registers it with [`register_flb`],
//! then preserves each device from its `preserve` callback. In the next kernel it claims each
//! device it takes back with [`Device::liveupdate_claim`], which the PCI core otherwise releases
//! after a while, and calls [`Device::liveupdate_finish`] once it is done with it.

use super::Device;
use crate::{
    bindings,
    device::DeviceContext,
    error::to_result,
    liveupdate::{FileHandler, Registration},
    prelude::*,
};

/// Makes the files of `handler` depend on the PCI core's FLB, which LUO then preserves with
/// the first of them. Required before [`Device::liveupdate_preserve`] can succeed.
pub fn register_flb<T: FileHandler>(handler: &Registration<T>) -> Result {
    // SAFETY: `handler` is registered with LUO while the reference lives.
    to_result(unsafe { bindings::pci_liveupdate_register_flb(handler.as_raw()) })
}

/// Undoes [`register_flb`].
pub fn unregister_flb<T: FileHandler>(handler: &Registration<T>) {
    // SAFETY: As in `register_flb`; an FLB that is not linked is ignored.
    unsafe { bindings::pci_liveupdate_unregister_flb(handler.as_raw()) };
}

/// Why a kept device's DMA would stop at the kexec ([`Device::liveupdate_dma_stops`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaStops {
    /// No IOMMU that translates it can hand its translation over.
    Unsupported,
    /// A mapping points at memory that is not preserved for the next kernel.
    NotKept,
    /// Its domain maps nothing.
    NothingMapped,
    /// Its translation structures cannot be handed over.
    Tables,
}

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Records this device, and the bridges above it, for the next kernel.
    ///
    /// Fails with `EINVAL` for a virtual function or during the kexec, `EBUSY` when already
    /// preserved, `ENOENT` outside a file handler's preserve (no PCI FLB), `ENOMEM`.
    pub fn liveupdate_preserve(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_liveupdate_preserve(self.as_raw()) })
    }

    /// Undoes [`Device::liveupdate_preserve`].
    pub fn liveupdate_unpreserve(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_liveupdate_unpreserve(self.as_raw()) })
    }

    /// The kexec is under way for this preserved device: its record may no longer change.
    pub fn liveupdate_freeze(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_liveupdate_freeze(self.as_raw()) })
    }

    /// The kexec was cancelled: undoes [`Device::liveupdate_freeze`].
    pub fn liveupdate_unfreeze(&self) {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_liveupdate_unfreeze(self.as_raw()) };
    }

    /// For a device frozen for the kexec: hands the IOMMU translation of its DMA over to the
    /// next kernel when it can, so that its bus mastering stays on through the kexec; when
    /// it cannot (it maps memory that is not kept, its unit is not VT-d in legacy mode), says
    /// why, and the device is quiesced at the kexec. Whether it handed the translation over;
    /// fails only with `ENOMEM`.
    #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
    pub fn liveupdate_freeze_translation(&self) -> Result<bool> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        let ret = unsafe { bindings::intel_iommu_liveupdate_freeze(self.as_raw()) };
        to_result(ret).map(|()| ret > 0)
    }

    /// Why this device's DMA would stop at a kexec now, were it kept, rather than go on with
    /// its IOMMU translation handed over (see [`Device::liveupdate_freeze_translation`]);
    /// `None` when it would go on. Says why in the kernel log. Fails only with `ENOMEM`.
    pub fn liveupdate_dma_stops(&self) -> Result<Option<DmaStops>> {
        #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
        {
            // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
            let ret = unsafe { bindings::intel_iommu_liveupdate_check(self.as_raw()) };
            to_result(ret)?;
            Ok(match ret.unsigned_abs() {
                0 => None,
                bindings::INTEL_IOMMU_LU_STOPS_NOT_KEPT => Some(DmaStops::NotKept),
                bindings::INTEL_IOMMU_LU_STOPS_NOTHING_MAPPED => Some(DmaStops::NothingMapped),
                bindings::INTEL_IOMMU_LU_STOPS_TABLES => Some(DmaStops::Tables),
                _ => Some(DmaStops::Unsupported),
            })
        }
        #[cfg(not(CONFIG_INTEL_IOMMU_LIVEUPDATE))]
        Ok(Some(DmaStops::Unsupported))
    }

    /// Undoes [`Device::liveupdate_freeze_translation`] when the kexec is cancelled.
    #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
    pub fn liveupdate_unfreeze_translation(&self) {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::intel_iommu_liveupdate_unfreeze(self.as_raw()) };
    }

    /// In the kernel a Live Update booted: whether this device still translates its DMA
    /// through the tables the previous kernel handed over (see
    /// [`Device::liveupdate_freeze_translation`]), no IOMMU domain of this kernel attached to
    /// it yet. The memory those tables map is not held for the device by this kernel.
    #[cfg(CONFIG_INTEL_IOMMU_LIVEUPDATE)]
    pub fn liveupdate_translation_adopted(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::intel_iommu_liveupdate_adopted(self.as_raw()) }
    }

    /// Whether the previous kernel preserved this device and it is not finished yet.
    pub fn liveupdate_is_incoming(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_liveupdate_is_incoming(self.as_raw()) }
    }

    /// The driver takes the incoming device back: the PCI core leaves it incoming until
    /// [`Device::liveupdate_finish`], rather than release it when its claim timeout passes.
    ///
    /// Fails with `ENOENT` when the device is not incoming (never preserved, finished, or
    /// released), `EBUSY` when already claimed, `ENOMEM`.
    pub fn liveupdate_claim(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_liveupdate_claim(self.as_raw()) })
    }

    /// The driver gives the incoming device, whose state it does not take back, to the normal
    /// path: it stops being incoming, its bus mastering is cleared and it is reset.
    ///
    /// Fails with `EINVAL` for a bridge, `ENOENT` when the device is not incoming; the error
    /// of the reset otherwise, the device no longer incoming and without bus mastering all the
    /// same.
    pub fn liveupdate_release(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_liveupdate_release(self.as_raw()) })
    }

    /// The driver is done with the incoming device.
    pub fn liveupdate_finish(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_liveupdate_finish(self.as_raw()) })
    }
}
