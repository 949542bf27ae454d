// SPDX-License-Identifier: GPL-2.0
//! What the guest programs of the tests and benchmarks (`lu-demo`, `lu-bench`) share: the
//! kernel log ([`kmsg`]), the memfds they keep in a session, and the files a program keeps open
//! through the kexec.

pub mod kmsg;

use std::any::Any;
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::time::Duration;

/// A new, empty memfd named `name`: memory a program keeps across the update in its session.
pub fn memfd(name: &CStr) -> std::io::Result<File> {
    // SAFETY: `name` is NUL-terminated; the call has no other preconditions.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Keeps `keep` (a Live Update session, the devices, their memory) open in a child process
/// until the kexec, and returns in the parent, which may then exit: the guest's init kexecs
/// once every program of the stage has exited.
pub fn hold_until_kexec(keep: Vec<Box<dyn Any>>) {
    // SAFETY: the programs are single-threaded when they hand over; the child only sleeps.
    if unsafe { libc::fork() } == 0 {
        // SAFETY: no preconditions.
        unsafe { libc::setsid() };
        let _keep = keep;
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_memfd_is_new_and_empty() {
        let file = super::memfd(c"lu-guest-test").unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
    }
}
