// SPDX-License-Identifier: GPL-2.0

//! Intel VT-d units, as the hand-over of their translation across a Live Update sees them.
//!
//! C header: [`include/linux/intel_iommu_liveupdate.h`](srctree/include/linux/intel_iommu_liveupdate.h)
//!
//! Only legacy (non-scalable) mode is reachable: context entries point at second-level page
//! tables. What the hardware does with the tables it is pointed at is the caller's concern,
//! as with any device programming (enabling bus mastering, say): these functions only keep
//! the kernel's own memory accesses sound.

use crate::{
    bindings, device,
    error::to_result,
    kho::{KhoMem, Outgoing},
    liveupdate::{FileHandler, Registration},
    pci,
    prelude::*,
    types::Opaque,
};

/// A VT-d unit (`struct intel_iommu`).
///
/// # Invariants
///
/// A unit lives as long as the kernel: the VT-d driver frees one only on DMAR hot removal,
/// which no unit translating a kept device undergoes.
#[repr(transparent)]
pub struct Unit(Opaque<bindings::intel_iommu>);

// SAFETY: The VT-d driver serialises what these methods touch with its own locks.
unsafe impl Sync for Unit {}
// SAFETY: As above; a unit is not tied to a thread.
unsafe impl Send for Unit {}

impl Unit {
    /// The unit `ptr` points to.
    ///
    /// # Safety
    ///
    /// `ptr` points to a `struct intel_iommu` of the VT-d driver.
    pub unsafe fn from_raw(ptr: *mut bindings::intel_iommu) -> &'static Unit {
        // SAFETY: `Unit` is a transparent wrapper, and units live as long as the kernel (type
        // invariants).
        unsafe { &*ptr.cast() }
    }

    fn as_raw(&self) -> *mut bindings::intel_iommu {
        self.0.get()
    }

    /// Physical address of its registers, which names it in both kernels.
    pub fn reg_base(&self) -> u64 {
        // SAFETY: `self` is a valid unit.
        unsafe { bindings::intel_iommu_lu_reg_base(self.as_raw()) }
    }

    /// The PCI segment of its devices.
    pub fn segment(&self) -> u16 {
        // SAFETY: `self` is a valid unit.
        unsafe { bindings::intel_iommu_lu_segment(self.as_raw()) }
    }

    /// The root table address register.
    pub fn root_table(&self) -> u64 {
        // SAFETY: `self` is a valid unit; the register read has no side effect.
        unsafe { bindings::intel_iommu_lu_root_table(self.as_raw()) }
    }

    /// Points the unit at the root table at `phys`, translation left as it is, and
    /// invalidates what it cached. Polls: callable with interrupts off (at the kexec).
    pub fn set_root_table(&self, phys: u64) {
        // SAFETY: `self` is a valid unit; the function only programs the unit's registers.
        unsafe { bindings::intel_iommu_lu_set_root_table(self.as_raw(), phys) }
    }

    /// Blocks all DMA the unit translates, translation left on (an empty root table).
    pub fn block(&self) -> Result {
        // SAFETY: `self` is a valid unit.
        to_result(unsafe { bindings::intel_iommu_lu_block(self.as_raw()) })
    }

    /// Writes the table page at `page`, written by this kernel, back to memory for a unit
    /// that does not snoop.
    pub fn flush_table(&self, page: &KhoMem<Outgoing>) {
        // SAFETY: `self` is a valid unit; `page` is a page of memory this kernel owns.
        unsafe { bindings::intel_iommu_lu_flush_table(self.as_raw(), page.phys()) }
    }

    /// Whether the device at `bdf` still translates through the tables a previous kernel
    /// left, the VT-d driver having adopted them.
    pub fn context_copied(&self, bdf: u16) -> bool {
        // SAFETY: `self` is a valid unit.
        unsafe { bindings::intel_iommu_lu_context_copied(self.as_raw(), bdf) }
    }
}

/// The context entry that translates `dev`'s DMA, with its unit and BDF there.
///
/// Fails with `ENODEV` when no VT-d unit translates `dev`, `EOPNOTSUPP` in scalable mode.
pub fn context_of<Ctx: device::DeviceContext>(
    dev: &pci::Device<Ctx>,
) -> Result<(&'static Unit, u16, [u64; 2])> {
    let dev: &device::Device<Ctx> = dev.as_ref();
    let mut unit = core::ptr::null_mut();
    let (mut bdf, mut lo, mut hi) = (0, 0, 0);
    // SAFETY: `dev` is a valid device; the out pointers are valid for writes.
    to_result(unsafe {
        bindings::intel_iommu_lu_context(dev.as_raw(), &mut unit, &mut bdf, &mut lo, &mut hi)
    })?;
    // SAFETY: On success the function stored the unit translating `dev`.
    Ok((unsafe { Unit::from_raw(unit) }, bdf, [lo, hi]))
}

/// Entry `index` of the page-table page at `page` in this kernel's memory, or `None` when
/// `page` is not a page of online memory or `index` is out of range.
///
/// Page tables the kernel wrote are read here: the read is of memory the kernel maps, and
/// a racing writer only makes the value stale, which the caller's validation copes with.
pub fn read_table_entry(page: u64, index: usize) -> Option<u64> {
    let index = u32::try_from(index).ok()?;
    let mut entry = 0;
    // SAFETY: The function checks `page` and `index` itself; `entry` is valid for writes.
    unsafe { bindings::intel_iommu_lu_read_table(page, index, &mut entry) }.then_some(entry)
}

/// Makes the files of `handler` depend on the VT-d FLB, which LUO then preserves with the
/// first of them: the record of the units whose translation continues.
pub fn register_flb<T: FileHandler>(handler: &Registration<T>) -> Result {
    // SAFETY: `handler` is registered with LUO while the reference lives.
    to_result(unsafe { bindings::intel_iommu_liveupdate_register_flb(handler.as_raw()) })
}

/// Exports Rust functions of a `&Unit` as C functions of a `struct intel_iommu *`, for the
/// VT-d driver to call; see [`crate::export_pci_device_fns`].
#[macro_export]
macro_rules! export_vtd_unit_fns {
    ($($c_name:ident() -> $ret:ty = $rust:path;)*) => {$(
        /// C entry point of the Rust function of the same purpose.
        ///
        /// # Safety
        ///
        /// `iommu` points to a `struct intel_iommu` of the VT-d driver.
        #[no_mangle]
        pub unsafe extern "C" fn $c_name(iommu: *mut $crate::bindings::intel_iommu) -> $ret {
            // SAFETY: Passed on to the caller of this function (see above).
            $rust(unsafe { $crate::iommu::vtd::Unit::from_raw(iommu) })
        }
    )*};
}
