// SPDX-License-Identifier: GPL-2.0
//! A writer for the "newc" cpio format the kernel unpacks as initramfs.
//!
//! Shared by the host, which builds the first initramfs, and by the guest,
//! which packs its own root file system again to kexec into the next stage.

use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Streams entries into a newc archive.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// A directory. Parents must come before their children.
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | perm, 0, &[])
    }

    /// A regular file with `data` as its content.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, 0, data)
    }

    /// A symbolic link pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 0, target.as_bytes())
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | perm, (major << 8) | minor, &[])
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry(TRAILER, 0, 0, &[])?;
        // The kernel reads archives in 512-byte blocks; pad like cpio(1).
        let pad = (512 - self.written % 512) % 512;
        self.out.write_all(&vec![0; pad as usize])?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, rdev: u32, data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name.contains('\0') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad cpio path"));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file over 4 GiB"))?;
        let ino = if name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, so archives are reproducible
            size,
            0, // devmajor
            0, // devminor
            rdev >> 8,
            rdev & 0xff,
            name.len() as u32 + 1,
            0, // check
        ];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.align()?;
        self.put(data)?;
        self.align()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn align(&mut self) -> io::Result<()> {
        let pad = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..pad as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses an archive back into (name, mode, rdev, data) entries.
    fn parse(mut buf: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0usize;
        loop {
            let hex = |i: usize| {
                let s = std::str::from_utf8(&buf[6 + i * 8..14 + i * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap() as usize
            };
            assert_eq!(&buf[..6], MAGIC.as_bytes());
            let (mode, size, namesize) = (hex(1), hex(6), hex(11));
            let rdev = (hex(9) << 8 | hex(10)) as u32;
            let name = std::str::from_utf8(&buf[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            let data_at = (110 + namesize + 3) & !3;
            let data = buf[data_at..data_at + size].to_vec();
            let next = (data_at + size + 3) & !3;
            assert_eq!((off + data_at) % 4, 0);
            off += next;
            buf = &buf[next..];
            if name == TRAILER {
                assert!(buf.iter().all(|&b| b == 0));
                assert_eq!((off + buf.len()) % 512, 0);
                return out;
            }
            out.push((name, mode as u32, rdev, data));
        }
    }

    #[test]
    fn round_trip_keeps_every_entry() {
        let mut w = Writer::new(Vec::new());
        w.dir("/dev", 0o755).unwrap();
        w.char_dev("/dev/console", 0o600, 5, 1).unwrap();
        w.file("/init", 0o755, b"#!/bin/sh\n").unwrap();
        w.file("/empty", 0o644, b"").unwrap();
        w.symlink("/bin/sh", "busybox").unwrap();
        let entries = parse(&w.finish().unwrap());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "empty", "bin/sh"]);
        assert_eq!(entries[0].1, S_IFDIR | 0o755);
        assert_eq!((entries[1].1, entries[1].2), (S_IFCHR | 0o600, 5 << 8 | 1));
        assert_eq!(entries[2].3, b"#!/bin/sh\n");
        assert_eq!(entries[4].3, b"busybox");
    }

    #[test]
    fn odd_sizes_stay_aligned() {
        for len in 0..9 {
            let mut w = Writer::new(Vec::new());
            w.file(&"x".repeat(len + 1), 0o644, &vec![7; len]).unwrap();
            w.file("next", 0o644, b"ok").unwrap();
            let entries = parse(&w.finish().unwrap());
            assert_eq!(entries[0].3.len(), len);
            assert_eq!(entries[1].3, b"ok");
        }
    }

    #[test]
    fn rejects_empty_and_nul_paths() {
        let mut w = Writer::new(Vec::new());
        assert!(w.file("/", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }
}
