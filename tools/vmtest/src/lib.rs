// SPDX-License-Identifier: GPL-2.0
//! Boot a kernel under QEMU and run tests in stages across kexec Live Updates.
//!
//! The host side (`lu-runner`) builds an initramfs holding the guest init
//! (`lu-init`), the test programs, the kernel image and a [`plan`]; it boots
//! QEMU and follows the kernel's console and the init's event port with a
//! [`monitor::Monitor`]. The guest side runs each stage's programs, reports
//! on the event port and kexecs into the next stage.

pub mod cpio;
pub mod ktap;
pub mod messages;
pub mod monitor;
pub mod plan;
pub mod protocol;
pub mod report;
pub mod scenario;
pub mod traffic;
