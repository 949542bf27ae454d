// SPDX-License-Identifier: GPL-2.0
//! The VT-d driver's hand-over of the translation of kept devices.

#[path = "../../../drivers/iommu/intel/liveupdate/abi.rs"]
pub mod abi;
#[path = "../../../drivers/iommu/intel/liveupdate/kept.rs"]
pub mod kept;
#[path = "../../../drivers/iommu/intel/liveupdate/tables.rs"]
pub mod tables;
