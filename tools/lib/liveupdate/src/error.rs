// SPDX-License-Identifier: GPL-2.0
//! Errors that say what failed and what the errno means there.

use std::fmt;
use std::io;

/// What the crate was doing when an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Opening `/dev/liveupdate`.
    OpenLiveUpdate,
    /// `LIVEUPDATE_IOCTL_CREATE_SESSION`.
    CreateSession,
    /// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`.
    RetrieveSession,
    /// `LIVEUPDATE_SESSION_PRESERVE_FD`.
    PreserveFd,
    /// `LIVEUPDATE_SESSION_RETRIEVE_FD`.
    RetrieveFd,
    /// `LIVEUPDATE_SESSION_FINISH`.
    Finish,
    /// `LIVEUPDATE_SESSION_GET_NAME`.
    GetName,
    /// Finding and opening a device's vfio cdev.
    OpenVfioDevice,
    /// `VFIO_DEVICE_BIND_IOMMUFD`.
    Bind,
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`.
    Attach,
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    RegionInfo,
    /// Reading or writing a region of a vfio device.
    RegionAccess,
    /// `VFIO_DEVICE_RESET`.
    Reset,
    /// `VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA`.
    LiveUpdateDma,
    /// Opening `/dev/iommu`.
    OpenIommufd,
    /// `IOMMU_IOAS_ALLOC`.
    AllocIoas,
    /// `IOMMU_IOAS_MAP`.
    MapDma,
    /// Allocating memory for DMA.
    AllocDma,
    /// Reading or writing memory for DMA.
    DmaAccess,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::OpenLiveUpdate => "opening /dev/liveupdate",
            Op::CreateSession => "creating a Live Update session",
            Op::RetrieveSession => "retrieving a Live Update session",
            Op::PreserveFd => "preserving a file",
            Op::RetrieveFd => "retrieving a preserved file",
            Op::Finish => "finishing a session",
            Op::GetName => "reading a session's name",
            Op::OpenVfioDevice => "opening a vfio device",
            Op::Bind => "binding a vfio device to iommufd",
            Op::Attach => "attaching a vfio device to an IOAS",
            Op::RegionInfo => "reading a vfio region's description",
            Op::RegionAccess => "accessing a vfio region",
            Op::Reset => "resetting a vfio device",
            Op::LiveUpdateDma => "asking about a vfio device's DMA through a Live Update",
            Op::OpenIommufd => "opening /dev/iommu",
            Op::AllocIoas => "allocating an IOAS",
            Op::MapDma => "mapping memory for DMA",
            Op::AllocDma => "allocating memory for DMA",
            Op::DmaAccess => "accessing memory for DMA",
        }
    }

    /// What `errno` means for this operation, where the kernel's word alone would mislead.
    fn meaning(self, errno: i32) -> Option<&'static str> {
        use libc::*;
        Some(match (self, errno) {
            (Op::OpenLiveUpdate, ENOENT) => {
                "the kernel has no Live Update (CONFIG_LIVEUPDATE, or booted without liveupdate=on)"
            }
            (Op::OpenLiveUpdate, EBUSY) => {
                "another process has /dev/liveupdate open; it allows one"
            }
            (Op::OpenLiveUpdate, EACCES) => "/dev/liveupdate is for root",
            (Op::OpenLiveUpdate, EIO) => "the state the previous kernel handed over is unreadable",
            (Op::CreateSession, EEXIST) => "a session of that name exists",
            (Op::RetrieveSession, ENOENT) => {
                "no session of that name came from the previous kernel"
            }
            (Op::RetrieveSession, EBUSY) => "that session is already retrieved",
            (Op::PreserveFd, ENOENT) => {
                "no Live Update handler takes this kind of file (a vfio device file must be opened \
                 through /dev/vfio/devices/vfioN and bound to iommufd; group and container fds \
                 and SR-IOV VFs are never taken)"
            }
            (Op::PreserveFd, EBUSY) => "the file, or the device behind it, is already preserved",
            (Op::PreserveFd, EEXIST) => "the token is already used in this session",
            (Op::PreserveFd, EBADF) => "not an open file descriptor",
            (Op::PreserveFd, ENODATA) => {
                "vfio-pci could not save the device's PCI state, so it cannot be restored"
            }
            (Op::PreserveFd, EINVAL) => {
                "files are preserved in sessions created in this kernel, not retrieved ones"
            }
            (Op::RetrieveFd, ENOENT) => "no file with that token in the session",
            (Op::RetrieveFd, EINVAL) => {
                "the session was created in this kernel, or the handler rejected what the \
                 previous kernel handed over (see the kernel log)"
            }
            (Op::RetrieveFd, ENODEV) => "the device the file stood for is not there any more",
            (Op::Finish, EINVAL) => "only sessions retrieved from the previous kernel are finished",
            (Op::OpenVfioDevice, ENOENT) => {
                "no vfio cdev for that device (bound to vfio-pci? CONFIG_VFIO_DEVICE_CDEV?)"
            }
            (Op::OpenVfioDevice, EBUSY) => {
                "the device came from the previous kernel: retrieve its file from the session"
            }
            (Op::Bind, EBUSY) => "the device is bound already, or another user has its group",
            (Op::Finish, EBUSY) => {
                "a file of the session is not ready to be finished: a vfio device still DMAs \
                 through the translation the previous kernel handed over until it is attached \
                 to an IOAS"
            }
            (Op::LiveUpdateDma, ENOTTY) => {
                "the kernel has no vfio-pci Live Update (CONFIG_VFIO_PCI_LIVEUPDATE)"
            }
            (Op::LiveUpdateDma, EINVAL) => {
                "DMA through the update can only be required of a device whose file is preserved"
            }
            (Op::LiveUpdateDma, EOPNOTSUPP) => {
                "no IOMMU can hand the device's translation over (CONFIG_INTEL_IOMMU_LIVEUPDATE)"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error of this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed with `errno`.
    Os {
        /// What was being done.
        op: Op,
        /// The error number (`ENOENT`, ...).
        errno: i32,
    },
    /// An argument was refused before any system call was made.
    InvalidArgument {
        /// What was being done.
        op: Op,
        /// Why the argument cannot be used.
        why: &'static str,
    },
}

impl Error {
    pub(crate) fn os(op: Op, e: io::Error) -> Self {
        Error::Os {
            op,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// What was being done.
    pub fn op(&self) -> Op {
        match *self {
            Error::Os { op, .. } | Error::InvalidArgument { op, .. } => op,
        }
    }

    /// The error number, for an error of a system call.
    pub fn errno(&self) -> Option<i32> {
        match *self {
            Error::Os { errno, .. } => Some(errno),
            Error::InvalidArgument { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Os { op, errno } => {
                let os = io::Error::from_raw_os_error(errno);
                write!(f, "{op}: {os}")?;
                match op.meaning(errno) {
                    Some(meaning) => write!(f, ": {meaning}"),
                    None => Ok(()),
                }
            }
            Error::InvalidArgument { op, why } => write!(f, "{op}: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
