// SPDX-License-Identifier: GPL-2.0

//! Test only (`CONFIG_PCI_LIVEUPDATE_CORRUPT_TEST`): corrupts the record handed to the next
//! kernel, so that tests can check through a real kexec what the next kernel does with it.
//!
//! Writing a [`Kind`] number to `/sys/kernel/debug/pci_liveupdate/corrupt_handover` arms it;
//! the record is corrupted when the first preserved device is frozen for the kexec, after
//! which nothing rewrites it. A kexec cancelled after that leaves the corruption in place
//! until the next change to the table.

use super::{abi::Entry, OutgoingRecord, ENTRY_SIZE, HEADER_SIZE};
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        SetOnce,
    },
};

/// What to corrupt, by the number written to the debugfs file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 1: the header's ABI version moved on by one.
    Version = 1,
    /// 2: the header's version written big-endian.
    ByteOrder,
    /// 3: the entry chain's address points at memory that was not preserved.
    ChainOutside,
    /// 4: the entry chain's address points back at the header, restored already.
    ChainLoop,
    /// 5: the header counts more devices than the entries hold.
    Count,
    /// 6: the first entry appears twice.
    Duplicate,
    /// 7: an entry in use has a refcount of 0.
    ZeroRefcount,
}

impl Kind {
    fn from_number(n: u32) -> Option<Self> {
        Some(match n {
            1 => Self::Version,
            2 => Self::ByteOrder,
            3 => Self::ChainOutside,
            4 => Self::ChainLoop,
            5 => Self::Count,
            6 => Self::Duplicate,
            7 => Self::ZeroRefcount,
            _ => return None,
        })
    }
}

/// The debugfs file, and the directory it is in.
struct Knob {
    _dir: Dir,
    file: Pin<KBox<File<Atomic<u32>>>>,
}

static KNOB: SetOnce<Knob> = SetOnce::new();

/// Creates the debugfs file.
pub(super) fn init() -> Result {
    let dir = Dir::new(c"pci_liveupdate");
    let file = KBox::pin_init(
        dir.read_write_file(c"corrupt_handover", Atomic::new(0u32)),
        GFP_KERNEL,
    )?;
    KNOB.populate(Knob { _dir: dir, file });
    Ok(())
}

/// Corrupts `record` as armed, once.
pub(super) fn apply(record: &mut OutgoingRecord) {
    let Some(knob) = KNOB.as_ref() else { return };
    let number = knob.file.xchg(0, Relaxed);
    let Some(kind) = Kind::from_number(number) else {
        return;
    };
    if let Err(e) = corrupt(record, kind) {
        pr_err!("test: cannot corrupt the handover ({}): {:?}\n", number, e);
        return;
    }
    pr_info!("test: handover corrupted ({})\n", number);
}

/// A page of low memory that firmware owns and KHO never preserves.
const NOT_PRESERVED: u64 = 0x1000;

fn corrupt(record: &mut OutgoingRecord, kind: Kind) -> Result {
    if let Kind::Duplicate | Kind::ZeroRefcount = kind {
        let mut entries: KVec<[u8; ENTRY_SIZE]> = KVec::new();
        for entry in record.table.entries() {
            entries.push(entry.encode(), GFP_KERNEL)?;
        }
        let first = *entries.first().ok_or(ENOENT)?;
        if kind == Kind::Duplicate {
            let last = entries.len() - 1;
            entries[last] = first;
        } else {
            let mut entry = Entry::decode(&first);
            entry.refcount = 0;
            entries[0] = entry.encode();
        }
        return record.entries.as_mut().write_all(&entries);
    }
    let header_phys = record.header.phys();
    let header = &mut record.header.as_bytes_mut()[..HEADER_SIZE];
    let field = |header: &[u8], at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    match kind {
        Kind::Version => {
            let version = field(header, 0) + 1;
            header[0..4].copy_from_slice(&version.to_le_bytes());
        }
        Kind::ByteOrder => header[0..4].reverse(),
        Kind::ChainOutside => header[8..16].copy_from_slice(&NOT_PRESERVED.to_le_bytes()),
        Kind::ChainLoop => header[8..16].copy_from_slice(&header_phys.to_le_bytes()),
        Kind::Count => {
            let count = field(header, 4) + 1;
            header[4..8].copy_from_slice(&count.to_le_bytes());
        }
        Kind::Duplicate | Kind::ZeroRefcount => {}
    }
    Ok(())
}
