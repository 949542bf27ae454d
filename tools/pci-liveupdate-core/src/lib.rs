// SPDX-License-Identifier: GPL-2.0
//! The PCI Live Update core's pure logic, compiled for the host.
//!
//! The kernel compiles the very same files (`drivers/pci/liveupdate/abi.rs` and `table.rs`);
//! this crate only adds the `Vec` storage, so the ABI codec, the device table and the
//! validator of handed-over state are unit- and property-tested with `cargo test`.

#[path = "../../../drivers/pci/liveupdate/abi.rs"]
pub mod abi;
#[path = "../../../drivers/pci/liveupdate/table.rs"]
pub mod table;

impl<T> table::Storage<T> for Vec<T> {
    fn items(&self) -> &[T] {
        self
    }

    fn items_mut(&mut self) -> &mut [T] {
        self
    }

    fn reserve(&mut self, additional: usize) -> Result<(), table::OutOfMemory> {
        self.try_reserve(additional).map_err(|_| table::OutOfMemory)
    }

    fn push_reserved(&mut self, item: T) {
        debug_assert!(self.len() < self.capacity());
        self.push(item);
    }

    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
}
