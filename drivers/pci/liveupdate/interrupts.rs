// SPDX-License-Identifier: GPL-2.0

//! Interrupts of a preserved device, masked at the device across the kexec.
//!
//! From the freeze until its driver in the next kernel sets its interrupts up again, nobody is
//! ready for a preserved device's interrupts: the old kernel's handlers are held, then gone, and
//! the new kernel has none. Masking the host's interrupt line is not enough: INTx lines are
//! shared, and a device left asserting one makes an unhandled interrupt storm in the next
//! kernel as soon as another device's driver requests the line, which the kernel ends by
//! disabling the line for everyone ("nobody cared"). So the device itself is told to be quiet:
//! INTx disabled in its command register, MSI-X masked as a whole (the Function Mask), and
//! every enabled MSI vector masked, or MSI disabled on a device that cannot mask per vector.
//! What was changed is remembered, so that a cancelled kexec undoes exactly that. The next
//! kernel leaves the masks in place; the driver's own interrupt set-up clears them, as on any
//! device.

use kernel::{bindings, pci, prelude::*};

const COMMAND: u16 = bindings::PCI_COMMAND as u16;
const COMMAND_INTX_DISABLE: u16 = bindings::PCI_COMMAND_INTX_DISABLE as u16;

const MSI_FLAGS: u16 = bindings::PCI_MSI_FLAGS as u16;
const MSI_FLAGS_ENABLE: u16 = bindings::PCI_MSI_FLAGS_ENABLE as u16;
const MSI_FLAGS_64BIT: u16 = bindings::PCI_MSI_FLAGS_64BIT as u16;
const MSI_FLAGS_MASKBIT: u16 = bindings::PCI_MSI_FLAGS_MASKBIT as u16;
const MSI_FLAGS_QSIZE: u16 = bindings::PCI_MSI_FLAGS_QSIZE as u16;
const MSI_MASK_32: u16 = bindings::PCI_MSI_MASK_32 as u16;
const MSI_MASK_64: u16 = bindings::PCI_MSI_MASK_64 as u16;

const MSIX_FLAGS: u16 = bindings::PCI_MSIX_FLAGS as u16;
const MSIX_FLAGS_ENABLE: u16 = bindings::PCI_MSIX_FLAGS_ENABLE as u16;
const MSIX_FLAGS_MASKALL: u16 = bindings::PCI_MSIX_FLAGS_MASKALL as u16;

/// What [`mask`] did to MSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msi {
    /// Nothing: no MSI, or not enabled.
    Untouched,
    /// Masked the enabled vectors; the mask register held this before.
    Masked { at: u16, before: u32 },
    /// Disabled it: the device cannot mask vectors one by one.
    Disabled { at: u16 },
}

/// What [`mask`] changed, for [`unmask`] to undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Masked {
    intx: bool,
    /// The MSI-X capability, when its Function Mask was set here.
    msix: Option<u16>,
    msi: Msi,
}

impl Masked {
    /// Whether anything had to be masked.
    pub(crate) fn changed_anything(&self) -> bool {
        self.intx || self.msix.is_some() || self.msi != Msi::Untouched
    }
}

/// Sets `bits` in the 16-bit register at `at`, unless they are already all set; whether it
/// wrote.
fn set16(dev: &pci::Device, at: u16, bits: u16) -> Result<bool> {
    let value = dev.config_read16(at)?;
    if value & bits == bits {
        return Ok(false);
    }
    dev.config_write16(at, value | bits)?;
    Ok(true)
}

/// Clears `bits` in the 16-bit register at `at`.
fn clear16(dev: &pci::Device, at: u16, bits: u16) -> Result {
    let value = dev.config_read16(at)?;
    dev.config_write16(at, value & !bits)
}

fn mask_msi(dev: &pci::Device) -> Result<Msi> {
    let Some(cap) = dev.find_capability(bindings::PCI_CAP_ID_MSI as u8) else {
        return Ok(Msi::Untouched);
    };
    let flags_at = u16::from(cap) + MSI_FLAGS;
    let flags = dev.config_read16(flags_at)?;
    if flags & MSI_FLAGS_ENABLE == 0 {
        return Ok(Msi::Untouched);
    }
    if flags & MSI_FLAGS_MASKBIT == 0 {
        dev.config_write16(flags_at, flags & !MSI_FLAGS_ENABLE)?;
        return Ok(Msi::Disabled { at: flags_at });
    }
    let at = u16::from(cap)
        + if flags & MSI_FLAGS_64BIT != 0 {
            MSI_MASK_64
        } else {
            MSI_MASK_32
        };
    // Multiple Message Enable: 2^n vectors are in use, at most 32.
    let vectors = 1u32 << ((flags & MSI_FLAGS_QSIZE) >> 4).min(5);
    let all = u32::MAX >> (32 - vectors);
    let before = dev.config_read32(at)?;
    dev.config_write32(at, before | all)?;
    Ok(Msi::Masked { at, before })
}

/// Masks the interrupts of `dev` at the device; what it changed comes back for [`unmask`].
///
/// On an error (the config space cannot be reached) what was masked so far stays masked.
pub(crate) fn mask(dev: &pci::Device) -> Result<Masked> {
    let intx = set16(dev, COMMAND, COMMAND_INTX_DISABLE)?;
    let msix = match dev.find_capability(bindings::PCI_CAP_ID_MSIX as u8) {
        Some(cap) => {
            let at = u16::from(cap) + MSIX_FLAGS;
            let enabled = dev.config_read16(at)? & MSIX_FLAGS_ENABLE != 0;
            (enabled && set16(dev, at, MSIX_FLAGS_MASKALL)?).then_some(at)
        }
        None => None,
    };
    let msi = mask_msi(dev)?;
    Ok(Masked { intx, msix, msi })
}

/// Undoes what [`mask`] did, for a kexec that did not happen.
pub(crate) fn unmask(dev: &pci::Device, masked: &Masked) -> Result {
    match masked.msi {
        Msi::Untouched => {}
        Msi::Masked { at, before } => dev.config_write32(at, before)?,
        Msi::Disabled { at } => {
            let flags = dev.config_read16(at)?;
            dev.config_write16(at, flags | MSI_FLAGS_ENABLE)?;
        }
    }
    if let Some(at) = masked.msix {
        clear16(dev, at, MSIX_FLAGS_MASKALL)?;
    }
    if masked.intx {
        clear16(dev, COMMAND, COMMAND_INTX_DISABLE)?;
    }
    Ok(())
}
