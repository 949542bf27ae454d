// SPDX-License-Identifier: GPL-2.0
//! The system calls the crate makes, each behind a safe function.

use std::ffi::{c_int, c_ulong};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Opens the device node `path` for reading and writing.
pub(crate) fn open_rw(path: &str) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// `_IO(ty, nr)`: the request number of an ioctl that, like the Live Update, VFIO and iommufd
/// ones, passes its argument's size in the argument itself.
pub(crate) const fn io(ty: u8, nr: u32) -> c_ulong {
    ((ty as c_ulong) << 8) | nr as c_ulong
}

/// `ioctl(fd, request, arg)` with a pointer to `arg`: the call's non-negative result.
///
/// `T` must be the structure the kernel expects for `request`.
pub(crate) fn ioctl<T>(fd: BorrowedFd<'_>, request: c_ulong, arg: &mut T) -> io::Result<c_int> {
    // SAFETY: `fd` is an open descriptor and `arg` a valid, exclusively borrowed `T` for the
    // duration of the call; the request's structure is `T` (caller's contract), so the kernel
    // reads and writes within it.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg as *mut T) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// `ioctl(fd, request)` for requests without an argument.
pub(crate) fn ioctl_none(fd: BorrowedFd<'_>, request: c_ulong) -> io::Result<c_int> {
    // SAFETY: `fd` is an open descriptor; the request takes no argument.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}
