// SPDX-License-Identifier: GPL-2.0
//! The Live Update uapi (`include/uapi/linux/liveupdate.h`), which no published crate binds
//! yet, and the request numbers of the vfio and iommufd ioctls the crate makes (their
//! structures come from `vfio-bindings` and `iommufd-bindings`, which leave the numbers out).
//! `tests/kernel_headers.rs` checks every size and request number here against the kernel's
//! headers.

use std::ffi::c_ulong;

use iommufd_bindings as iommufd;
use vfio_bindings::bindings::vfio;

use crate::sys::io;

/// `LIVEUPDATE_IOCTL_TYPE`.
pub const IOCTL_TYPE: u8 = 0xba;
/// `LIVEUPDATE_SESSION_NAME_LENGTH`: the longest session name, its terminating NUL included.
pub const SESSION_NAME_LENGTH: usize = 64;

/// `LIVEUPDATE_IOCTL_CREATE_SESSION`.
pub const IOCTL_CREATE_SESSION: c_ulong = io(IOCTL_TYPE, 0x00);
/// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`.
pub const IOCTL_RETRIEVE_SESSION: c_ulong = io(IOCTL_TYPE, 0x01);
/// `LIVEUPDATE_SESSION_PRESERVE_FD`.
pub const SESSION_PRESERVE_FD: c_ulong = io(IOCTL_TYPE, 0x40);
/// `LIVEUPDATE_SESSION_RETRIEVE_FD`.
pub const SESSION_RETRIEVE_FD: c_ulong = io(IOCTL_TYPE, 0x41);
/// `LIVEUPDATE_SESSION_FINISH`.
pub const SESSION_FINISH: c_ulong = io(IOCTL_TYPE, 0x42);
/// `LIVEUPDATE_SESSION_GET_NAME`.
pub const SESSION_GET_NAME: c_ulong = io(IOCTL_TYPE, 0x43);

/// `VFIO_DEVICE_GET_REGION_INFO`.
pub const VFIO_DEVICE_GET_REGION_INFO: c_ulong = io(vfio::VFIO_TYPE, vfio::VFIO_BASE + 8);
/// `VFIO_DEVICE_RESET`.
pub const VFIO_DEVICE_RESET: c_ulong = io(vfio::VFIO_TYPE, vfio::VFIO_BASE + 11);
/// `VFIO_DEVICE_BIND_IOMMUFD`.
pub const VFIO_DEVICE_BIND_IOMMUFD: c_ulong = io(vfio::VFIO_TYPE, vfio::VFIO_BASE + 18);
/// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`.
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: c_ulong = io(vfio::VFIO_TYPE, vfio::VFIO_BASE + 19);
/// `VFIO_DEVICE_FEATURE`.
pub const VFIO_DEVICE_FEATURE: c_ulong = io(vfio::VFIO_TYPE, vfio::VFIO_BASE + 17);
/// `VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA`, newer than `vfio-bindings`.
pub const VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA: u32 = 14;
/// `VFIO_LIVEUPDATE_DMA_CONTINUES`.
pub const VFIO_LIVEUPDATE_DMA_CONTINUES: u32 = 1 << 0;
/// `VFIO_LIVEUPDATE_DMA_REQUIRED`.
pub const VFIO_LIVEUPDATE_DMA_REQUIRED: u32 = 1 << 1;
/// `VFIO_LIVEUPDATE_DMA_UNSUPPORTED`.
pub const VFIO_LIVEUPDATE_DMA_UNSUPPORTED: u32 = 1;
/// `VFIO_LIVEUPDATE_DMA_NOT_KEPT`.
pub const VFIO_LIVEUPDATE_DMA_NOT_KEPT: u32 = 2;
/// `VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED`.
pub const VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED: u32 = 3;
/// `VFIO_LIVEUPDATE_DMA_TABLES`.
pub const VFIO_LIVEUPDATE_DMA_TABLES: u32 = 4;
/// `IOMMU_IOAS_ALLOC`.
pub const IOMMU_IOAS_ALLOC: c_ulong = io(iommufd::IOMMUFD_TYPE, iommufd::IOMMUFD_CMD_IOAS_ALLOC);
/// `IOMMU_IOAS_MAP`.
pub const IOMMU_IOAS_MAP: c_ulong = io(iommufd::IOMMUFD_TYPE, iommufd::IOMMUFD_CMD_IOAS_MAP);

/// `struct liveupdate_ioctl_create_session` and `struct liveupdate_ioctl_retrieve_session`,
/// which have the same layout.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SessionByName {
    pub size: u32,
    pub fd: i32,
    pub name: [u8; SESSION_NAME_LENGTH],
}

/// `struct liveupdate_session_preserve_fd` and `struct liveupdate_session_retrieve_fd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionFd {
    pub size: u32,
    pub fd: i32,
    pub token: u64,
}

/// `struct liveupdate_session_finish`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionFinish {
    pub size: u32,
    pub reserved: u32,
}

/// `struct liveupdate_session_get_name`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SessionGetName {
    pub size: u32,
    pub reserved: u32,
    pub name: [u8; SESSION_NAME_LENGTH],
}

const _: () = {
    assert!(std::mem::size_of::<SessionByName>() == 72);
    assert!(std::mem::size_of::<SessionFd>() == 16);
    assert!(std::mem::align_of::<SessionFd>() == 8);
    assert!(std::mem::size_of::<SessionFinish>() == 8);
    assert!(std::mem::size_of::<SessionGetName>() == 72);
};

/// `struct vfio_device_feature` carrying a `struct vfio_device_feature_liveupdate_dma`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct FeatureLiveupdateDma {
    pub argsz: u32,
    pub flags: u32,
    /// `vfio_device_feature_liveupdate_dma.flags`.
    pub dma_flags: u32,
    /// `vfio_device_feature_liveupdate_dma.reason`.
    pub reason: u32,
}

const _: () = assert!(std::mem::size_of::<FeatureLiveupdateDma>() == 16);

/// The size field every structure starts with.
pub(crate) fn size_of<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}
