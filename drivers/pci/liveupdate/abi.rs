// SPDX-License-Identifier: GPL-2.0

//! The PCI Live Update ABI: what one kernel hands the next about preserved PCI devices.
//!
//! The layout is defined in C in `include/linux/kho/abi/pci.h`, with its sizes and offsets
//! asserted there; this file is its little-endian codec. The kernel build asserts the codec's
//! sizes and offsets against the C definition (`pci_liveupdate.rs`), and the host tests
//! (`tools/liveupdate-core`) check the bytes it writes. Only `core` is used, so the host
//! test crate compiles this file too.

/// The FLB compatible string, also upstream's: a kernel with upstream's C PCI core and one
/// with this Rust core read each other's state.
pub const COMPATIBLE: &core::ffi::CStr = c"pci";

/// The ABI version; any change to the layout below bumps it.
#[cfg(not(CONFIG_PCI_LIVEUPDATE_NEXT_VERSION_TEST))]
pub const VERSION: u32 = 2;
/// The next ABI version, which a test-only kernel writes and reads to test updates between
/// kernels of different versions.
#[cfg(CONFIG_PCI_LIVEUPDATE_NEXT_VERSION_TEST)]
pub const VERSION: u32 = 3;

/// Size of the header (`struct pci_ser`).
pub const HEADER_SIZE: usize = 16;

/// Size of one device entry (`struct pci_dev_ser`).
pub const ENTRY_SIZE: usize = 8;

/// Largest PCI domain (segment) number Linux uses: `pci_domain_nr()` is an `int`.
pub const MAX_DOMAIN: u32 = i32::MAX as u32;

/// A PCI function, by segment and bus/device/function number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevId {
    /// PCI domain (segment); VMD domains start at 0x10000, hence 32 bits.
    pub domain: u32,
    /// Bus number in bits 15:8, device in 7:3, function in 2:0.
    pub bdf: u16,
}

impl DevId {
    /// The bus number.
    pub fn bus(self) -> u8 {
        (self.bdf >> 8) as u8
    }

    /// The device (slot) number.
    pub fn slot(self) -> u8 {
        ((self.bdf >> 3) & 0x1f) as u8
    }

    /// The function number.
    pub fn function(self) -> u8 {
        (self.bdf & 0x7) as u8
    }
}

impl core::fmt::Display for DevId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain,
            self.bus(),
            self.slot(),
            self.function()
        )
    }
}

/// `struct pci_ser`: the header, in one KHO allocation whose address is the FLB's handle.
///
/// Layout (never to move without bumping [`VERSION`]): `version` u32 at 0, `nr_devices` u32
/// at 4, `devices` u64 at 8: the physical address of the first block of the KHO block set
/// holding the entries (0 when there are none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`VERSION`] of the kernel that wrote it.
    pub version: u32,
    /// Entries in use (non-zero refcount).
    pub nr_devices: u32,
    /// Physical address of the first entry block.
    pub devices: u64,
}

impl Header {
    /// The little-endian bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0; HEADER_SIZE];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..8].copy_from_slice(&self.nr_devices.to_le_bytes());
        out[8..16].copy_from_slice(&self.devices.to_le_bytes());
        out
    }

    /// Reads the header from little-endian bytes; any bytes decode, validation comes later.
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Self {
        Self {
            version: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            nr_devices: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            devices: u64::from_le_bytes([
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14],
                bytes[15],
            ]),
        }
    }
}

/// `struct pci_dev_ser`: one preserved device or bridge.
///
/// Layout (never to move without bumping [`VERSION`]): `domain` u32 at 0, `bdf` u16 at 4,
/// `refcount` u16 at 6. A refcount of 0 marks a free slot; otherwise it counts the preserved
/// devices at or below this one (1 for an endpoint, the endpoints below for a bridge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The device.
    pub id: DevId,
    /// Preserved devices at or below it; 0 for a free slot.
    pub refcount: u16,
}

impl Entry {
    /// The little-endian bytes.
    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0; ENTRY_SIZE];
        out[0..4].copy_from_slice(&self.id.domain.to_le_bytes());
        out[4..6].copy_from_slice(&self.id.bdf.to_le_bytes());
        out[6..8].copy_from_slice(&self.refcount.to_le_bytes());
        out
    }

    /// Reads an entry from little-endian bytes.
    pub fn decode(bytes: &[u8; ENTRY_SIZE]) -> Self {
        Self {
            id: DevId {
                domain: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                bdf: u16::from_le_bytes([bytes[4], bytes[5]]),
            },
            refcount: u16::from_le_bytes([bytes[6], bytes[7]]),
        }
    }
}
