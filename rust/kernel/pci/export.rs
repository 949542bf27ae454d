// SPDX-License-Identifier: GPL-2.0

//! C entry points for Rust functions that take a PCI device.
//!
//! A PCI core feature written in Rust gives C drivers an API of functions taking a
//! `struct pci_dev *`. [`export_pci_device_fns!`] generates those functions around safe Rust
//! ones, so the feature itself needs no `unsafe`.

use super::Device;
use crate::{bindings, prelude::*};

/// What a Rust function returns, as C sees it.
pub trait IntoC {
    /// The C type.
    type C;
    /// The C value.
    fn into_c(self) -> Self::C;
}

impl IntoC for Result {
    type C = c_int;

    fn into_c(self) -> c_int {
        match self {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

/// `Ok(value)` becomes `value`, which must fit a non-negative `c_int`, `Err` a negative errno.
impl IntoC for Result<u32> {
    type C = c_int;

    fn into_c(self) -> c_int {
        match self.and_then(|v| c_int::try_from(v).map_err(|_| ERANGE)) {
            Ok(v) => v,
            Err(e) => e.to_errno(),
        }
    }
}

/// `Ok(true)` becomes 1, `Ok(false)` 0, `Err` a negative errno.
impl IntoC for Result<bool> {
    type C = c_int;

    fn into_c(self) -> c_int {
        self.map(u32::from).into_c()
    }
}

impl IntoC for bool {
    type C = bool;

    fn into_c(self) -> bool {
        self
    }
}

impl IntoC for () {
    type C = ();

    fn into_c(self) {}
}

/// Calls `f` with the device `dev` points to and converts its result for C.
///
/// # Safety
///
/// `dev` points to a valid `struct pci_dev` for the duration of the call, which is what every
/// C caller of a PCI device API guarantees.
#[doc(hidden)]
pub unsafe fn call_with_device<R: IntoC>(
    dev: *mut bindings::pci_dev,
    f: impl FnOnce(&Device) -> R,
) -> R::C {
    // SAFETY: `dev` is valid for the call (function safety rules); `Device` is a transparent
    // wrapper of `struct pci_dev`.
    let dev = unsafe { &*dev.cast::<Device>() };
    f(dev).into_c()
}

/// Exports Rust functions of a `&pci::Device` as C functions of a `struct pci_dev *`.
///
/// Each line names the C function, its further arguments, its C return type, and the Rust
/// function it calls with the device and those arguments, whose result is converted with
/// [`IntoC`]: `Result` becomes 0 or a negative errno.
///
/// ```ignore
/// kernel::export_pci_device_fns! {
///     pci_liveupdate_preserve() -> c_int = preserve;
///     pci_liveupdate_check_probe(driver_managed_dma: bool) -> c_int = check_probe;
/// }
/// ```
#[macro_export]
macro_rules! export_pci_device_fns {
    ($($c_name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $rust:path;)*) => {$(
        /// C entry point of the Rust function of the same purpose.
        ///
        /// # Safety
        ///
        /// `dev` points to a valid `struct pci_dev` for the duration of the call.
        #[no_mangle]
        pub unsafe extern "C" fn $c_name(
            dev: *mut $crate::bindings::pci_dev,
            $($arg: $ty),*
        ) -> $ret {
            // SAFETY: Passed on to the caller of this function (see above).
            unsafe { $crate::pci::call_with_device(dev, |d| $rust(d, $($arg),*)) }
        }
    )*};
}
