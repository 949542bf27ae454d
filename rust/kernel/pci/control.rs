// SPDX-License-Identifier: GPL-2.0

//! Control of a PCI function from outside its driver's probe: command register and reset.

use super::Device;
use crate::{bindings, device::DeviceContext, error::to_result, prelude::*};

impl<Ctx: DeviceContext> Device<Ctx> {
    /// The command register, as the device reports it (`PCI_COMMAND`); 0 when unreadable.
    pub fn command(&self) -> u16 {
        let mut command = 0;
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`; `command` outlives the call.
        let ret = unsafe {
            bindings::pci_read_config_word(
                self.as_raw(),
                bindings::PCI_COMMAND as c_int,
                &mut command,
            )
        };
        if ret != 0 {
            return 0;
        }
        command
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
