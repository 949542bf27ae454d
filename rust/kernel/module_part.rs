// SPDX-License-Identifier: GPL-2.0

//! Rust code linked into a module whose `module_init()` is written in C.
//!
//! A C module may have a part written in Rust: a composite object of C and Rust objects, built
//! in or as a module with the rest of it. That part has no module of its own, so
//! [`module!`](macro@crate::prelude::module) does not fit it: the C part's init and exit call
//! the two functions [`module_part!`] generates instead, and the Rust part belongs to the
//! module the C part builds ([`ThisModule`](crate::ThisModule) is that module's).

/// Declares the Rust part of a module whose `module_init()` and `module_exit()` are in C.
///
/// `type` implements [`InPlaceModule`](crate::InPlaceModule). The macro defines, as C
/// functions, `init`, which initialises the type in a static and returns 0 or a negative errno,
/// and `exit`, which drops it. The C part declares both in a header, calls `init` from its
/// module init and `exit` from its module exit, only once `init` succeeded. `name` prefixes the
/// part's log messages and is the [`ModuleMetadata::NAME`](crate::ModuleMetadata::NAME) of
/// `type`.
///
/// ```ignore
/// kernel::module_part! {
///     type: VfioPciLiveupdate,
///     name: "vfio_pci_liveupdate",
///     init: vfio_pci_liveupdate_init,
///     exit: vfio_pci_liveupdate_exit,
/// }
/// ```
#[macro_export]
macro_rules! module_part {
    (type: $type:ty, name: $name:literal, init: $init:ident, exit: $exit:ident $(,)?) => {
        /// The part's name, which the printing macros prefix messages with.
        const __LOG_PREFIX: &[u8] = ::core::concat!($name, "\0").as_bytes();

        /// The type of the module part, for abstractions that need its module.
        type LocalModule = $type;

        impl $crate::ModuleMetadata for $type {
            const NAME: &'static $crate::str::CStr =
                match $crate::str::CStr::from_bytes_with_nul(__LOG_PREFIX) {
                    Ok(name) => name,
                    Err(_) => ::core::panic!("module part name with a NUL byte"),
                };

            #[cfg(MODULE)]
            const THIS_MODULE: $crate::ThisModule = {
                extern "C" {
                    static __this_module: $crate::types::Opaque<$crate::bindings::module>;
                }

                // SAFETY: `__this_module` is the module this object is linked into, which the
                // kernel constructs at load time and which lives until it is unloaded.
                unsafe { $crate::ThisModule::from_ptr(__this_module.get()) }
            };

            #[cfg(not(MODULE))]
            const THIS_MODULE: $crate::ThisModule = {
                // SAFETY: Built-in code has no module; a null `THIS_MODULE` says so, as in C.
                unsafe { $crate::ThisModule::from_ptr(::core::ptr::null_mut()) }
            };
        }

        // Nested, so that nothing but the two C functions reaches the state.
        #[doc(hidden)]
        mod __module_part {
            use super::LocalModule;

            static mut STATE: ::core::mem::MaybeUninit<LocalModule> =
                ::core::mem::MaybeUninit::uninit();

            /// Initialises the module part.
            ///
            /// # Safety
            ///
            /// Called once, by the module's C init, before any other use of the part.
            #[no_mangle]
            pub unsafe extern "C" fn $init() -> $crate::ffi::c_int {
                let module = $crate::module::this_module::<LocalModule>();
                let init = <LocalModule as $crate::InPlaceModule>::init(module);
                // SAFETY: Only this function and `$exit` reach `STATE`; this one runs once,
                // before `$exit` (function safety rules).
                match unsafe { ::pin_init::raw_try_init((&raw mut STATE).cast(), init) } {
                    Ok(()) => 0,
                    Err(e) => e.to_errno(),
                }
            }

            /// Tears the module part down.
            ///
            /// # Safety
            ///
            /// Called once, by the module's C exit, and only after `$init` returned 0.
            #[no_mangle]
            pub unsafe extern "C" fn $exit() {
                // SAFETY: `$init` initialised `STATE`, and nothing else reaches it any more
                // (function safety rules).
                unsafe { (*(&raw mut STATE)).assume_init_drop() };
            }
        }
    };
}
