// SPDX-License-Identifier: GPL-2.0

//! VFIO devices of PCI functions driven by vfio-pci-core, for the vfio-pci Live Update file
//! handler.
//!
//! C headers: [`include/linux/vfio.h`](srctree/include/linux/vfio.h),
//! [`include/linux/vfio_pci_core.h`](srctree/include/linux/vfio_pci_core.h).
//!
//! The handler is part of vfio-pci-core, which distributions build as a module, and so is the
//! VFIO core. The kernel crate is always built in and cannot call into a module: the functions
//! here that call the VFIO core are `#[inline]`, so they are only ever code-generated in the
//! handler, never in the kernel image.

use crate::{
    bindings,
    error::from_err_ptr,
    fs::File,
    ioctl::_IO,
    pci::{
        self,
        saved_state::{SavedState, SavedStateRef},
    },
    prelude::*,
    sync::aref::ARef,
    types::Opaque,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};
use core::{ptr, ptr::NonNull};

const VFIO_TYPE: u32 = b';' as u32;
const VFIO_BASE: u32 = 100;

/// `VFIO_DEVICE_SET_IRQS`.
pub const DEVICE_SET_IRQS: u32 = _IO(VFIO_TYPE, VFIO_BASE + 10);
/// `VFIO_DEVICE_RESET`.
pub const DEVICE_RESET: u32 = _IO(VFIO_TYPE, VFIO_BASE + 11);
/// `VFIO_DEVICE_PCI_HOT_RESET`.
pub const DEVICE_PCI_HOT_RESET: u32 = _IO(VFIO_TYPE, VFIO_BASE + 13);
/// The region index of the config space (`VFIO_PCI_CONFIG_REGION_INDEX`).
pub const PCI_CONFIG_REGION_INDEX: u32 = bindings::VFIO_PCI_CONFIG_REGION_INDEX;

/// A `VFIO_DEVICE_FEATURE` ioctl for one feature, as vfio-pci-core passes it on to the code
/// of that feature, checked.
pub enum FeatureRequest {
    /// `VFIO_DEVICE_FEATURE_PROBE`: the feature is there, for the operations asked.
    Probe,
    /// `VFIO_DEVICE_FEATURE_GET`: the feature's value goes to the argument.
    Get(UserSliceWriter),
    /// `VFIO_DEVICE_FEATURE_SET`: the argument holds the feature's new value.
    Set(UserSliceReader),
}

impl FeatureRequest {
    /// Checks the ioctl's `flags` and argument (`arg`, `argsz` bytes) as
    /// `vfio_check_feature()` does, for a feature that supports GET when `get` and SET when
    /// `set`, whose argument is `size` bytes. `EINVAL` for an operation it does not support,
    /// for both GET and SET at once, and for an argument shorter than `size`.
    pub fn new(
        flags: u32,
        arg: UserPtr,
        argsz: usize,
        get: bool,
        set: bool,
        size: usize,
    ) -> Result<Self> {
        let mut ops = 0;
        if get {
            ops |= bindings::VFIO_DEVICE_FEATURE_GET;
        }
        if set {
            ops |= bindings::VFIO_DEVICE_FEATURE_SET;
        }
        // SAFETY: The function only looks at its arguments.
        let ret = unsafe { bindings::vfio_check_feature(flags, argsz, ops, size) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        if ret == 0 {
            return Ok(Self::Probe);
        }
        let slice = UserSlice::new(arg, size);
        match (
            flags & bindings::VFIO_DEVICE_FEATURE_GET != 0,
            flags & bindings::VFIO_DEVICE_FEATURE_SET != 0,
        ) {
            (true, false) => Ok(Self::Get(slice.writer())),
            (false, true) => Ok(Self::Set(slice.reader())),
            _ => Err(EINVAL),
        }
    }
}

/// A vfio device of a PCI function, driven by vfio-pci-core (`struct vfio_pci_core_device`).
///
/// # Invariants
///
/// `self.0` is a registered vfio-pci-core device that is open, or being opened by the caller
/// under its `dev_set` lock: its virtual config space, the map of which capability each of its
/// bytes belongs to (`pci_config_map`, as long) and its saved state are set up by
/// `vfio_pci_core_enable()`, only change while the device is opened or closed, and are freed by
/// `vfio_pci_core_disable()`.
#[repr(transparent)]
pub struct PciCoreDevice(Opaque<bindings::vfio_pci_core_device>);

impl PciCoreDevice {
    fn as_raw(&self) -> *mut bindings::vfio_pci_core_device {
        self.0.get()
    }

    /// The device of `file`, when `file` is a vfio-pci-core device file opened through the
    /// vfio device cdev and bound to iommufd; `None` for any other file.
    #[inline]
    pub fn from_bound_cdev_file(file: &File) -> Option<&Self> {
        // SAFETY: `file.as_ptr()` is a valid file for the duration of the call.
        let device = unsafe { bindings::vfio_file_cdev_device(file.as_ptr()) };
        if device.is_null() {
            return None;
        }
        // SAFETY: `device` is a registered vfio device while `file` lives, and `dev` is the
        // device it was registered for.
        let parent = unsafe { (*device).dev };
        // SAFETY: `parent` is a valid device (see above).
        if !unsafe { bindings::dev_is_pci(parent) } {
            return None;
        }
        // SAFETY: `device` is valid (see above); the offset only matters when it is the
        // `vdev` of a vfio-pci-core device, which the drvdata check below establishes.
        let core = unsafe { crate::container_of!(device, bindings::vfio_pci_core_device, vdev) };
        // vfio_pci_core_register_device() requires every vfio-pci-core driver to make the
        // core device the drvdata of its PCI function.
        // SAFETY: `parent` is a valid device (see above).
        if unsafe { bindings::dev_get_drvdata(parent) } != core.cast() {
            return None;
        }
        // SAFETY: `core` is a vfio-pci-core device, registered and open (it is bound) while
        // `file` lives, which the returned lifetime ties it to; `Self` wraps it transparently.
        Some(unsafe { &*core.cast::<Self>() })
    }

    /// The PCI function.
    pub fn pci_dev(&self) -> &pci::Device {
        // SAFETY: `pdev` is set at init and outlives the registered device (type invariant);
        // `pci::Device` wraps a `struct pci_dev` transparently.
        unsafe { &*(*self.as_raw()).pdev.cast::<pci::Device>() }
    }

    /// Whether the function is driven by vfio-pci itself, rather than by a variant driver
    /// (mlx5-vfio-pci, ...) that keeps device state of its own beside vfio-pci-core's.
    pub fn is_vfio_pci(&self) -> bool {
        // SAFETY: The function is bound to a vfio-pci-core driver while the device is registered
        // (type invariant), so `driver` stays set.
        let driver = unsafe { (*(*self.as_raw()).pdev).driver };
        // SAFETY: A bound driver's name is a valid C string that lives as long as the driver.
        !driver.is_null() && unsafe { CStr::from_char_ptr((*driver).name) } == c"vfio-pci"
    }

    /// Whether vfio-pci-core can reset the function (`reset_works`).
    pub fn reset_works(&self) -> bool {
        // SAFETY: The bitfield is set at open and only changes then (type invariant).
        unsafe { bindings::vfio_pci_core_device::reset_works_raw(self.as_raw()) }
    }

    /// Sets what [`PciCoreDevice::reset_works`] reports; for a device being opened only.
    fn set_reset_works(&self, works: bool) {
        // SAFETY: Called from `restore()`, while the device is being opened under its
        // `dev_set` lock, when vfio-pci-core itself sets the bitfield.
        unsafe { bindings::vfio_pci_core_device::set_reset_works_raw(self.as_raw(), works) }
    }

    /// Size of the config space, and so of the virtual config space.
    pub fn cfg_size(&self) -> usize {
        self.pci_dev().config_space_size()
    }

    fn vconfig(&self) -> Result<*mut u8> {
        // SAFETY: `vconfig` is set while the device is open (type invariant).
        let vconfig = unsafe { (*self.as_raw()).vconfig };
        if vconfig.is_null() {
            return Err(ENODEV);
        }
        Ok(vconfig)
    }

    /// Copies the virtual config space into `out`, which must be [`Self::cfg_size`] long.
    ///
    /// Bytes outside every capability vfio-pci-core knows are read and written on the device
    /// itself, and vfio-pci-core never initialises them in the virtual config space: they come
    /// out as zero, so that a copy holds nothing but what vfio-pci-core uses.
    pub fn read_vconfig(&self, out: &mut [u8]) -> Result {
        /// `PCI_CAP_ID_INVALID` of vfio-pci-core (`drivers/vfio/pci/vfio_pci_priv.h`): a byte of
        /// no capability, accessed on the device.
        const RAW_ACCESS: u8 = 0xff;
        if out.len() != self.cfg_size() {
            return Err(EINVAL);
        }
        let vconfig = self.vconfig()?;
        // SAFETY: `pci_config_map` is set with `vconfig` while the device is open (type
        // invariant).
        let map = unsafe { (*self.as_raw()).pci_config_map };
        if map.is_null() {
            return Err(ENODEV);
        }
        // A config write racing with this copy gives a mix of old and new bytes, as it would
        // for any C reader; callers take the copy when the user has stopped writing.
        // SAFETY: `vconfig` holds `cfg_size` bytes while the device is open (type invariant).
        unsafe { ptr::copy_nonoverlapping(vconfig, out.as_mut_ptr(), out.len()) };
        // SAFETY: `pci_config_map` holds `cfg_size` bytes while the device is open, written only
        // when it is set up (type invariant).
        let map = unsafe { core::slice::from_raw_parts(map, out.len()) };
        for (byte, kind) in out.iter_mut().zip(map) {
            if *kind == RAW_ACCESS {
                *byte = 0;
            }
        }
        Ok(())
    }

    /// Replaces the virtual config space with `bytes`, which must be [`Self::cfg_size`] long.
    fn write_vconfig(&self, bytes: &[u8]) -> Result {
        if bytes.len() != self.cfg_size() {
            return Err(EINVAL);
        }
        let vconfig = self.vconfig()?;
        // SAFETY: As in `read_vconfig`; called from `restore()` while the device is being
        // opened, before the user can reach the config space.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), vconfig, bytes.len()) };
        Ok(())
    }

    /// The PCI state vfio-pci-core restores when the device is closed, if it could save one.
    pub fn saved_state(&self) -> Result<Option<SavedStateRef<'_>>> {
        // SAFETY: `pci_saved_state` only changes while the device is opened or closed (type
        // invariant).
        let state = unsafe { (*self.as_raw()).pci_saved_state };
        if state.is_null() {
            return Ok(None);
        }
        // SAFETY: Made by `pci_store_saved_state()` or a `SavedState` (`restore()`), it stays
        // until the device is closed, so while `self` is borrowed (type invariant).
        unsafe { SavedStateRef::from_raw(state) }.map(Some)
    }

    /// Gives the device the state preserved by the previous kernel while it is being opened:
    /// whether it can be reset, the PCI state to restore on close, the virtual config space.
    /// Either all of it is taken, or (`EINVAL` for a virtual config space of the wrong size,
    /// `ENODEV` without one) none.
    pub fn restore(&self, reset_works: bool, state: SavedState, vconfig: &[u8]) -> Result {
        self.write_vconfig(vconfig)?;
        let old = self.replace_saved_state(state);
        // SAFETY: `pci_store_saved_state()` and `SavedState` both allocate with `kmalloc()`,
        // and the old state is no longer referenced.
        unsafe { bindings::kfree(old.cast()) };
        self.set_reset_works(reset_works);
        Ok(())
    }

    /// Makes `state` the PCI state vfio-pci-core restores when the device is closed, and
    /// frees with `kfree()`; returns the state it replaces.
    fn replace_saved_state(&self, state: SavedState) -> *mut bindings::pci_saved_state {
        // SAFETY: Called from `restore()` while the device is being opened under its `dev_set`
        // lock, where vfio-pci-core itself sets `pci_saved_state`.
        unsafe { core::mem::replace(&mut (*self.as_raw()).pci_saved_state, state.into_raw()) }
    }

    /// Holds (`true`) or releases the host interrupts the user has set up on the device.
    ///
    /// Holding disables each of them, waiting for running handlers; an interrupt raised
    /// meanwhile is delivered when released. Calls nest, like `disable_irq()`. The user's
    /// interrupt configuration must not change in between (`VFIO_DEVICE_SET_IRQS` refused).
    pub fn hold_irqs(&self, hold: bool) {
        let vdev = self.as_raw();
        // SAFETY: `igate` is initialised with the device and serialises interrupt setup.
        unsafe { bindings::mutex_lock(&raw mut (*vdev).igate) };
        // SAFETY: `irq_type` and `pdev` are read under `igate`, which guards the first.
        let (irq_type, pdev) = unsafe { ((*vdev).irq_type as u32, (*vdev).pdev) };
        let vectors: c_uint = match irq_type {
            bindings::VFIO_PCI_INTX_IRQ_INDEX => 1,
            bindings::VFIO_PCI_MSI_IRQ_INDEX => 32,
            bindings::VFIO_PCI_MSIX_IRQ_INDEX => 2048,
            _ => 0,
        };
        for vector in 0..vectors {
            // SAFETY: `ctx` holds the interrupt contexts of the set-up vectors, under `igate`.
            if unsafe { bindings::xa_load(&raw mut (*vdev).ctx, vector as usize) }.is_null() {
                continue;
            }
            let irq = if irq_type == bindings::VFIO_PCI_INTX_IRQ_INDEX {
                // SAFETY: `pdev` is valid (type invariant).
                unsafe { (*pdev).irq }
            } else {
                // SAFETY: As above; a vector without an interrupt gives a negative errno.
                match c_uint::try_from(unsafe { bindings::pci_irq_vector(pdev, vector) }) {
                    Ok(irq) => irq,
                    Err(_) => continue,
                }
            };
            // SAFETY: `irq` is an interrupt of the device; the calls nest.
            unsafe {
                if hold {
                    bindings::disable_irq(irq)
                } else {
                    bindings::enable_irq(irq)
                }
            };
        }
        // SAFETY: Locked above.
        unsafe { bindings::mutex_unlock(&raw mut (*vdev).igate) };
    }
}

/// Opens the vfio device registered for `dev` as its cdev would: the file works once bound
/// to iommufd. Unlike an open of the cdev, this works while `dev` is incoming from a Live
/// Update. `ENODEV` when no vfio device with a cdev is registered for `dev`.
#[inline]
pub fn open_device_file(dev: &pci::Device) -> Result<ARef<File>> {
    let dev: &crate::device::Device = dev.as_ref();
    // SAFETY: `dev.as_raw()` is a valid device for the duration of the call.
    let file = from_err_ptr(unsafe { bindings::vfio_device_cdev_file(dev.as_raw()) })?;
    let file = NonNull::new(file).ok_or(ENODEV)?;
    // SAFETY: A new file whose reference is now owned by the `ARef`; `File` wraps it.
    Ok(unsafe { ARef::from_raw(file.cast()) })
}

/// Calls `f` with the device `vdev` points to and converts its result for C.
///
/// # Safety
///
/// `vdev` points to a registered vfio-pci-core device that is open, or being opened by the
/// caller, for the duration of the call.
#[doc(hidden)]
pub unsafe fn call_with_device<R: pci::IntoC>(
    vdev: *mut bindings::vfio_pci_core_device,
    f: impl FnOnce(&PciCoreDevice) -> R,
) -> R::C {
    // SAFETY: `vdev` satisfies the type invariants for the call (function safety rules);
    // `PciCoreDevice` wraps it transparently.
    let vdev = unsafe { &*vdev.cast::<PciCoreDevice>() };
    f(vdev).into_c()
}

/// Exports Rust functions of a `&PciCoreDevice` as C functions of a
/// `struct vfio_pci_core_device *`, for the calls vfio-pci-core makes on open devices.
///
/// Each line names the C function, its further arguments, its C return type and the Rust
/// function, whose result is converted with [`pci::IntoC`].
///
/// ```ignore
/// kernel::export_vfio_pci_core_fns! {
///     vfio_pci_liveupdate_ioctl_begin(cmd: c_uint) -> c_int = ioctl_begin;
/// }
/// ```
#[macro_export]
macro_rules! export_vfio_pci_core_fns {
    ($($c_name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $rust:path;)*) => {$(
        /// C entry point of the Rust function of the same purpose.
        ///
        /// # Safety
        ///
        /// `vdev` points to a registered vfio-pci-core device that is open, or being opened
        /// by the caller, for the duration of the call.
        #[no_mangle]
        pub unsafe extern "C" fn $c_name(
            vdev: *mut $crate::bindings::vfio_pci_core_device,
            $($arg: $ty),*
        ) -> $ret {
            // SAFETY: Passed on to the caller of this function (see above).
            unsafe { $crate::vfio::call_with_device(vdev, |d| $rust(d, $($arg),*)) }
        }
    )*};
}
