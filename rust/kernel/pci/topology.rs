// SPDX-License-Identifier: GPL-2.0

//! Where a PCI device sits: its address, the bridge above it, and lookups by address.

use super::Device;
use crate::{bindings, device::DeviceContext, sync::aref::ARef};
use core::ptr::NonNull;

impl<Ctx: DeviceContext> Device<Ctx> {
    /// The PCI domain (segment) number.
    pub fn domain_nr(&self) -> u32 {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`, whose bus is set for its lifetime.
        let nr = unsafe { bindings::pci_dev_domain_nr(self.as_raw()) };
        // Domain numbers are never negative; `pci_domain_nr()` only returns an `int`.
        nr as u32
    }

    /// Whether this is a bridge (PCI-to-PCI or CardBus), with buses of its own below.
    pub fn is_bridge(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_is_bridge(self.as_raw()) }
    }

    /// Whether this is an SR-IOV virtual function.
    pub fn is_virtfn(&self) -> bool {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        unsafe { bindings::pci_dev_is_virtfn(self.as_raw()) }
    }

    /// The bridge directly upstream of this device, `None` on a root bus.
    pub fn upstream_bridge(&self) -> Option<ARef<Device>> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        let bridge = NonNull::new(unsafe { bindings::pci_upstream_bridge(self.as_raw()) })?;
        // A device holds a reference on its parent bridge; `ARef::from` takes one of our own.
        // SAFETY: `bridge` is a valid `struct pci_dev` while `self` lives; `Device` wraps it.
        let bridge = unsafe { bridge.cast::<Device>().as_ref() };
        Some(ARef::from(bridge))
    }
}

impl Device {
    /// The device at `domain`:`bus`:`devfn`, if there is one.
    pub fn get(domain: u32, bus: u8, devfn: u8) -> Option<ARef<Device>> {
        let domain = i32::try_from(domain).ok()?;
        let (bus, devfn) = (bus.into(), devfn.into());
        // SAFETY: Any numbers are fine; the device returned, if any, comes with a reference.
        let dev = unsafe { bindings::pci_get_domain_bus_and_slot(domain, bus, devfn) };
        // SAFETY: `dev` is a valid `struct pci_dev` with a reference owned by the `ARef`.
        NonNull::new(dev).map(|dev| unsafe { ARef::from_raw(dev.cast()) })
    }
}

/// A device of the QEMU machine that KUnit tests needing real PCI devices expect (the one of
/// tools/vmtest): a PCIe root port (1b36:000c) at 0000:00:01.0, which `bus` 0 names, and QEMU
/// edu devices (1234:11e8) behind it at 0000:01:00.`function`, which `bus` 1 names.
///
/// On any other machine, or when the device is missing, `None`, with the running test marked
/// skipped: such tests must neither fail nor touch devices they do not know.
#[cfg(CONFIG_KUNIT)]
pub fn kunit_machine_device(bus: u8, function: u8) -> Option<ARef<Device>> {
    let found = || {
        let port = Device::get(0, 0, 1 << 3)?;
        if (port.vendor_id().as_raw(), port.device_id()) != (0x1b36, 0x000c) {
            return None;
        }
        if bus == 0 {
            return Some(port);
        }
        let dev = Device::get(0, bus, function)?;
        let behind_port = dev.upstream_bridge()?.dev_id() == port.dev_id();
        let edu = (dev.vendor_id().as_raw(), dev.device_id()) == (0x1234, 0x11e8);
        (bus == 1 && behind_port && edu).then_some(dev)
    };
    let dev = found();
    if dev.is_none() {
        crate::kunit::mark_skipped(c"not the QEMU test machine (tools/vmtest) this test needs");
    }
    dev
}

#[cfg(CONFIG_RUST_LIVEUPDATE_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_pci_topology)]
mod tests {
    use super::*;
    use crate::prelude::*;

    /// Devfn of slot `slot`, function 0.
    const fn devfn(slot: u8) -> u8 {
        slot << 3
    }

    /// The QEMU machine of the test runner (tools/vmtest): a q35 host bridge at 0000:00:00.0,
    /// and the scenario's first device at 0000:01:00.0 behind the root port 0000:00:01.0.
    #[test]
    fn walks_from_a_device_up_to_the_root() -> Result {
        let Some(dev) = kunit_machine_device(1, 0) else {
            return Ok(());
        };
        assert_eq!(dev.domain_nr(), 0);
        assert_eq!(dev.dev_id(), 0x0100);
        assert!(!dev.is_virtfn());
        assert!(!dev.is_bridge());
        let port = dev.upstream_bridge().ok_or(ENODEV)?;
        assert!(port.is_bridge());
        assert_eq!(port.dev_id(), u16::from(devfn(1)));
        assert!(port.upstream_bridge().is_none());
        let host = Device::get(0, 0, devfn(0)).ok_or(ENODEV)?;
        assert!(host.upstream_bridge().is_none());
        Ok(())
    }

    #[test]
    fn absent_addresses_find_nothing() {
        assert!(Device::get(0, 0xfe, devfn(31)).is_none());
        assert!(Device::get(0x7fff_0000, 0, 0).is_none());
        assert!(Device::get(u32::MAX, 0, 0).is_none());
    }
}
