// SPDX-License-Identifier: GPL-2.0
//! The kernel log through `/dev/kmsg`, for the guest programs of the tests and benchmarks
//! (`lu-demo`, `lu-bench`): what the kernel said about what it did, and marks that put a
//! program's steps on the host's timeline of an update (the runner times `lu-mark: NAME` lines
//! as they reach the console).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;

/// The message of one `/dev/kmsg` record: its first line past the header (`prio,seq,time,
/// flags;`), without the dictionary lines that follow.
fn message_of(record: &str) -> &str {
    let first = record.lines().next().unwrap_or_default();
    first.split_once(';').map_or(first, |(_, message)| message)
}

/// The messages of the kernel log, oldest first.
pub fn messages() -> Vec<String> {
    let Ok(mut kmsg) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut buf = vec![0; 8192];
    // Each read returns one record; EAGAIN once all are read.
    while let Ok(n) = kmsg.read(&mut buf) {
        out.push(message_of(&String::from_utf8_lossy(&buf[..n])).to_string());
    }
    out
}

/// The last message that contains `needle`.
pub fn last_with(needle: &str) -> Option<String> {
    messages().into_iter().rev().find(|m| m.contains(needle))
}

/// What the last message that contains `prefix` says after it.
pub fn after(prefix: &str) -> Option<String> {
    let message = last_with(prefix)?;
    let at = message.find(prefix)? + prefix.len();
    Some(message[at..].trim().to_string())
}

/// Writes the mark `lu-mark: NAME` into the kernel log, where the host sees it as it happens and
/// times it.
pub fn mark(name: &str) {
    if let Ok(mut kmsg) = OpenOptions::new().write(true).open("/dev/kmsg") {
        // One write, one record.
        let _ = kmsg.write_all(format!("lu-mark: {name}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_its_message() {
        assert_eq!(
            message_of("6,812,4021234,-;vfio-pci 0000:02:00.0: preserved\n SUBSYSTEM=pci\n"),
            "vfio-pci 0000:02:00.0: preserved"
        );
        assert_eq!(message_of("no header"), "no header");
        assert_eq!(message_of(""), "");
    }
}
