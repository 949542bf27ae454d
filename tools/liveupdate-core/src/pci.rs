// SPDX-License-Identifier: GPL-2.0
//! The PCI core's record of preserved devices.

#[path = "../../../drivers/pci/liveupdate/abi.rs"]
pub mod abi;
#[path = "../../../drivers/pci/liveupdate/table.rs"]
pub mod table;
