// SPDX-License-Identifier: GPL-2.0

//! Test only (`CONFIG_VFIO_PCI_LIVEUPDATE_CORRUPT_TEST`): corrupts the records of chosen
//! devices handed to the next kernel, so that tests can check through a real kexec what the
//! next kernel does with them.
//!
//! Writing `BB:DD.F=K ...` (devices of PCI domain 0, [`Kind`] numbers) to
//! `/sys/kernel/debug/vfio_pci_liveupdate/corrupt_records` arms it; a device's record is
//! corrupted when the device is frozen for the kexec, right after it is written.

use super::abi;
use kernel::{
    debugfs::{Dir, File},
    new_mutex, pci,
    prelude::*,
    sync::{Mutex, SetOnce},
};

/// What to corrupt in a record, by number.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 1: the ABI version moved on by one.
    Version = 1,
    /// 2: the big-endian flag set.
    ByteOrder,
    /// 3: the reserved field of the first capability record not zero.
    Reserved,
    /// 4: a config space size no device has.
    ConfigSize,
    /// 5: the vendor ID of another device.
    Identity,
    /// 6: the saved state claims more bytes than the record's memory holds.
    Truncated,
    /// 7: the first capability claims more bytes than the record holds.
    CapOutOfBounds,
    /// 8: the capability list ends without its terminator.
    Unterminated,
    /// 9: the record names the device at 0000:01:00.0 instead of its own.
    OtherDevice,
}

impl Kind {
    fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Version,
            2 => Self::ByteOrder,
            3 => Self::Reserved,
            4 => Self::ConfigSize,
            5 => Self::Identity,
            6 => Self::Truncated,
            7 => Self::CapOutOfBounds,
            8 => Self::Unterminated,
            9 => Self::OtherDevice,
            _ => return None,
        })
    }
}

/// Most devices one write can arm.
const MAX_DEVICES: usize = 10;

/// The armed corruptions: bus/device/function number and kind.
#[derive(Default)]
struct Plan {
    armed: [(u16, u8); MAX_DEVICES],
}

impl core::str::FromStr for Plan {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut plan = Plan::default();
        for (word, slot) in s.split_whitespace().zip(plan.armed.iter_mut()) {
            let (address, kind) = word.split_once('=').ok_or(EINVAL)?;
            let (bus, rest) = address.split_once(':').ok_or(EINVAL)?;
            let (dev, function) = rest.split_once('.').ok_or(EINVAL)?;
            let bus = u8::from_str_radix(bus, 16).map_err(|_| EINVAL)?;
            let dev = u8::from_str_radix(dev, 16).map_err(|_| EINVAL)?;
            let function = function.parse::<u8>().map_err(|_| EINVAL)?;
            let kind = kind.parse::<u8>().map_err(|_| EINVAL)?;
            if dev > 31 || function > 7 || Kind::from_number(kind).is_none() {
                return Err(EINVAL);
            }
            *slot = (
                u16::from(bus) << 8 | u16::from(dev) << 3 | u16::from(function),
                kind,
            );
        }
        Ok(plan)
    }
}

/// The debugfs file, and the directory it is in.
struct Knob {
    _dir: Dir,
    file: Pin<KBox<File<Mutex<Plan>>>>,
}

static KNOB: SetOnce<Knob> = SetOnce::new();

/// Creates the debugfs file.
pub(super) fn init() -> Result {
    let dir = Dir::new(c"vfio_pci_liveupdate");
    let file = KBox::pin_init(
        dir.write_only_file(c"corrupt_records", new_mutex!(Plan::default())),
        GFP_KERNEL,
    )?;
    KNOB.populate(Knob { _dir: dir, file });
    Ok(())
}

/// Corrupts the record of `dev` in `record` if a corruption is armed for it.
pub(super) fn apply(dev: &pci::Device, record: &mut [u8]) {
    let Some(knob) = KNOB.as_ref() else { return };
    if dev.domain_nr() != 0 {
        return;
    }
    let bdf = dev.dev_id();
    let armed = knob.file.lock().armed;
    let Some(kind) = armed
        .iter()
        .find(|(at, kind)| *at == bdf && *kind != 0)
        .and_then(|(_, kind)| Kind::from_number(*kind))
    else {
        return;
    };
    if corrupt(record, kind).is_some() {
        dev_info!(dev.as_ref(), "test: record corrupted ({})\n", kind as u8);
    }
}

fn corrupt(record: &mut [u8], kind: Kind) -> Option<()> {
    let u16_at = |r: &[u8], at: usize| u16::from_le_bytes([r[at], r[at + 1]]);
    let u32_at = |r: &[u8], at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
    if record.len() < abi::HEADER_SIZE {
        return None;
    }
    let cfg_stored = usize::from(u16_at(record, 22));
    let saved_size = u32_at(record, 24);
    let first_cap = abi::HEADER_SIZE + cfg_stored + abi::CONFIG_HEADER_DWORDS * 4;
    let (at, bytes): (usize, [u8; 4]) = match kind {
        Kind::Version => (0, (u32_at(record, 0) + 1).to_le_bytes()),
        Kind::ByteOrder => {
            let flags = u16_at(record, 10) | abi::FLAG_BIG_ENDIAN;
            let [a, b] = flags.to_le_bytes();
            (10, [a, b, record[12], record[13]])
        }
        // The first capability record's reserved byte.
        Kind::Reserved => {
            let at = first_cap;
            (at, [record[at], record[at + 1], record[at + 2], 1])
        }
        Kind::ConfigSize => {
            let [a, b] = 512u16.to_le_bytes();
            (20, [a, b, record[22], record[23]])
        }
        Kind::Identity => {
            let [a, b] = (u16_at(record, 12) ^ 0x0101).to_le_bytes();
            (12, [a, b, record[14], record[15]])
        }
        Kind::Truncated => (24, (saved_size + (1 << 20)).to_le_bytes()),
        Kind::CapOutOfBounds => (first_cap + 4, 0x8000u32.to_le_bytes()),
        Kind::Unterminated => (24, saved_size.checked_sub(8)?.to_le_bytes()),
        Kind::OtherDevice => {
            let [a, b] = 0x0100u16.to_le_bytes();
            (8, [a, b, record[10], record[11]])
        }
    };
    record.get_mut(at..at + 4)?.copy_from_slice(&bytes);
    Some(())
}
