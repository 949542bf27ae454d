// SPDX-License-Identifier: GPL-2.0
//! The vfio-pci file handler's record of one device.

#[path = "../../../drivers/vfio/pci/liveupdate/abi.rs"]
pub mod abi;
