// SPDX-License-Identifier: GPL-2.0
//! `/dev/liveupdate` and its sessions.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Error, Op, Result};
use crate::sys::{ioctl, open_rw};
use crate::uapi::{self, SessionByName, SessionFd, SessionFinish, SessionGetName};

/// The Live Update Orchestrator's device, `/dev/liveupdate`.
///
/// Only one process may have it open at a time. Sessions outlive it: they are files of their
/// own.
#[derive(Debug)]
pub struct LiveUpdate {
    fd: OwnedFd,
}

impl LiveUpdate {
    /// Path of the device.
    pub const PATH: &'static str = "/dev/liveupdate";

    /// Opens `/dev/liveupdate`.
    pub fn open() -> Result<Self> {
        let file = open_rw(Self::PATH).map_err(|e| Error::os(Op::OpenLiveUpdate, e))?;
        Ok(Self { fd: file.into() })
    }

    /// Creates a session, in which files are preserved for the next kernel. The files stay
    /// preserved as long as the session is open, so through the kexec if it is open then.
    pub fn create_session(&self, name: &str) -> Result<Session> {
        self.session(uapi::IOCTL_CREATE_SESSION, Op::CreateSession, name)
    }

    /// Retrieves a session the previous kernel preserved, to take its files back.
    pub fn retrieve_session(&self, name: &str) -> Result<Session> {
        self.session(uapi::IOCTL_RETRIEVE_SESSION, Op::RetrieveSession, name)
    }

    fn session(&self, request: std::ffi::c_ulong, op: Op, name: &str) -> Result<Session> {
        let mut arg = SessionByName {
            size: uapi::size_of::<SessionByName>(),
            fd: -1,
            name: session_name(op, name)?,
        };
        ioctl(self.fd.as_fd(), request, &mut arg).map_err(|e| Error::os(op, e))?;
        // SAFETY: the kernel installed `arg.fd` as a new descriptor for this process, which
        // nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(arg.fd) };
        Ok(Session { fd })
    }
}

/// `name` as the kernel takes it: NUL-terminated in a fixed array.
pub(crate) fn session_name(op: Op, name: &str) -> Result<[u8; uapi::SESSION_NAME_LENGTH]> {
    let invalid = |why| Error::InvalidArgument { op, why };
    if name.is_empty() {
        return Err(invalid("a session name cannot be empty"));
    }
    if name.len() >= uapi::SESSION_NAME_LENGTH {
        return Err(invalid("a session name has at most 63 bytes"));
    }
    if name.as_bytes().contains(&0) {
        return Err(invalid("a session name cannot contain NUL"));
    }
    let mut out = [0; uapi::SESSION_NAME_LENGTH];
    out[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// A Live Update session.
///
/// In the outgoing kernel, files preserved in the session stay preserved while it is open;
/// closing it (dropping this object, or [`Session::unpreserve_all`]) unpreserves them. In the
/// incoming kernel, a retrieved session gives its files back with [`Session::retrieve`], and
/// [`Session::finish`] tells every handler its files are taken back.
#[derive(Debug)]
pub struct Session {
    fd: OwnedFd,
}

impl Session {
    /// Preserves `file` under `token`, which names it within the session in the next kernel.
    pub fn preserve(&self, file: BorrowedFd<'_>, token: u64) -> Result<()> {
        let mut arg = SessionFd {
            size: uapi::size_of::<SessionFd>(),
            fd: std::os::fd::AsRawFd::as_raw_fd(&file),
            token,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_PRESERVE_FD, &mut arg)
            .map_err(|e| Error::os(Op::PreserveFd, e))?;
        Ok(())
    }

    /// Retrieves the file preserved under `token` by the previous kernel.
    pub fn retrieve(&self, token: u64) -> Result<OwnedFd> {
        let mut arg = SessionFd {
            size: uapi::size_of::<SessionFd>(),
            fd: -1,
            token,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_RETRIEVE_FD, &mut arg)
            .map_err(|e| Error::os(Op::RetrieveFd, e))?;
        // SAFETY: the kernel installed `arg.fd` as a new descriptor for this process.
        Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
    }

    /// Ends the Live Update of the session's files: every handler releases what it kept for
    /// them (a vfio device never retrieved, or never bound, is reset and given back).
    ///
    /// Fails with `EBUSY`, finishing nothing, while a vfio device of the session still DMAs
    /// through the IOMMU translation the previous kernel handed over: attach it to an IOAS
    /// first, since the finish may free the guest memory it reaches.
    pub fn finish(&self) -> Result<()> {
        let mut arg = SessionFinish {
            size: uapi::size_of::<SessionFinish>(),
            reserved: 0,
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_FINISH, &mut arg)
            .map_err(|e| Error::os(Op::Finish, e))?;
        Ok(())
    }

    /// The session's name.
    pub fn name(&self) -> Result<String> {
        let mut arg = SessionGetName {
            size: uapi::size_of::<SessionGetName>(),
            reserved: 0,
            name: [0; uapi::SESSION_NAME_LENGTH],
        };
        ioctl(self.fd.as_fd(), uapi::SESSION_GET_NAME, &mut arg)
            .map_err(|e| Error::os(Op::GetName, e))?;
        let len = arg
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(arg.name.len());
        Ok(String::from_utf8_lossy(&arg.name[..len]).into_owned())
    }

    /// Unpreserves every file of an outgoing session by closing it. (LUO has no call that
    /// unpreserves one file.)
    pub fn unpreserve_all(self) {
        drop(self);
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
