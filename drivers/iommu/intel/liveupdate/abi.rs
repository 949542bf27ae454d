// SPDX-License-Identifier: GPL-2.0

//! The VT-d Live Update ABI: which units hand over translation, for which kept devices.
//!
//! The layout is defined in C in `include/linux/kho/abi/intel_iommu.h`; this file is its
//! little-endian codec and the validator of records handed over by another kernel. A record is
//! accepted only whole: any inconsistency rejects it, and its devices take the safe path.
//! Only `core` is used, so the host tests (`tools/liveupdate-core`) compile this file too.

use super::tables::{KeptDevice, MAX_LEVELS, MIN_LEVELS};

/// The compatible string of the File-Lifecycle-Bound object carrying the record.
pub const COMPATIBLE: &core::ffi::CStr = c"intel-iommu-v1";

/// The ABI version; any change to the layout bumps it.
pub const VERSION: u32 = 1;

/// Size of the header (`struct intel_iommu_lu_ser`).
pub const HEADER_SIZE: usize = 16;
/// Size of a unit's record (`struct intel_iommu_lu_unit`).
pub const UNIT_SIZE: usize = 24;
/// Size of a device's record (`struct intel_iommu_lu_dev`).
pub const DEVICE_SIZE: usize = 16;
/// The record fits in one page.
pub const RECORD_SIZE: usize = 4096;

/// The device caches translations in a device TLB (its context entry's translation type).
pub const DEV_FLAG_DEVICE_TLB: u8 = 1 << 0;
const KNOWN_DEV_FLAGS: u8 = DEV_FLAG_DEVICE_TLB;

const PAGE_MASK: u64 = 0xfff;

/// One VT-d unit whose translation continues into the next kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Physical address of its registers: names the unit in both kernels.
    pub reg_base: u64,
    /// Physical address of the handover root table, in the unit's root table address
    /// register at the kexec.
    pub root_table: u64,
    /// PCI segment of the devices it translates.
    pub segment: u16,
    /// How many of the record's devices, after the previous units', are behind it.
    pub nr_devices: u16,
}

/// Why a record could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// More units or devices than a record holds, or than `u16` counts.
    TooMany,
    /// The units' device counts do not add up to the devices given.
    Counts,
}

/// Why a handed-over record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Written by a kernel with another ABI version.
    Version(u32),
    /// More units or devices than a record holds, or counts that do not add up.
    Counts,
    /// A reserved field is not zero.
    Reserved,
    /// Unit `index` has an address of zero or not page-aligned.
    UnitAddress(usize),
    /// Two units name one register base.
    UnitTwice(u64),
    /// Device `index` has bad flags, levels or page table address.
    Device(usize),
    /// One device is recorded twice for a unit.
    DeviceTwice(u16),
    /// Devices of one domain id have different page tables, or of different ones the same.
    Domain(u16),
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Invalid::Version(v) => write!(f, "ABI version {v}, this kernel reads {VERSION}"),
            Invalid::Counts => write!(f, "unit and device counts do not fit the record"),
            Invalid::Reserved => write!(f, "reserved field not zero"),
            Invalid::UnitAddress(i) => write!(f, "unit {i} has a bad address"),
            Invalid::UnitTwice(r) => write!(f, "unit {r:#x} recorded twice"),
            Invalid::Device(i) => write!(f, "device record {i} is malformed"),
            Invalid::DeviceTwice(b) => write!(f, "device {b:#06x} recorded twice"),
            Invalid::Domain(d) => write!(f, "domain {d} inconsistent"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Most devices a record holds with one unit.
pub const MAX_DEVICES: usize = (RECORD_SIZE - HEADER_SIZE - UNIT_SIZE) / DEVICE_SIZE;

fn fits(units: usize, devices: usize) -> bool {
    units
        .checked_mul(UNIT_SIZE)
        .and_then(|u| {
            devices
                .checked_mul(DEVICE_SIZE)
                .map(|d| HEADER_SIZE + u + d)
        })
        .is_some_and(|size| size <= RECORD_SIZE)
}

/// Writes the record: `tables` is the address of the list of every handed-over table page,
/// `units` the units in any order, and `devices` their devices, unit by unit.
pub fn encode(
    out: &mut [u8; RECORD_SIZE],
    tables: u64,
    units: &[Unit],
    devices: &[KeptDevice],
) -> Result<(), EncodeError> {
    if !fits(units.len(), devices.len()) {
        return Err(EncodeError::TooMany);
    }
    let counted: usize = units.iter().map(|u| usize::from(u.nr_devices)).sum();
    if counted != devices.len() {
        return Err(EncodeError::Counts);
    }
    out.fill(0);
    out[0..4].copy_from_slice(&VERSION.to_le_bytes());
    out[4..6].copy_from_slice(&(units.len() as u16).to_le_bytes());
    out[6..8].copy_from_slice(&(devices.len() as u16).to_le_bytes());
    out[8..16].copy_from_slice(&tables.to_le_bytes());
    let mut at = HEADER_SIZE;
    for unit in units {
        out[at..at + 8].copy_from_slice(&unit.reg_base.to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&unit.root_table.to_le_bytes());
        out[at + 16..at + 18].copy_from_slice(&unit.segment.to_le_bytes());
        out[at + 18..at + 20].copy_from_slice(&unit.nr_devices.to_le_bytes());
        at += UNIT_SIZE;
    }
    for dev in devices {
        out[at..at + 2].copy_from_slice(&dev.bdf.to_le_bytes());
        out[at + 2..at + 4].copy_from_slice(&dev.domain_id.to_le_bytes());
        out[at + 4] = dev.levels;
        out[at + 5] = if dev.device_tlb {
            DEV_FLAG_DEVICE_TLB
        } else {
            0
        };
        out[at + 8..at + 16].copy_from_slice(&dev.pgtable.to_le_bytes());
        at += DEVICE_SIZE;
    }
    Ok(())
}

/// A record handed over by the previous kernel, validated as a whole.
pub struct Record<'a> {
    bytes: &'a [u8; RECORD_SIZE],
    nr_units: usize,
    nr_devices: usize,
    /// Physical address of the list of handed-over table pages.
    pub tables: u64,
}

impl<'a> Record<'a> {
    /// Reads and validates `bytes`. The tables themselves are checked by
    /// [`super::tables::validate_unit`].
    pub fn parse(bytes: &'a [u8; RECORD_SIZE]) -> Result<Self, Invalid> {
        let version = u32_at(bytes, 0);
        if version != VERSION {
            return Err(Invalid::Version(version));
        }
        let record = Record {
            bytes,
            nr_units: usize::from(u16_at(bytes, 4)),
            nr_devices: usize::from(u16_at(bytes, 6)),
            tables: u64_at(bytes, 8),
        };
        if !fits(record.nr_units, record.nr_devices) {
            return Err(Invalid::Counts);
        }
        let mut counted = 0;
        for (i, unit) in record.units().enumerate() {
            if unit.reg_base == 0
                || unit.reg_base & PAGE_MASK != 0
                || unit.root_table == 0
                || unit.root_table & PAGE_MASK != 0
            {
                return Err(Invalid::UnitAddress(i));
            }
            if u32_at(bytes, HEADER_SIZE + i * UNIT_SIZE + 20) != 0 {
                return Err(Invalid::Reserved);
            }
            if record.units().take(i).any(|u| u.reg_base == unit.reg_base) {
                return Err(Invalid::UnitTwice(unit.reg_base));
            }
            counted += usize::from(unit.nr_devices);
        }
        if counted != record.nr_devices {
            return Err(Invalid::Counts);
        }
        let devices_at = HEADER_SIZE + record.nr_units * UNIT_SIZE;
        for i in 0..record.nr_devices {
            let at = devices_at + i * DEVICE_SIZE;
            let levels = bytes[at + 4];
            let flags = bytes[at + 5];
            let pgtable = u64_at(bytes, at + 8);
            if u16_at(bytes, at + 6) != 0 {
                return Err(Invalid::Reserved);
            }
            if flags & !KNOWN_DEV_FLAGS != 0
                || !(MIN_LEVELS..=MAX_LEVELS).contains(&levels)
                || pgtable == 0
                || pgtable & PAGE_MASK != 0
            {
                return Err(Invalid::Device(i));
            }
        }
        // The bytes after the last device are zero: nothing is hidden past the counts.
        let end = devices_at + record.nr_devices * DEVICE_SIZE;
        if bytes[end..].iter().any(|b| *b != 0) {
            return Err(Invalid::Reserved);
        }
        for i in 0..record.nr_units {
            let devices = record.devices(i);
            for (j, dev) in devices.clone().enumerate() {
                for other in devices.clone().take(j) {
                    if other.bdf == dev.bdf {
                        return Err(Invalid::DeviceTwice(dev.bdf));
                    }
                    let same_domain = other.domain_id == dev.domain_id;
                    let same_tables = other.pgtable == dev.pgtable && other.levels == dev.levels;
                    if same_domain != same_tables {
                        return Err(Invalid::Domain(dev.domain_id));
                    }
                }
            }
        }
        Ok(record)
    }

    /// The units, in the record's order.
    pub fn units(&self) -> impl Iterator<Item = Unit> + Clone + 'a {
        let bytes = self.bytes;
        (0..self.nr_units).map(move |i| {
            let at = HEADER_SIZE + i * UNIT_SIZE;
            Unit {
                reg_base: u64_at(bytes, at),
                root_table: u64_at(bytes, at + 8),
                segment: u16_at(bytes, at + 16),
                nr_devices: u16_at(bytes, at + 18),
            }
        })
    }

    /// The devices of unit `unit` (an index into [`Record::units`]).
    pub fn devices(&self, unit: usize) -> impl Iterator<Item = KeptDevice> + Clone + 'a {
        let bytes = self.bytes;
        let first: usize = self
            .units()
            .take(unit)
            .map(|u| usize::from(u.nr_devices))
            .sum();
        let count = self
            .units()
            .nth(unit)
            .map_or(0, |u| usize::from(u.nr_devices));
        let devices_at = HEADER_SIZE + self.nr_units * UNIT_SIZE;
        (first..first + count).map(move |i| {
            let at = devices_at + i * DEVICE_SIZE;
            KeptDevice {
                bdf: u16_at(bytes, at),
                domain_id: u16_at(bytes, at + 2),
                levels: bytes[at + 4],
                device_tlb: bytes[at + 5] & DEV_FLAG_DEVICE_TLB != 0,
                pgtable: u64_at(bytes, at + 8),
            }
        })
    }

    /// Devices over all units.
    pub fn nr_devices(&self) -> usize {
        self.nr_devices
    }
}
