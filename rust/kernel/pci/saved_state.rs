// SPDX-License-Identifier: GPL-2.0

//! PCI state saved outside the device (`struct pci_saved_state`).
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h).
//!
//! `pci_store_saved_state()` copies a function's saved config state into one allocation: the
//! standard config header dwords, then one record per saved capability, each a header and its
//! dwords, ended by a header of size 0. The layout is private to the PCI core; this module is
//! the one place outside it that reads and writes it, for users that must hand a saved state
//! on, such as vfio-pci across a Live Update.

use super::Device;
use crate::{bindings, device::DeviceContext, error::to_result, prelude::*};
use core::{mem::size_of, ptr::NonNull, slice};

/// Dwords of the standard config header at the start of a saved state.
pub const CONFIG_HEADER_DWORDS: usize = 16;

/// Most capabilities a saved state may hold here; the PCI core saves far fewer.
pub const MAX_CAPS: usize = 64;

/// Bytes of the standard config header at the start of a saved state.
const CONFIG_HEADER_SIZE: usize = CONFIG_HEADER_DWORDS * 4;

/// The header of a saved capability: `struct pci_cap_saved_data` of `drivers/pci/pci.h`, not
/// in the bindings because it is private to the PCI core. `size` bytes of data follow it, and
/// the next header follows them, whatever its alignment.
#[repr(C)]
struct CapHeader {
    cap_nr: u16,
    cap_extended: bool,
    size: c_uint,
}

const CAP_HEADER_SIZE: usize = size_of::<CapHeader>();

// The walks below read the header as bytes: the ID, the extended flag, one byte of padding,
// then the size.
const _: () = assert!(CAP_HEADER_SIZE == 8);

/// One saved capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedCap<'a> {
    /// `PCI_CAP_ID_*` or `PCI_EXT_CAP_ID_*`.
    pub cap_nr: u16,
    /// An extended (PCIe) capability.
    pub extended: bool,
    /// The saved registers, 16 or 32 bits each depending on the capability, in CPU byte
    /// order; never empty.
    pub data: &'a [u8],
}

/// A saved state, borrowed from whoever keeps it.
///
/// # Invariants
///
/// `bytes` is a whole saved state: the config header, capability records whose sizes fit, and
/// an end record as its last bytes.
#[derive(Clone, Copy)]
pub struct SavedStateRef<'a> {
    bytes: &'a [u8],
}

impl<'a> SavedStateRef<'a> {
    /// Borrows the saved state at `state`; `E2BIG` when it has more than [`MAX_CAPS`]
    /// capabilities.
    ///
    /// # Safety
    ///
    /// `state` points to a saved state laid out by `pci_store_saved_state()` or by
    /// [`SavedState::build`], that stays valid and unchanged for `'a`.
    pub unsafe fn from_raw(state: *const bindings::pci_saved_state) -> Result<Self> {
        let base = state.cast::<u8>();
        let mut len = CONFIG_HEADER_SIZE;
        for _ in 0..=MAX_CAPS {
            // SAFETY: `len` bytes in is a capability header of the saved state (function
            // safety rules), which is ended, so it is read before its end; it may be unaligned.
            let size = unsafe { base.add(len).cast::<CapHeader>().read_unaligned() }.size;
            len += CAP_HEADER_SIZE;
            if size == 0 {
                // SAFETY: The saved state is `len` bytes long, up to its end record.
                let bytes = unsafe { slice::from_raw_parts(base, len) };
                // INVARIANT: Walked above, up to and including the end record.
                return Ok(Self { bytes });
            }
            len += size as usize;
        }
        Err(E2BIG)
    }

    /// The standard config header.
    pub fn config_header(&self) -> [u32; CONFIG_HEADER_DWORDS] {
        let mut header = [0; CONFIG_HEADER_DWORDS];
        for (dword, b) in header.iter_mut().zip(self.bytes.chunks_exact(4)) {
            *dword = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
        header
    }

    /// The saved capabilities, in the PCI core's order.
    pub fn caps(&self) -> impl Iterator<Item = SavedCap<'a>> + Clone + 'a {
        let mut rest = self.bytes.get(CONFIG_HEADER_SIZE..).unwrap_or_default();
        core::iter::from_fn(move || {
            let (header, data) = rest.split_first_chunk::<CAP_HEADER_SIZE>()?;
            let [nr_lo, nr_hi, extended, _, s0, s1, s2, s3] = *header;
            let size = u32::from_ne_bytes([s0, s1, s2, s3]) as usize;
            let (data, next) = (data.get(..size)?, data.get(size..)?);
            if data.is_empty() {
                return None;
            }
            rest = next;
            Some(SavedCap {
                cap_nr: u16::from_ne_bytes([nr_lo, nr_hi]),
                extended: extended != 0,
                data,
            })
        })
    }

    /// The whole saved state, end record included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A saved state allocated with `kmalloc()`, as `pci_store_saved_state()` allocates it, so
/// that whoever takes it over with [`SavedState::into_raw`] frees it with `kfree()`.
///
/// # Invariants
///
/// `ptr` is a `kmalloc()` allocation this object owns, holding a saved state of `len` bytes.
pub struct SavedState {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: The state is memory the object owns, read through shared references only, and
// freed with `kfree()`, which any thread may call.
unsafe impl Send for SavedState {}
// SAFETY: As above.
unsafe impl Sync for SavedState {}

impl SavedState {
    /// Lays out `config_header` and `caps` as the PCI core does. `EINVAL` for a capability
    /// without data, `E2BIG` for more than [`MAX_CAPS`].
    pub fn build<'c>(
        config_header: &[u32; CONFIG_HEADER_DWORDS],
        caps: impl Iterator<Item = SavedCap<'c>> + Clone,
    ) -> Result<Self> {
        let mut len = CONFIG_HEADER_SIZE + CAP_HEADER_SIZE;
        for (i, cap) in caps.clone().enumerate() {
            if cap.data.is_empty() {
                return Err(EINVAL);
            }
            if i == MAX_CAPS {
                return Err(E2BIG);
            }
            len += CAP_HEADER_SIZE + cap.data.len();
        }
        let mut state = KVec::<u8>::with_capacity(len, GFP_KERNEL)?;
        for dword in config_header {
            state.extend_from_slice(&dword.to_ne_bytes(), GFP_KERNEL)?;
        }
        for cap in caps {
            let size = u32::try_from(cap.data.len())?;
            state.extend_from_slice(&cap.cap_nr.to_ne_bytes(), GFP_KERNEL)?;
            state.extend_from_slice(&[u8::from(cap.extended), 0], GFP_KERNEL)?;
            state.extend_from_slice(&size.to_ne_bytes(), GFP_KERNEL)?;
            state.extend_from_slice(cap.data, GFP_KERNEL)?;
        }
        state.extend_from_slice(&[0; CAP_HEADER_SIZE], GFP_KERNEL)?;
        let (ptr, len, _) = state.into_raw_parts();
        // INVARIANT: `KVec` allocates with `kmalloc()` (`krealloc()`), and the vector was
        // filled above with the layout of a saved state.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            len,
        })
    }

    /// Borrows the saved state.
    pub fn as_ref(&self) -> SavedStateRef<'_> {
        // SAFETY: `ptr` holds `len` bytes of a saved state while `self` lives (type invariant).
        let bytes = unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) };
        // INVARIANT: A whole saved state (type invariant).
        SavedStateRef { bytes }
    }

    /// Gives up the saved state, for C code to use and free with `kfree()`.
    pub fn into_raw(self) -> *mut bindings::pci_saved_state {
        let ptr = self.ptr.as_ptr().cast();
        core::mem::forget(self);
        ptr
    }
}

impl Drop for SavedState {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a `kmalloc()` allocation owned by `self` (type invariant).
        unsafe { bindings::kfree(self.ptr.as_ptr().cast()) };
    }
}

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Saves the function's config state (`pci_save_state()`) and returns a copy of it
    /// (`pci_store_saved_state()`).
    pub fn save_state(&self) -> Result<SavedState> {
        // SAFETY: `self.as_raw()` is a valid `struct pci_dev`.
        to_result(unsafe { bindings::pci_save_state(self.as_raw()) })?;
        // SAFETY: As above; the state was just saved.
        let state = unsafe { bindings::pci_store_saved_state(self.as_raw()) };
        let ptr = NonNull::new(state.cast::<u8>()).ok_or(ENOMEM)?;
        // SAFETY: `pci_store_saved_state()` returns a saved state of its own layout, which we
        // own until it is freed below or by the returned object.
        let len = match unsafe { SavedStateRef::from_raw(state) } {
            Ok(state) => state.as_bytes().len(),
            Err(e) => {
                // SAFETY: Allocated with `kmalloc()` by `pci_store_saved_state()`, not kept.
                unsafe { bindings::kfree(state.cast()) };
                return Err(e);
            }
        };
        // INVARIANT: Allocated with `kmalloc()`, `len` bytes, as walked above.
        Ok(SavedState { ptr, len })
    }
}
