// SPDX-License-Identifier: GPL-2.0
//! Linux Live Update for VMMs: keep a vfio-pci device working across a kexec of the host.
//!
//! The Live Update Orchestrator (`/dev/liveupdate`) keeps files across a kexec in named
//! sessions. With `CONFIG_VFIO_PCI_LIVEUPDATE`, a vfio-pci device file opened through its cdev
//! and bound to iommufd is such a file: in the next kernel the VMM retrieves it, binds it
//! again, and finds the device as it left it, not reset, still bus master.
//!
//! This crate makes that uapi safe to use: descriptors are owned ([`std::os::fd::OwnedFd`]),
//! arguments are checked before any call, and every [`Error`] says what was being done and
//! what the errno means there (`ENOENT` from a preserve: no handler takes this kind of file).
//! It carries the few vfio and iommufd calls the flow needs, on the rust-vmm binding crates
//! `vfio-bindings` and `iommufd-bindings`; a VMM with its own vfio layer only needs
//! [`LiveUpdate`] and [`Session`].
//!
//! # The flow
//!
//! Before the kexec:
//!
//! ```no_run
//! use liveupdate::{DmaBuffer, Iommufd, LiveUpdate, VfioDevice};
//! use std::os::fd::AsFd;
//!
//! # fn main() -> Result<(), liveupdate::Error> {
//! let iommufd = Iommufd::open()?;
//! let ioas = iommufd.alloc_ioas()?;
//! let device = VfioDevice::open("0000:01:00.0")?;
//! device.bind(&iommufd)?;
//! device.attach(ioas)?;
//! let buffer = DmaBuffer::new(4096)?;
//! iommufd.map(ioas, &buffer, 0x10_0000)?;
//! // ... program the device through its BARs; it may DMA to IOVA 0x100000 ...
//!
//! let luo = LiveUpdate::open()?;
//! let session = luo.create_session("vm-42")?;
//! session.preserve(device.as_fd(), 1)?;
//! // Keep `session` (and so the process) alive: kexec now, e.g. `kexec -e`.
//! # std::mem::forget(session);
//! # Ok(())
//! # }
//! ```
//!
//! In the next kernel:
//!
//! ```no_run
//! use liveupdate::{Iommufd, LiveUpdate, VfioDevice};
//!
//! # fn main() -> Result<(), liveupdate::Error> {
//! let luo = LiveUpdate::open()?;
//! let session = luo.retrieve_session("vm-42")?;
//! let device = VfioDevice::from_fd(session.retrieve(1)?);
//! let iommufd = Iommufd::open()?;
//! let ioas = iommufd.alloc_ioas()?;
//! device.bind(&iommufd)?; // opens the device without resetting it
//! device.attach(ioas)?;
//! // ... map the guest's memory again, check the device, carry on ...
//! session.finish()?;
//! # Ok(())
//! # }
//! ```
//!
//! A session closed in the old kernel unpreserves its files; a session finished in the new
//! one gives back any device the VMM did not take: reset, as if it had never been kept.

mod error;
mod iommufd;
mod session;
mod sys;
pub mod uapi;
mod vfio;

pub use error::{Error, Op, Result};
pub use iommufd::{DmaBuffer, Ioas, Iommufd};
pub use session::{LiveUpdate, Session};
pub use vfio::{is_pci_address, DmaStops, DmaThroughUpdate, Region, VfioDevice, CONFIG_REGION};

#[cfg(test)]
mod tests;
