// SPDX-License-Identifier: GPL-2.0

//! Live Update Orchestrator (LUO): file handlers and File-Lifecycle-Bound objects.
//!
//! C header: [`include/linux/liveupdate.h`](srctree/include/linux/liveupdate.h).
//!
//! Userspace preserves a file in a LUO session; the [`FileHandler`] registered for that kind
//! of file saves its state, hands a `u64` [`Handle`] to the next kernel, and gives back a
//! working file there. A [`Flb`] is state shared by every preserved file of one or more
//! handlers: LUO preserves it with the first such file and finishes it with the last.
//!
//! Reference: <https://docs.kernel.org/core-api/liveupdate.html>

use crate::{
    bindings,
    error::{to_result, VTABLE_DEFAULT_ERROR},
    fs::File,
    kho::{self, Incoming, KhoMem, Outgoing},
    module::this_module,
    prelude::*,
    sync::aref::ARef,
    types::{ForeignOwnable, Opaque},
};
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};

/// The `u64` LUO hands to the next kernel for a preserved file or FLB.
///
/// In practice the physical address of KHO memory holding the serialised state, so it offers
/// the conversions from and to [`KhoMem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(u64);

impl Handle {
    /// A handle carrying `value` as it is.
    pub const fn from_raw(value: u64) -> Self {
        Self(value)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A handle naming `mem` for the next kernel. `mem` must stay alive (and so preserved)
    /// until the kexec, typically inside the file's [`FileHandler::Preserved`] state.
    pub fn of(mem: &KhoMem<Outgoing>) -> Self {
        Self(mem.phys())
    }

    /// Copies the start of the KHO memory the previous kernel named with this handle into
    /// `buf`, leaving the memory for [`Handle::restore`] (see [`kho::read_handed_over`]).
    pub fn read(self, buf: &mut [u8]) -> Result {
        kho::read_handed_over(self.0, buf)
    }

    /// Takes back the KHO memory the previous kernel named with this handle.
    pub fn restore(self) -> Result<KhoMem<Incoming>> {
        KhoMem::restore(self.0)
    }
}

/// What LUO knows about the retrieve of a file when it asks to finish it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetrieveStatus {
    /// Userspace never retrieved the file: the handler still owns the state behind the
    /// [`Handle`] and must release it in [`FileHandler::finish`].
    NotAttempted,
    /// [`FileHandler::retrieve`] succeeded; the state now lives with the retrieved file.
    Retrieved,
    /// [`FileHandler::retrieve`] failed with this error after taking the state.
    Failed(Error),
}

impl RetrieveStatus {
    fn from_raw(status: c_int) -> Self {
        match status {
            0 => Self::NotAttempted,
            s if s > 0 => Self::Retrieved,
            s => Self::Failed(Error::from_errno(s)),
        }
    }
}

/// The result of [`FileHandler::preserve`].
pub struct Preservation<P> {
    /// What the next kernel receives in [`FileHandler::retrieve`].
    pub handle: Handle,
    /// Runtime state of the preserved file in this kernel, given back to
    /// [`FileHandler::unpreserve`]; never handed over.
    pub state: P,
}

/// A kind of file that can be preserved across a Live Update.
///
/// Mirrors `struct liveupdate_file_ops`. `can_preserve`, `preserve`, `unpreserve`, `retrieve`
/// and `finish` are required; the others are optional, and LUO behaves as documented for a
/// missing callback when they are not implemented.
#[vtable]
pub trait FileHandler: Sized + 'static {
    /// Runtime state of one preserved file in the outgoing kernel.
    type Preserved: ForeignOwnable + Send + Sync;

    /// Whether this handler takes `file`; cheap, and without side effects.
    fn can_preserve(file: &File) -> bool;

    /// Saves the state of `file` for the next kernel.
    fn preserve(file: &File) -> Result<Preservation<Self::Preserved>>;

    /// Undoes [`FileHandler::preserve`]: the file is no longer preserved.
    fn unpreserve(file: &File, handle: Handle, state: Self::Preserved);

    /// Last step before the kexec; may replace the handle.
    fn freeze(
        _file: &File,
        _state: <Self::Preserved as ForeignOwnable>::Borrowed<'_>,
        _handle: &mut Handle,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Undoes [`FileHandler::freeze`] when the kexec does not happen.
    fn unfreeze(
        _file: &File,
        _state: <Self::Preserved as ForeignOwnable>::Borrowed<'_>,
        _handle: Handle,
    ) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// In the new kernel: rebuilds the file from `handle`. The state behind the handle is
    /// taken whether this succeeds or fails.
    fn retrieve(handle: Handle) -> Result<ARef<File>>;

    /// In the new kernel: whether the file may be finished now.
    fn can_finish(_file: Option<&File>, _handle: Handle, _status: RetrieveStatus) -> bool {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// In the new kernel: the session is finished. With [`RetrieveStatus::NotAttempted`] the
    /// handler releases the state behind `handle` itself.
    fn finish(file: Option<&File>, handle: Handle, status: RetrieveStatus);

    /// A unique identifier of `file` (default: its address).
    fn get_id(_file: &File) -> usize {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Copies `s` into a fixed-size, NUL-terminated C string field.
const fn compatible_field<const N: usize>(s: &CStr) -> Option<[c_char; N]> {
    let bytes = s.to_bytes();
    if bytes.is_empty() || bytes.len() >= N {
        return None;
    }
    let mut out = [0 as c_char; N];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i] as c_char;
        i += 1;
    }
    Some(out)
}

/// The registration of a [`FileHandler`] with LUO; unregistered on drop.
///
/// Dropping it also unlinks every [`Flb`] added with [`Registration::add_flb`]. A module that
/// owns a registration cannot be unloaded while a file of its handler is preserved: LUO holds
/// a reference on the owner module.
///
/// # Invariants
///
/// `handler` is registered with LUO for as long as this object exists.
#[pin_data(PinnedDrop)]
pub struct Registration<T: FileHandler> {
    #[pin]
    handler: Opaque<bindings::liveupdate_file_handler>,
    _t: PhantomData<T>,
}

// SAFETY: LUO may call into the handler and unregister it from any thread.
unsafe impl<T: FileHandler> Send for Registration<T> {}
// SAFETY: `&self` methods only pass the registered handler to LUO, which locks internally.
unsafe impl<T: FileHandler> Sync for Registration<T> {}

impl<T: FileHandler> Registration<T> {
    /// Registers `T` under `compatible`, the name the next kernel looks the handler up by.
    ///
    /// Fails with `EINVAL` when `compatible` is empty or longer than LUO allows, `EEXIST` when
    /// the name is taken, `EOPNOTSUPP` when Live Update is disabled.
    pub fn new(compatible: &'static CStr) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            handler <- Opaque::try_ffi_init(move |slot: *mut bindings::liveupdate_file_handler| {
                let compatible = compatible_field(compatible).ok_or(EINVAL)?;
                let handler = bindings::liveupdate_file_handler {
                    ops: FileHandlerVTable::<T>::build(),
                    compatible,
                    ..pin_init::zeroed()
                };
                // SAFETY: `slot` is valid for writes.
                unsafe { slot.write(handler) };
                // SAFETY: `slot` holds a fully set up handler at a pinned address; the drop of
                // this object unregisters it before the memory goes away.
                to_result(unsafe { bindings::liveupdate_register_file_handler(slot) })
            }),
            _t: PhantomData,
        })
    }

    /// Makes every file of this handler depend on `flb`.
    ///
    /// Fails with `EEXIST` when already added, `ENOSPC` when LUO has no room for another FLB.
    pub fn add_flb<F: FlbOps>(&self, flb: &'static Flb<F>) -> Result {
        // SAFETY: The handler is registered (type invariant) and `flb` is static.
        to_result(unsafe { bindings::liveupdate_register_flb(self.handler.get(), flb.as_raw()) })
    }

    /// Undoes [`Registration::add_flb`].
    pub fn remove_flb<F: FlbOps>(&self, flb: &'static Flb<F>) {
        // SAFETY: As in `add_flb`; LUO ignores an FLB that is not linked.
        unsafe { bindings::liveupdate_unregister_flb(self.handler.get(), flb.as_raw()) };
    }

    /// The C handler, for C APIs that take one.
    pub fn as_raw(&self) -> *mut bindings::liveupdate_file_handler {
        self.handler.get()
    }
}

#[pinned_drop]
impl<T: FileHandler> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The handler is registered by the type invariants.
        unsafe { bindings::liveupdate_unregister_file_handler(self.handler.get()) };
    }
}

struct FileHandlerVTable<T: FileHandler>(PhantomData<T>);

impl<T: FileHandler> FileHandlerVTable<T> {
    /// # Safety
    ///
    /// `file` is a valid file for the duration of the call.
    unsafe extern "C" fn can_preserve(
        _handler: *mut bindings::liveupdate_file_handler,
        file: *mut bindings::file,
    ) -> bool {
        // SAFETY: `file` is valid for the call; LUO holds no fdget_pos region on it.
        T::can_preserve(unsafe { File::from_raw_file(file) })
    }

    /// # Safety
    ///
    /// `args` is valid, with `file` set, for the duration of the call.
    unsafe extern "C" fn preserve(args: *mut bindings::liveupdate_file_op_args) -> c_int {
        // SAFETY: `args` and its `file` are valid for the call.
        let args = unsafe { &mut *args };
        // SAFETY: As above.
        let file = unsafe { File::from_raw_file(args.file) };
        match T::preserve(file) {
            Ok(p) => {
                args.serialized_data = p.handle.raw();
                args.private_data = p.state.into_foreign();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `args` is valid, with `file` and `private_data` as left by a successful `preserve`.
    unsafe extern "C" fn unpreserve(args: *mut bindings::liveupdate_file_op_args) {
        // SAFETY: `args` and its `file` are valid for the call.
        let args = unsafe { &mut *args };
        // SAFETY: `private_data` came from `into_foreign()` in `preserve`; LUO hands it back
        // once, here, and never again.
        let state = unsafe { T::Preserved::from_foreign(args.private_data) };
        // SAFETY: `file` is valid for the call.
        let file = unsafe { File::from_raw_file(args.file) };
        T::unpreserve(file, Handle(args.serialized_data), state);
    }

    /// # Safety
    ///
    /// As for `unpreserve`; `private_data` stays owned by LUO.
    unsafe extern "C" fn freeze(args: *mut bindings::liveupdate_file_op_args) -> c_int {
        // SAFETY: `args` and its `file` are valid for the call.
        let args = unsafe { &mut *args };
        // SAFETY: `private_data` came from `into_foreign()`; it is only borrowed, and
        // `unpreserve` cannot run concurrently (LUO holds the file's mutex).
        let state = unsafe { T::Preserved::borrow(args.private_data) };
        // SAFETY: `file` is valid for the call.
        let file = unsafe { File::from_raw_file(args.file) };
        let mut handle = Handle(args.serialized_data);
        match T::freeze(file, state, &mut handle) {
            Ok(()) => {
                args.serialized_data = handle.raw();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for `freeze`.
    unsafe extern "C" fn unfreeze(args: *mut bindings::liveupdate_file_op_args) {
        // SAFETY: `args` and its `file` are valid for the call.
        let args = unsafe { &mut *args };
        // SAFETY: As in `freeze`.
        let state = unsafe { T::Preserved::borrow(args.private_data) };
        // SAFETY: `file` is valid for the call.
        let file = unsafe { File::from_raw_file(args.file) };
        T::unfreeze(file, state, Handle(args.serialized_data));
    }

    /// # Safety
    ///
    /// `args` is valid for the duration of the call.
    unsafe extern "C" fn retrieve(args: *mut bindings::liveupdate_file_op_args) -> c_int {
        // SAFETY: `args` is valid for the call.
        let args = unsafe { &mut *args };
        match T::retrieve(Handle(args.serialized_data)) {
            Ok(file) => {
                // LUO takes over our reference.
                args.file = ARef::into_raw(file).as_ptr().cast();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// The retrieved file, if any.
    ///
    /// # Safety
    ///
    /// `args.file` is NULL or valid for the duration of the caller's callback.
    unsafe fn file<'a>(args: &bindings::liveupdate_file_op_args) -> Option<&'a File> {
        // SAFETY: Non-NULL files are valid for the callback, by the function's safety rules.
        NonNull::new(args.file).map(|f| unsafe { File::from_raw_file(f.as_ptr()) })
    }

    /// # Safety
    ///
    /// `args` is valid for the duration of the call.
    unsafe extern "C" fn can_finish(args: *mut bindings::liveupdate_file_op_args) -> bool {
        // SAFETY: `args` is valid for the call and so is its `file` when set.
        let args = unsafe { &*args };
        // SAFETY: As above.
        let file = unsafe { Self::file(args) };
        let status = RetrieveStatus::from_raw(args.retrieve_status);
        T::can_finish(file, Handle(args.serialized_data), status)
    }

    /// # Safety
    ///
    /// `args` is valid for the duration of the call.
    unsafe extern "C" fn finish(args: *mut bindings::liveupdate_file_op_args) {
        // SAFETY: `args` is valid for the call and so is its `file` when set.
        let args = unsafe { &*args };
        // SAFETY: As above.
        let file = unsafe { Self::file(args) };
        let status = RetrieveStatus::from_raw(args.retrieve_status);
        T::finish(file, Handle(args.serialized_data), status);
    }

    /// # Safety
    ///
    /// `file` is valid for the duration of the call.
    unsafe extern "C" fn get_id(file: *mut bindings::file) -> c_ulong {
        // SAFETY: `file` is valid for the call.
        T::get_id(unsafe { File::from_raw_file(file) }) as c_ulong
    }

    const VTABLE: bindings::liveupdate_file_ops = bindings::liveupdate_file_ops {
        can_preserve: Some(Self::can_preserve),
        preserve: Some(Self::preserve),
        unpreserve: Some(Self::unpreserve),
        freeze: if T::HAS_FREEZE {
            Some(Self::freeze)
        } else {
            None
        },
        unfreeze: if T::HAS_UNFREEZE {
            Some(Self::unfreeze)
        } else {
            None
        },
        retrieve: Some(Self::retrieve),
        can_finish: if T::HAS_CAN_FINISH {
            Some(Self::can_finish)
        } else {
            None
        },
        finish: Some(Self::finish),
        get_id: if T::HAS_GET_ID {
            Some(Self::get_id)
        } else {
            None
        },
        owner: this_module::<T::OwnerModule>().as_ptr(),
    };

    const fn build() -> &'static bindings::liveupdate_file_ops {
        &Self::VTABLE
    }
}

/// The callbacks of a File-Lifecycle-Bound object; mirrors `struct liveupdate_flb_ops`.
#[vtable]
pub trait FlbOps: Sized + 'static {
    /// The live object in the outgoing kernel.
    type Outgoing: ForeignOwnable + Send + Sync;
    /// The live object rebuilt in the incoming kernel.
    type Incoming: ForeignOwnable + Send + Sync;

    /// The first dependent file is being preserved: save the shared state.
    fn preserve() -> Result<(Handle, Self::Outgoing)>;

    /// The last dependent file was unpreserved before any kexec.
    fn unpreserve(handle: Handle, obj: Self::Outgoing);

    /// In the new kernel, on first use: rebuild the object from `handle`.
    fn retrieve(handle: Handle) -> Result<Self::Incoming>;

    /// In the new kernel, the last dependent file was finished.
    fn finish(obj: Self::Incoming);
}

/// A File-Lifecycle-Bound object: state shared by the preserved files of the handlers it is
/// added to (see [`Registration::add_flb`]).
///
/// Meant to be a `static`; LUO initialises its private part on first use.
///
/// # Invariants
///
/// `inner` is a `struct liveupdate_flb` whose `ops` are those of `T`.
#[repr(transparent)]
pub struct Flb<T: FlbOps> {
    inner: Opaque<bindings::liveupdate_flb>,
    _t: PhantomData<T>,
}

// SAFETY: LUO serialises every use of the FLB with its own locks.
unsafe impl<T: FlbOps> Sync for Flb<T> {}
// SAFETY: As above.
unsafe impl<T: FlbOps> Send for Flb<T> {}

impl<T: FlbOps> Flb<T> {
    /// An FLB named `compatible` in the data handed between kernels.
    ///
    /// The name must be shorter than `LIVEUPDATE_FLB_COMPAT_LENGTH`; checked at compile time
    /// when used for a `static`.
    pub const fn new(compatible: &'static CStr) -> Self {
        let Some(compatible) = compatible_field(compatible) else {
            panic!("FLB compatible string empty or too long");
        };
        Self {
            inner: Opaque::new(bindings::liveupdate_flb {
                ops: FlbVTable::<T>::build(),
                compatible,
                // SAFETY: All-zero is the state LUO expects of a new FLB's private part.
                private: unsafe { core::mem::zeroed() },
            }),
            _t: PhantomData,
        }
    }

    fn as_raw(&self) -> *mut bindings::liveupdate_flb {
        self.inner.get()
    }

    /// The outgoing object, while at least one dependent file is preserved.
    ///
    /// Fails with `ENOENT` when no file depends on the FLB.
    pub fn outgoing(&'static self) -> Result<OutgoingRef<T>> {
        let mut obj = core::ptr::null_mut();
        // SAFETY: `self` is a static FLB; `obj` is valid for writes.
        to_result(unsafe { bindings::liveupdate_flb_get_outgoing(self.as_raw(), &mut obj) })?;
        Ok(OutgoingRef { flb: self, obj })
    }

    /// The incoming object, retrieved on first use.
    ///
    /// Fails with `ENODATA` when the previous kernel handed over no FLB data (or this FLB was
    /// finished), `ENOENT` when it handed over none for this FLB, or with the error of
    /// [`FlbOps::retrieve`].
    pub fn incoming(&'static self) -> Result<IncomingRef<T>> {
        let mut obj = core::ptr::null_mut();
        // SAFETY: `self` is a static FLB; `obj` is valid for writes.
        to_result(unsafe { bindings::liveupdate_flb_get_incoming(self.as_raw(), &mut obj) })?;
        Ok(IncomingRef { flb: self, obj })
    }
}

/// A counted reference to the outgoing object of an [`Flb`]; put on drop.
///
/// # Invariants
///
/// Holds one reference taken with `liveupdate_flb_get_outgoing()`, which returned `obj`.
pub struct OutgoingRef<T: FlbOps> {
    flb: &'static Flb<T>,
    obj: *mut c_void,
}

impl<T: FlbOps> OutgoingRef<T> {
    /// The object; the reference keeps it alive.
    pub fn get(&self) -> <T::Outgoing as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `obj` came from `into_foreign()` in `preserve`; our reference keeps
        // `unpreserve` (which takes it back) from running while the borrow lives.
        unsafe { T::Outgoing::borrow(self.obj) }
    }
}

impl<T: FlbOps> Drop for OutgoingRef<T> {
    fn drop(&mut self) {
        // SAFETY: We hold one reference (type invariant) and give it back once.
        unsafe { bindings::liveupdate_flb_put_outgoing(self.flb.as_raw()) };
    }
}

/// A counted reference to the incoming object of an [`Flb`]; put on drop.
///
/// # Invariants
///
/// Holds one reference taken with `liveupdate_flb_get_incoming()`, which returned `obj`.
pub struct IncomingRef<T: FlbOps> {
    flb: &'static Flb<T>,
    obj: *mut c_void,
}

impl<T: FlbOps> IncomingRef<T> {
    /// The object; the reference keeps it alive.
    pub fn get(&self) -> <T::Incoming as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `obj` came from `into_foreign()` in `retrieve`; our reference keeps `finish`
        // (which takes it back) from running while the borrow lives.
        unsafe { T::Incoming::borrow(self.obj) }
    }
}

impl<T: FlbOps> Drop for IncomingRef<T> {
    fn drop(&mut self) {
        // SAFETY: We hold one reference (type invariant) and give it back once.
        unsafe { bindings::liveupdate_flb_put_incoming(self.flb.as_raw()) };
    }
}

// SAFETY: The references may be moved to and dropped on another thread; the objects are
// `Send + Sync`.
unsafe impl<T: FlbOps> Send for OutgoingRef<T> {}
// SAFETY: As above.
unsafe impl<T: FlbOps> Sync for OutgoingRef<T> {}
// SAFETY: As above.
unsafe impl<T: FlbOps> Send for IncomingRef<T> {}
// SAFETY: As above.
unsafe impl<T: FlbOps> Sync for IncomingRef<T> {}

struct FlbVTable<T: FlbOps>(PhantomData<T>);

impl<T: FlbOps> FlbVTable<T> {
    /// # Safety
    ///
    /// `args` is valid for the duration of the call.
    unsafe extern "C" fn preserve(args: *mut bindings::liveupdate_flb_op_args) -> c_int {
        // SAFETY: `args` is valid for the call.
        let args = unsafe { &mut *args };
        match T::preserve() {
            Ok((handle, obj)) => {
                args.data = handle.raw();
                args.obj = obj.into_foreign();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `args` is valid, `obj` as left by a successful `preserve`, handed back once.
    unsafe extern "C" fn unpreserve(args: *mut bindings::liveupdate_flb_op_args) {
        // SAFETY: `args` is valid for the call.
        let args = unsafe { &mut *args };
        // SAFETY: `obj` came from `into_foreign()` in `preserve` and LUO hands it back once.
        let obj = unsafe { T::Outgoing::from_foreign(args.obj) };
        T::unpreserve(Handle(args.data), obj);
    }

    /// # Safety
    ///
    /// `args` is valid for the duration of the call.
    unsafe extern "C" fn retrieve(args: *mut bindings::liveupdate_flb_op_args) -> c_int {
        // SAFETY: `args` is valid for the call.
        let args = unsafe { &mut *args };
        match T::retrieve(Handle(args.data)) {
            Ok(obj) => {
                args.obj = obj.into_foreign();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `args` is valid, `obj` as left by a successful `retrieve`, handed back once.
    unsafe extern "C" fn finish(args: *mut bindings::liveupdate_flb_op_args) {
        // SAFETY: `args` is valid for the call.
        let args = unsafe { &mut *args };
        // SAFETY: `obj` came from `into_foreign()` in `retrieve` and LUO hands it back once.
        let obj = unsafe { T::Incoming::from_foreign(args.obj) };
        T::finish(obj);
    }

    const VTABLE: bindings::liveupdate_flb_ops = bindings::liveupdate_flb_ops {
        preserve: Some(Self::preserve),
        unpreserve: Some(Self::unpreserve),
        retrieve: Some(Self::retrieve),
        finish: Some(Self::finish),
        owner: this_module::<T::OwnerModule>().as_ptr(),
    };

    const fn build() -> &'static bindings::liveupdate_flb_ops {
        &Self::VTABLE
    }
}

#[cfg(CONFIG_RUST_LIVEUPDATE_KUNIT_TEST)]
#[kunit_tests(rust_kernel_liveupdate)]
mod tests {
    use super::*;

    /// A handler that takes no file: only its registration is under test here.
    struct NoFiles;

    #[vtable]
    impl FileHandler for NoFiles {
        type Preserved = ();

        fn can_preserve(_file: &File) -> bool {
            false
        }

        fn preserve(_file: &File) -> Result<Preservation<()>> {
            Err(EOPNOTSUPP)
        }

        fn unpreserve(_file: &File, _handle: Handle, _state: ()) {}

        fn retrieve(_handle: Handle) -> Result<ARef<File>> {
            Err(ENOENT)
        }

        fn finish(_file: Option<&File>, _handle: Handle, _status: RetrieveStatus) {}
    }

    struct EmptyFlb;

    #[vtable]
    impl FlbOps for EmptyFlb {
        type Outgoing = ();
        type Incoming = ();

        fn preserve() -> Result<(Handle, ())> {
            Ok((Handle::from_raw(0), ()))
        }

        fn unpreserve(_handle: Handle, _obj: ()) {}

        fn retrieve(_handle: Handle) -> Result<()> {
            Ok(())
        }

        fn finish(_obj: ()) {}
    }

    static EMPTY_FLB: Flb<EmptyFlb> = Flb::new(c"rust-kunit-empty-flb-v1");

    fn register(compatible: &'static CStr) -> Result<Pin<KBox<Registration<NoFiles>>>> {
        KBox::pin_init(Registration::<NoFiles>::new(compatible), GFP_KERNEL)
    }

    #[test]
    fn luo_sees_the_registration() -> Result {
        let reg = register(c"rust-kunit-handler-v1")?;
        // LUO refuses a second handler of the same name: it knows the first.
        assert_eq!(register(c"rust-kunit-handler-v1").err(), Some(EEXIST));
        drop(reg);
        // Dropping unregistered it: the name is free again.
        let _again = register(c"rust-kunit-handler-v1")?;
        Ok(())
    }

    #[test]
    fn bad_compatible_strings_are_einval() {
        assert_eq!(register(c"").err(), Some(EINVAL));
        let long = c"rust-kunit-handler-with-a-name-longer-than-luo-allows";
        assert_eq!(register(long).err(), Some(EINVAL));
    }

    #[test]
    fn flb_links_to_a_registered_handler() -> Result {
        let reg = register(c"rust-kunit-flb-user-v1")?;
        reg.add_flb(&EMPTY_FLB)?;
        assert_eq!(reg.add_flb(&EMPTY_FLB).err(), Some(EEXIST));
        // No file of the handler is preserved, so there is no outgoing object.
        assert_eq!(EMPTY_FLB.outgoing().err(), Some(ENOENT));
        reg.remove_flb(&EMPTY_FLB);
        reg.add_flb(&EMPTY_FLB)?;
        Ok(())
    }

    #[test]
    fn retrieve_status_follows_luo_convention() {
        assert_eq!(RetrieveStatus::from_raw(0), RetrieveStatus::NotAttempted);
        assert_eq!(RetrieveStatus::from_raw(1), RetrieveStatus::Retrieved);
        assert_eq!(
            RetrieveStatus::from_raw(-22),
            RetrieveStatus::Failed(EINVAL)
        );
    }
}
