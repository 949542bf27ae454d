// SPDX-License-Identifier: GPL-2.0

//! Test only (`CONFIG_INTEL_IOMMU_LIVEUPDATE_CORRUPT_TEST`): corrupts what the next kernel is
//! handed, so that tests can check through a real kexec that it never adopts tables it cannot
//! trust, and what it does instead.
//!
//! Writing a [`Kind`] number to `/sys/kernel/debug/intel_iommu_liveupdate/corrupt_handover`
//! arms it (0 disarms); the handover is corrupted each time the record is written, at each
//! freeze of a device whose translation is handed over.

use super::{abi, Built};
use kernel::{
    debugfs::{Dir, File},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        SetOnce,
    },
};

/// What to corrupt, by number.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 1: the record's ABI version moved on by one.
    Version = 1,
    /// 2: a page table entry of the first unit pointed at memory that is not kept.
    Mapping,
    /// 3: the record names another root table than the one the unit is pointed at.
    RootTable,
}

impl Kind {
    fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Version,
            2 => Self::Mapping,
            3 => Self::RootTable,
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
    let dir = Dir::new(c"intel_iommu_liveupdate");
    let file = KBox::pin_init(
        dir.write_only_file(c"corrupt_handover", Atomic::new(0)),
        GFP_KERNEL,
    )?;
    KNOB.populate(Knob { _dir: dir, file });
    Ok(())
}

/// Corrupts the `record` just written, or the tables of `first` it describes, as armed.
pub(super) fn apply(record: &mut [u8; abi::RECORD_SIZE], first: Option<&mut Built>) {
    let Some(kind) = KNOB.as_ref().and_then(|knob| {
        u8::try_from(knob.file.load(Relaxed))
            .ok()
            .and_then(Kind::from_number)
    }) else {
        return;
    };
    let done = match kind {
        Kind::Version => {
            record[0] = record[0].wrapping_add(1);
            true
        }
        // Offset 8 of the first unit record is its root table address.
        Kind::RootTable => {
            let at = abi::HEADER_SIZE + 8;
            let root = u64::from_le_bytes(record[at..at + 8].try_into().unwrap_or([0; 8]));
            record[at..at + 8].copy_from_slice(&(root + 0x1000).to_le_bytes());
            first.is_some()
        }
        // With one kept device the pages are written root table, page tables depth first,
        // context table: the one before the last is the last-level table of the last mapping
        // copied. Its first entry in use is pointed at page 0, which nothing keeps.
        Kind::Mapping => first
            .and_then(|built| {
                let last_table = built.pages.len().checked_sub(2)?;
                built.pages.get_mut(last_table)
            })
            .and_then(|page| {
                let bytes = page.as_bytes_mut();
                let at = (0..bytes.len() / 8).find(|i| bytes[i * 8..i * 8 + 8] != [0; 8])?;
                bytes[at * 8..at * 8 + 8].copy_from_slice(&3u64.to_le_bytes());
                Some(())
            })
            .is_some(),
    };
    if done {
        pr_info!("test: handover corrupted ({})\n", kind as u8);
    }
}
