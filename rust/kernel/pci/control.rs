// SPDX-License-Identifier: GPL-2.0

//! Control of a PCI function from outside its driver's probe: config space, command register,
//! bus mastering and reset, for PCI core code written in Rust.
//!
//! A driver reaches the config space of its bound device through `Device::config_space()`;
//! these work on any device, as the C PCI core's accessors do.

use super::Device;
use crate::{bindings, device::DeviceContext, error::to_result, prelude::*};

/// A config space accessor's `PCIBIOS_*` status as a result.
fn pcibios_result(status: c_int) -> Result {
    if status == 0 {
        Ok(())
    } else {
        Err(EIO)
    }
}

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Reads the 16-bit config register at `offset`.
    pub fn config_read16(&self, offset: u16) -> Result<u16> {
        let mut value = 0;
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; `value` outlives the call. The
        // accessor refuses offsets the device does not have.
        pcibios_result(unsafe {
            bindings::pci_read_config_word(self.as_raw(), offset.into(), &mut value)
        })?;
        Ok(value)
    }

    /// Reads the 32-bit config register at `offset`.
    pub fn config_read32(&self, offset: u16) -> Result<u32> {
        let mut value = 0;
        // SAFETY: As in `config_read16`.
        pcibios_result(unsafe {
            bindings::pci_read_config_dword(self.as_raw(), offset.into(), &mut value)
        })?;
        Ok(value)
    }

    /// Writes the 16-bit config register at `offset`.
    pub fn config_write16(&self, offset: u16, value: u16) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`. The accessor refuses offsets
        // the device does not have.
        pcibios_result(unsafe {
            bindings::pci_write_config_word(self.as_raw(), offset.into(), value)
        })
    }

    /// Writes the 32-bit config register at `offset`.
    pub fn config_write32(&self, offset: u16, value: u32) -> Result {
        // SAFETY: As in `config_write16`.
        pcibios_result(unsafe {
            bindings::pci_write_config_dword(self.as_raw(), offset.into(), value)
        })
    }

    /// The size of the config space in bytes: 256, or 4096 with the PCIe extended space.
    pub fn config_space_size(&self) -> usize {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, whose `cfg_size` enumeration set
        // before the device became reachable and nothing changes after.
        let size = unsafe { (*self.as_raw()).cfg_size };
        size as usize
    }

    /// The config offset of the standard capability `id` (`PCI_CAP_ID_*`), if the device has
    /// it.
    pub fn find_capability(&self, id: u8) -> Option<u8> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        let at = unsafe { bindings::pci_find_capability(self.as_raw(), id.into()) };
        (at != 0).then_some(at)
    }

    /// The command register, as the device reports it (`PCI_COMMAND`); 0 when unreadable.
    pub fn command(&self) -> u16 {
        self.config_read16(bindings::PCI_COMMAND as u16)
            .unwrap_or(0)
    }

    /// Turns bus mastering on (`pci_set_master()`).
    pub fn enable_bus_master(&self) {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_set_master(self.as_raw()) };
    }

    /// Turns bus mastering off (`pci_clear_master()`).
    pub fn clear_master(&self) {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_clear_master(self.as_raw()) };
    }

    /// Resets the function with the best method it has (`pci_reset_function()`), saving and
    /// restoring its config space around the reset; takes the device lock.
    pub fn reset_function(&self) -> Result {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_reset_function(self.as_raw()) })
    }
}
