// SPDX-License-Identifier: GPL-2.0
//! Host tests of what needs no kernel: argument checks and error messages.

use crate::session::session_name;
use crate::{is_pci_address, DmaBuffer, Error, Op, VfioDevice};

#[test]
fn session_names_are_checked_before_any_call() {
    assert!(session_name(Op::CreateSession, "vm-42").is_ok());
    let longest = "x".repeat(63);
    let name = session_name(Op::CreateSession, &longest).unwrap();
    assert_eq!(&name[..63], longest.as_bytes());
    assert_eq!(name[63], 0);
    for bad in ["", &"x".repeat(64), "a\0b"] {
        let err = session_name(Op::RetrieveSession, bad).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidArgument {
                op: Op::RetrieveSession,
                ..
            }
        ));
        assert_eq!(err.errno(), None);
    }
}

#[test]
fn pci_addresses_are_checked() {
    for good in ["0000:01:00.0", "0001:ff:1f.7", "abcd:0a:0b.3"] {
        assert!(is_pci_address(good), "{good}");
    }
    for bad in [
        "",
        "01:00.0",
        "0000:1:00.0",
        "0000:01:20.0",
        "0000:01:00.8",
        "0000:01:00",
        "0000:0g:00.0",
        "0000:01:00.0 ",
        "../../x",
    ] {
        assert!(!is_pci_address(bad), "{bad}");
    }
    let err = VfioDevice::open("../../etc").unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidArgument {
            op: Op::OpenVfioDevice,
            ..
        }
    ));
}

#[test]
fn errors_say_what_the_errno_means_there() {
    let preserve = Error::Os {
        op: Op::PreserveFd,
        errno: libc::ENOENT,
    };
    let text = preserve.to_string();
    assert!(text.starts_with("preserving a file: "), "{text}");
    assert!(
        text.contains("no Live Update handler takes this kind of file"),
        "{text}"
    );
    let retrieve = Error::Os {
        op: Op::RetrieveFd,
        errno: libc::ENOENT,
    };
    assert!(retrieve.to_string().contains("no file with that token"));
    assert_eq!(retrieve.errno(), Some(libc::ENOENT));
    assert_eq!(retrieve.op(), Op::RetrieveFd);
    // An errno without a meaning of its own here still names the operation.
    let other = Error::Os {
        op: Op::Finish,
        errno: libc::ENOMEM,
    };
    assert!(other.to_string().starts_with("finishing a session: "));
}

#[test]
fn dma_buffers_are_whole_pages_and_bounds_checked() {
    assert!(DmaBuffer::new(0).is_err());
    assert!(DmaBuffer::new(usize::MAX).is_err());
    let buffer = DmaBuffer::new(100).unwrap();
    assert_eq!(buffer.len() % 4096, 0);
    buffer.write(8, b"live update").unwrap();
    let mut out = [0; 11];
    buffer.read(8, &mut out).unwrap();
    assert_eq!(&out, b"live update");
    let end = buffer.len();
    assert!(buffer.write(end - 1, b"ab").is_err());
    assert!(buffer.read(usize::MAX, &mut out).is_err());
    let mut zero = [1; 4];
    buffer.read(0, &mut zero).unwrap();
    assert_eq!(zero, [0; 4]);
}

#[test]
fn shared_dma_buffers_write_through_to_their_file() {
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;
    // SAFETY: a valid NUL-terminated name; no other preconditions.
    let fd = unsafe { libc::memfd_create(c"lu-test".as_ptr(), 0) };
    assert!(fd >= 0);
    // SAFETY: a new descriptor that nothing else owns.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    assert!(DmaBuffer::shared(file.as_fd(), 4096).is_err(), "empty file");
    file.set_len(8192).unwrap();
    assert!(
        DmaBuffer::shared(file.as_fd(), 8193).is_err(),
        "past the end"
    );
    let buffer = DmaBuffer::shared(file.as_fd(), 8192).unwrap();
    buffer.write(4100, b"guest memory").unwrap();
    drop(buffer);
    let mut out = [0; 12];
    file.seek(std::io::SeekFrom::Start(4100)).unwrap();
    file.read_exact(&mut out).unwrap();
    assert_eq!(&out, b"guest memory");
}
