// SPDX-License-Identifier: GPL-2.0
//! The pure logic of the Live Update support, compiled for the host.
//!
//! The kernel compiles the very same files (`drivers/pci/liveupdate/{abi,table}.rs`,
//! `drivers/vfio/pci/liveupdate/abi.rs`, `drivers/iommu/intel/liveupdate/*.rs`); this crate
//! only adds the `Vec` storage, so the ABI codecs, the device table, the VT-d handover tables
//! and the validators of handed-over state are unit- and property-tested with `cargo test`.

pub mod intel_iommu;
pub mod pci;
pub mod vfio_pci;

impl<T> pci::table::Storage<T> for Vec<T> {
    fn items(&self) -> &[T] {
        self
    }

    fn items_mut(&mut self) -> &mut [T] {
        self
    }

    fn reserve(&mut self, additional: usize) -> Result<(), pci::table::OutOfMemory> {
        self.try_reserve(additional)
            .map_err(|_| pci::table::OutOfMemory)
    }

    fn push_reserved(&mut self, item: T) {
        debug_assert!(self.len() < self.capacity());
        self.push(item);
    }

    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
}
