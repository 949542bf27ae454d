// SPDX-License-Identifier: GPL-2.0

//! A reader/writer semaphore.
//!
//! This module allows Rust code to use the kernel's `struct rw_semaphore`: many readers or one
//! writer, sleeping while they wait.
//!
//! C header: [`include/linux/rwsem.h`](srctree/include/linux/rwsem.h)

use crate::{
    bindings,
    prelude::*,
    str::CStr,
    sync::LockClassKey,
    types::{NotThreadSafe, Opaque},
};
use core::{
    cell::UnsafeCell,
    marker::PhantomPinned,
    ops::{Deref, DerefMut},
};
use pin_init::Wrapper;

/// Creates a [`RwSemaphore`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_rwsem {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::sync::RwSemaphore::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_rwsem;

/// Data guarded by a reader/writer semaphore: shared access for any number of readers at once,
/// exclusive access for one writer.
///
/// Both [`RwSemaphore::read`] and [`RwSemaphore::write`] may sleep.
///
/// # Examples
///
/// ```
/// use kernel::{new_rwsem, sync::RwSemaphore};
///
/// let sem = KBox::pin_init(new_rwsem!(1u32), GFP_KERNEL)?;
/// *sem.write() += 1;
/// let (a, b) = (sem.read(), sem.read());
/// assert_eq!((*a, *b), (2, 2));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `sem` is an initialised `struct rw_semaphore` that guards `data`.
#[pin_data]
pub struct RwSemaphore<T: ?Sized> {
    #[pin]
    sem: Opaque<bindings::rw_semaphore>,
    #[pin]
    _pin: PhantomPinned,
    #[pin]
    data: UnsafeCell<T>,
}

// SAFETY: The semaphore can move between threads with its data when the data can.
unsafe impl<T: ?Sized + Send> Send for RwSemaphore<T> {}

// SAFETY: Readers share `&T` across threads (hence `Sync`), a writer hands out `&mut T` on
// whichever thread holds it (hence `Send`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwSemaphore<T> {}

impl<T> RwSemaphore<T> {
    /// An initialiser for a semaphore guarding `t`; see also [`new_rwsem!`].
    pub fn new(
        t: impl PinInit<T>,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data <- UnsafeCell::pin_init(t),
            _pin: PhantomPinned,
            // SAFETY: `slot` is valid while the closure runs; `name` and `key` are static.
            sem <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_rwsem(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }
}

impl<T: ?Sized> RwSemaphore<T> {
    /// Waits for shared access.
    pub fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: `sem` is initialised (type invariant).
        unsafe { bindings::down_read(self.sem.get()) };
        // INVARIANT: We just took the semaphore for reading.
        ReadGuard {
            sem: self,
            _not_send: NotThreadSafe,
        }
    }

    /// Takes shared access if no writer holds or waits for the semaphore.
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        // SAFETY: `sem` is initialised (type invariant).
        let taken = unsafe { bindings::down_read_trylock(self.sem.get()) } != 0;
        // INVARIANT: The guard exists only when the semaphore was taken for reading.
        taken.then(|| ReadGuard {
            sem: self,
            _not_send: NotThreadSafe,
        })
    }

    /// Waits for exclusive access.
    pub fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: `sem` is initialised (type invariant).
        unsafe { bindings::down_write(self.sem.get()) };
        // INVARIANT: We just took the semaphore for writing.
        WriteGuard {
            sem: self,
            _not_send: NotThreadSafe,
        }
    }

    /// Takes exclusive access if nobody holds the semaphore.
    pub fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        // SAFETY: `sem` is initialised (type invariant).
        let taken = unsafe { bindings::down_write_trylock(self.sem.get()) } != 0;
        // INVARIANT: The guard exists only when the semaphore was taken for writing.
        taken.then(|| WriteGuard {
            sem: self,
            _not_send: NotThreadSafe,
        })
    }
}

/// Shared access to the data of a [`RwSemaphore`]; released on drop.
///
/// # Invariants
///
/// The semaphore is held for reading by this guard. It must be released on the thread that took
/// it, hence `!Send`.
pub struct ReadGuard<'a, T: ?Sized> {
    sem: &'a RwSemaphore<T>,
    _not_send: NotThreadSafe,
}

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Holding the semaphore for reading excludes writers, so shared access is sound.
        unsafe { &*self.sem.data.get() }
    }
}

impl<T: ?Sized> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The guard holds the semaphore for reading (type invariant).
        unsafe { bindings::up_read(self.sem.sem.get()) };
    }
}

/// Exclusive access to the data of a [`RwSemaphore`]; released on drop.
///
/// # Invariants
///
/// The semaphore is held for writing by this guard. It must be released on the thread that took
/// it, hence `!Send`.
pub struct WriteGuard<'a, T: ?Sized> {
    sem: &'a RwSemaphore<T>,
    _not_send: NotThreadSafe,
}

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Holding the semaphore for writing excludes everyone else.
        unsafe { &*self.sem.data.get() }
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: Holding the semaphore for writing excludes everyone else.
        unsafe { &mut *self.sem.data.get() }
    }
}

impl<T: ?Sized> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: The guard holds the semaphore for writing (type invariant).
        unsafe { bindings::up_write(self.sem.sem.get()) };
    }
}

#[cfg(CONFIG_RUST_RWSEM_KUNIT_TEST)]
#[kunit_tests(rust_kernel_rwsem)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_writers_exclude() -> Result {
        let sem = KBox::pin_init(new_rwsem!(KVec::<u32>::new()), GFP_KERNEL)?;
        sem.write().push(7, GFP_KERNEL)?;
        {
            let (a, b) = (sem.read(), sem.try_read());
            assert_eq!(a[0], 7);
            assert_eq!(b.map(|b| b[0]), Some(7));
            assert!(sem.try_write().is_none());
        }
        let w = sem.try_write();
        assert!(w.is_some());
        assert!(sem.try_read().is_none());
        drop(w);
        assert_eq!(sem.read().len(), 1);
        Ok(())
    }
}
