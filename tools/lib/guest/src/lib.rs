// SPDX-License-Identifier: GPL-2.0
//! What the guest programs of the tests and benchmarks (`lu-demo`, `lu-bench`) share: the
//! kernel log ([`kmsg`]), and the files a program keeps open through the kexec.

pub mod kmsg;

use std::any::Any;
use std::time::Duration;

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
