// SPDX-License-Identifier: GPL-2.0
//! iommufd: an IO address space and the memory a device may reach through it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use iommufd_bindings as sys;

use crate::error::{Error, Op, Result};
use crate::sys::{ioctl, open_rw};
use crate::uapi::{IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP};

/// An iommufd, `/dev/iommu`: what vfio devices are bound to.
#[derive(Debug)]
pub struct Iommufd {
    fd: OwnedFd,
}

/// An IO address space of an [`Iommufd`], which devices are attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ioas {
    id: u32,
}

impl Ioas {
    /// The object ID iommufd gave it.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Iommufd {
    /// Path of the device.
    pub const PATH: &'static str = "/dev/iommu";

    /// Opens `/dev/iommu`.
    pub fn open() -> Result<Self> {
        let file = open_rw(Self::PATH).map_err(|e| Error::os(Op::OpenIommufd, e))?;
        Ok(Self { fd: file.into() })
    }

    /// Allocates an empty IO address space.
    pub fn alloc_ioas(&self) -> Result<Ioas> {
        let mut arg = sys::iommu_ioas_alloc {
            size: std::mem::size_of::<sys::iommu_ioas_alloc>() as u32,
            ..Default::default()
        };
        ioctl(self.fd.as_fd(), IOMMU_IOAS_ALLOC, &mut arg)
            .map_err(|e| Error::os(Op::AllocIoas, e))?;
        Ok(Ioas {
            id: arg.out_ioas_id,
        })
    }

    /// Maps `buffer` into `ioas` at `iova`, readable and writable by devices. The buffer's
    /// pages stay pinned while mapped, even if the buffer is dropped.
    pub fn map(&self, ioas: Ioas, buffer: &DmaBuffer, iova: u64) -> Result<()> {
        if iova % page_size() as u64 != 0 {
            return Err(Error::InvalidArgument {
                op: Op::MapDma,
                why: "the IOVA must be page-aligned",
            });
        }
        let mut arg = sys::iommu_ioas_map {
            size: std::mem::size_of::<sys::iommu_ioas_map>() as u32,
            flags: sys::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA
                | sys::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE
                | sys::iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE,
            ioas_id: ioas.id,
            user_va: buffer.ptr.as_ptr() as u64,
            length: buffer.len as u64,
            iova,
            ..Default::default()
        };
        ioctl(self.fd.as_fd(), IOMMU_IOAS_MAP, &mut arg).map_err(|e| Error::os(Op::MapDma, e))?;
        Ok(())
    }
}

impl AsFd for Iommufd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Zeroed, page-aligned memory that devices may read and write by DMA once mapped.
///
/// A device may change it at any time, so it is read and written by copies, never borrowed.
#[derive(Debug)]
pub struct DmaBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

impl DmaBuffer {
    /// Allocates at least `len` bytes, rounded up to whole pages.
    pub fn new(len: usize) -> Result<Self> {
        Self::map_pages(len, None)
    }

    /// Maps the first `len` bytes (rounded up to whole pages) of the memory file `file`, shared:
    /// what devices write by DMA lands in the file. This is how a VMM gives devices guest memory
    /// it keeps across a Live Update in a memfd preserved in the same session; the file must
    /// already be that large.
    pub fn shared(file: BorrowedFd<'_>, len: usize) -> Result<Self> {
        Self::map_pages(len, Some(file))
    }

    /// `len` bytes of anonymous memory, or of `file` mapped shared.
    fn map_pages(len: usize, file: Option<BorrowedFd<'_>>) -> Result<Self> {
        let invalid = |why| Error::InvalidArgument {
            op: Op::AllocDma,
            why,
        };
        if len == 0 {
            return Err(invalid("a DMA buffer cannot be empty"));
        }
        let page = page_size();
        let len = len
            .checked_next_multiple_of(page)
            .ok_or(invalid("a DMA buffer that large cannot be mapped"))?;
        let (flags, fd) = match file {
            Some(file) => {
                // A shared mapping past the end of the file would fault on first touch.
                let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
                // SAFETY: `stat` is valid for writes of a `struct stat`.
                if unsafe { libc::fstat(file.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
                    return Err(Error::os(Op::AllocDma, std::io::Error::last_os_error()));
                }
                // SAFETY: fstat succeeded, so it filled in `stat`.
                let size = unsafe { stat.assume_init() }.st_size;
                if u64::try_from(size).map_or(true, |size| size < len as u64) {
                    return Err(invalid("the file is smaller than the DMA buffer"));
                }
                (libc::MAP_SHARED, file.as_raw_fd())
            }
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        };
        // SAFETY: a new mapping of `len` bytes at an address of the kernel's choosing touches
        // no existing memory; a file mapping keeps its own reference to the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::os(Op::AllocDma, std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast()).ok_or(invalid("mmap returned NULL"))?;
        Ok(Self { ptr, len })
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a buffer has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::InvalidArgument {
                op: Op::DmaAccess,
                why: "access past the end of the DMA buffer",
            }),
        }
    }

    /// Copies `data` into the buffer at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check(offset, data.len())?;
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: within the mapping (checked above); volatile, as a device may access
            // the same bytes.
            unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(b) };
        }
        Ok(())
    }

    /// Copies bytes of the buffer at `offset` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.check(offset, out.len())?;
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: as in `write`.
            *b = unsafe { self.ptr.as_ptr().add(offset + i).read_volatile() };
        }
        Ok(())
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map_pages` with this address and length, and nothing
        // borrows it.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
