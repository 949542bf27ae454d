// SPDX-License-Identifier: GPL-2.0

//! The vfio-pci Live Update ABI: the record of one preserved device.
//!
//! The layout is defined in C in `include/linux/kho/abi/vfio_pci.h`; this file is its
//! little-endian codec and the validator of records handed over by another kernel. A record is
//! accepted only whole: any inconsistency rejects it, and the device then takes the normal path.
//! Only `core` is used, so the host tests (`tools/liveupdate-core`) compile this file too.

/// The compatible string of the file handler; distinct from upstream's `"vfio-pci-v1"`, which
/// hands over only the domain and BDF.
pub const COMPATIBLE: &core::ffi::CStr = c"vfio-pci-state-v1";

/// The ABI version; any change to the layout bumps it.
#[cfg(not(CONFIG_VFIO_PCI_LIVEUPDATE_NEXT_VERSION_TEST))]
pub const VERSION: u32 = 2;
/// The next ABI version, which a test-only kernel writes and reads to test updates between
/// kernels of different versions.
#[cfg(CONFIG_VFIO_PCI_LIVEUPDATE_NEXT_VERSION_TEST)]
pub const VERSION: u32 = 3;

/// Size of the header (`struct vfio_pci_lu_ser`).
pub const HEADER_SIZE: usize = 28;

/// Size of a capability record's header (`struct vfio_pci_lu_cap`).
pub const CAP_HEADER_SIZE: usize = 8;

/// Dwords of the standard config header at the start of the saved state.
pub const CONFIG_HEADER_DWORDS: usize = 16;

/// The fewest bytes of the virtual config space a record stores: its standard header, which
/// names the device.
pub const MIN_CONFIG_STORED: usize = CONFIG_HEADER_DWORDS * 4;

/// Base Address Registers of a type 0 config header, from dword 4 on.
pub const BARS: usize = 6;
const FIRST_BAR_DWORD: usize = 4;

/// Bus mastering was enabled in the physical command register.
pub const FLAG_BUS_MASTER: u16 = 1 << 0;

/// vfio-pci could reset the device.
pub const FLAG_RESET_WORKS: u16 = 1 << 1;

/// The capability data is in big-endian byte order. The encoder sets it on big-endian CPUs;
/// a kernel of the other byte order rejects the record.
pub const FLAG_BIG_ENDIAN: u16 = 1 << 2;

const KNOWN_FLAGS: u16 = FLAG_BUS_MASTER | FLAG_RESET_WORKS | FLAG_BIG_ENDIAN;

/// [`FLAG_BIG_ENDIAN`] if this CPU is big-endian.
const NATIVE_ORDER: u16 = if cfg!(target_endian = "big") {
    FLAG_BIG_ENDIAN
} else {
    0
};

/// Most capability records a device may have saved (PCI has far fewer capability IDs).
pub const MAX_CAPS: usize = 64;

/// Which device a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// PCI domain (segment).
    pub domain: u32,
    /// Bus, device and function.
    pub bdf: u16,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code, 24 bits.
    pub class: u32,
}

/// One saved capability: its ID, whether it is extended, and its saved registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap<'a> {
    /// `PCI_CAP_ID_*` or `PCI_EXT_CAP_ID_*`.
    pub cap_nr: u16,
    /// An extended (PCIe) capability.
    pub extended: bool,
    /// The saved data as the PCI core keeps it: registers of 16 or 32 bits (which, depends on
    /// the capability) in the CPU's byte order; never empty.
    pub data: &'a [u8],
}

/// What the outgoing kernel records about a device.
pub struct State<'a, C: Iterator<Item = Cap<'a>> + Clone> {
    /// The device.
    pub identity: Identity,
    /// `FLAG_*` bits; the encoder adds [`FLAG_BIG_ENDIAN`] itself.
    pub flags: u16,
    /// The virtual config space: 256 or 4096 bytes.
    pub vconfig: &'a [u8],
    /// The standard config header as saved.
    pub config_header: [u32; CONFIG_HEADER_DWORDS],
    /// The saved capabilities.
    pub caps: C,
}

/// Why a record could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The virtual config space is neither 256 nor 4096 bytes.
    ConfigSize(usize),
    /// A capability's data is empty or too large.
    CapSize(u16),
    /// More than [`MAX_CAPS`] capabilities.
    TooManyCaps,
    /// The output buffer is too small; this many bytes are needed.
    TooSmall(usize),
}

/// Why a handed-over record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Shorter than its header, or than the sizes its header gives.
    Truncated,
    /// Written by a kernel with another ABI version.
    Version(u32),
    /// Flags this kernel does not know.
    Flags(u16),
    /// The capability data is in the other byte order than this CPU's.
    ByteOrder,
    /// A reserved field is not zero.
    Reserved,
    /// The config space size is neither 256 nor 4096.
    ConfigSize(u16),
    /// The bytes of config space stored are fewer than its header, more than its size, or not
    /// whole dwords.
    ConfigStored(u16),
    /// The record is for another device than the one at its address.
    Identity,
    /// The virtual config space names another device than the header.
    ConfigIdentity,
    /// Capability record `index` has a bad size or extends past the section.
    CapSize(usize),
    /// Capability record `index` is neither standard nor extended.
    CapKind(usize),
    /// The same capability is saved twice.
    CapDuplicate(u16),
    /// More than [`MAX_CAPS`] capabilities.
    TooManyCaps,
    /// The capability list does not end with an end record at the end of the section.
    NoEnd,
    /// The config space is `recorded` bytes in the record, `found` on the device.
    DeviceConfigSize {
        /// Its size in the record.
        recorded: usize,
        /// Its size on the device.
        found: usize,
    },
    /// BAR `index` holds `found` on the device, `recorded` in the record: the device was moved.
    Bar {
        /// Which BAR.
        index: usize,
        /// Its value in the saved state.
        recorded: u32,
        /// Its value on the device.
        found: u32,
    },
}

impl Invalid {
    /// Whether the record does not describe the device at its address (its identity, config
    /// space size or BARs are another device's), rather than describing it corruptly: such a
    /// record may have been pointed at a device kept under a record of its own.
    pub fn describes_another_device(&self) -> bool {
        matches!(
            self,
            Invalid::Identity | Invalid::DeviceConfigSize { .. } | Invalid::Bar { .. }
        )
    }
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Invalid::Truncated => write!(f, "record shorter than its sizes say"),
            Invalid::Version(v) => write!(f, "ABI version {v}, this kernel reads {VERSION}"),
            Invalid::Flags(x) => write!(f, "unknown flags {x:#x}"),
            Invalid::ByteOrder => write!(f, "written by a CPU of the other byte order"),
            Invalid::Reserved => write!(f, "reserved field not zero"),
            Invalid::ConfigSize(s) => write!(f, "config space of {s} bytes"),
            Invalid::ConfigStored(s) => write!(f, "{s} bytes of config space stored"),
            Invalid::Identity => write!(f, "record of another device"),
            Invalid::ConfigIdentity => write!(f, "config space of another device"),
            Invalid::CapSize(i) => write!(f, "capability record {i} has a bad size"),
            Invalid::CapKind(i) => write!(f, "capability record {i} of unknown kind"),
            Invalid::CapDuplicate(c) => write!(f, "capability {c:#x} saved twice"),
            Invalid::TooManyCaps => write!(f, "more than {MAX_CAPS} capabilities"),
            Invalid::NoEnd => write!(f, "capability list not ended at the end of the record"),
            Invalid::DeviceConfigSize { recorded, found } => write!(
                f,
                "config space of {recorded} bytes in the previous kernel, {found} here"
            ),
            Invalid::Bar {
                index,
                recorded,
                found,
            } => write!(
                f,
                "BAR {index} is {found:#010x} here, was {recorded:#010x} in the previous kernel"
            ),
        }
    }
}

fn config_size_ok(size: usize) -> bool {
    size == 256 || size == 4096
}

/// The bytes of `vconfig` a record stores: up to its last non-zero dword, and at least its
/// standard header. The rest of a PCIe device's 4096 bytes is mostly zero, and storing it
/// would double the KHO memory a record takes (KHO hands out power-of-two pages).
pub fn config_stored(vconfig: &[u8]) -> usize {
    let used = vconfig.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    used.next_multiple_of(4)
        .clamp(MIN_CONFIG_STORED, vconfig.len().max(MIN_CONFIG_STORED))
}

/// Bytes the record of `state` takes.
pub fn encoded_len<'a, C: Iterator<Item = Cap<'a>> + Clone>(state: &State<'a, C>) -> usize {
    let caps: usize = state
        .caps
        .clone()
        .map(|c| CAP_HEADER_SIZE + c.data.len())
        .sum();
    HEADER_SIZE + config_stored(state.vconfig) + CONFIG_HEADER_DWORDS * 4 + caps + CAP_HEADER_SIZE
}

/// Writes the record of `state` into `out`; returns the bytes written.
pub fn encode<'a, C: Iterator<Item = Cap<'a>> + Clone>(
    state: &State<'a, C>,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    if !config_size_ok(state.vconfig.len()) {
        return Err(EncodeError::ConfigSize(state.vconfig.len()));
    }
    let mut count = 0;
    for cap in state.caps.clone() {
        if cap.data.is_empty() || cap.data.len() > u32::MAX as usize {
            return Err(EncodeError::CapSize(cap.cap_nr));
        }
        count += 1;
    }
    if count > MAX_CAPS {
        return Err(EncodeError::TooManyCaps);
    }
    let len = encoded_len(state);
    let out = out.get_mut(..len).ok_or(EncodeError::TooSmall(len))?;
    let stored = config_stored(state.vconfig);
    let saved_state_size = (len - HEADER_SIZE - stored) as u32;
    let id = &state.identity;
    let mut w = Writer { out, at: 0 };
    w.put(&VERSION.to_le_bytes());
    w.put(&id.domain.to_le_bytes());
    w.put(&id.bdf.to_le_bytes());
    w.put(&(state.flags | NATIVE_ORDER).to_le_bytes());
    w.put(&id.vendor.to_le_bytes());
    w.put(&id.device.to_le_bytes());
    w.put(&id.class.to_le_bytes());
    w.put(&(state.vconfig.len() as u16).to_le_bytes());
    w.put(&(stored as u16).to_le_bytes());
    w.put(&saved_state_size.to_le_bytes());
    w.put(&state.vconfig[..stored]);
    for dword in state.config_header {
        w.put(&dword.to_le_bytes());
    }
    for cap in state.caps.clone() {
        w.put(&cap.cap_nr.to_le_bytes());
        w.put(&[u8::from(cap.extended), 0]);
        w.put(&(cap.data.len() as u32).to_le_bytes());
        w.put(cap.data);
    }
    w.put(&[0; CAP_HEADER_SIZE]);
    Ok(w.at)
}

struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// A validated record, borrowing the handed-over bytes.
#[derive(Debug)]
pub struct Record<'a> {
    /// The device, as checked against the one at its address.
    pub identity: Identity,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// The virtual config space as stored: its first bytes, at least its standard header; the
    /// rest of its [`Record::config_size`] bytes are zero.
    pub vconfig: &'a [u8],
    /// The size of the virtual config space: 256 or 4096 bytes.
    pub config_size: usize,
    /// The standard config header as saved.
    pub config_header: [u32; CONFIG_HEADER_DWORDS],
    /// The capability records, end record included, all validated.
    caps: &'a [u8],
}

impl<'a> Record<'a> {
    /// Checks the record against the device found at its address: its config space is
    /// `config_size` bytes, as the virtual one must be, and its BARs hold `bars`, as the saved
    /// state must: the saved state is written back to the device when it is closed, and BARs
    /// the new kernel assigned elsewhere would then be moved under other devices' resources.
    pub fn check_device(&self, bars: &[u32; BARS], config_size: usize) -> Result<(), Invalid> {
        if self.config_size != config_size {
            return Err(Invalid::DeviceConfigSize {
                recorded: self.config_size,
                found: config_size,
            });
        }
        let recorded = &self.config_header[FIRST_BAR_DWORD..FIRST_BAR_DWORD + BARS];
        match recorded.iter().zip(bars).position(|(r, b)| r != b) {
            None => Ok(()),
            Some(index) => Err(Invalid::Bar {
                index,
                recorded: recorded[index],
                found: bars[index],
            }),
        }
    }

    /// The saved capabilities, in the order they were saved.
    pub fn caps(&self) -> impl Iterator<Item = Cap<'a>> + Clone + 'a {
        let mut rest = self.caps;
        core::iter::from_fn(move || {
            let (cap, next) = read_cap(rest).ok()??;
            rest = next;
            Some(cap)
        })
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads one capability record: `Ok(None)` at the end record.
fn read_cap(b: &[u8]) -> Result<Option<(Cap<'_>, &[u8])>, ()> {
    if b.len() < CAP_HEADER_SIZE {
        return Err(());
    }
    let size = le32(b, 4) as usize;
    if size == 0 {
        return Ok(None);
    }
    let data = b.get(CAP_HEADER_SIZE..CAP_HEADER_SIZE + size).ok_or(())?;
    let cap = Cap {
        cap_nr: le16(b, 0),
        extended: b[2] == 1,
        data,
    };
    Ok(Some((cap, &b[CAP_HEADER_SIZE + size..])))
}

/// Validates the record in `bytes` (the whole KHO allocation) for the device `expected`.
pub fn parse<'a>(bytes: &'a [u8], expected: &Identity) -> Result<Record<'a>, Invalid> {
    let h = bytes.get(..HEADER_SIZE).ok_or(Invalid::Truncated)?;
    let version = le32(h, 0);
    if version != VERSION {
        return Err(Invalid::Version(version));
    }
    let identity = Identity {
        domain: le32(h, 4),
        bdf: le16(h, 8),
        vendor: le16(h, 12),
        device: le16(h, 14),
        class: le32(h, 16),
    };
    let flags = le16(h, 10);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Invalid::Flags(flags));
    }
    if flags & FLAG_BIG_ENDIAN != NATIVE_ORDER {
        return Err(Invalid::ByteOrder);
    }
    let cfg_size = le16(h, 20);
    if !config_size_ok(cfg_size.into()) {
        return Err(Invalid::ConfigSize(cfg_size));
    }
    let cfg_stored = le16(h, 22);
    if usize::from(cfg_stored) < MIN_CONFIG_STORED || cfg_stored > cfg_size || cfg_stored % 4 != 0 {
        return Err(Invalid::ConfigStored(cfg_stored));
    }
    if identity != *expected {
        return Err(Invalid::Identity);
    }
    let saved_state_size = le32(h, 24) as usize;
    let body = &bytes[HEADER_SIZE..];
    let vconfig = body.get(..cfg_stored.into()).ok_or(Invalid::Truncated)?;
    let class = le32(vconfig, 8) >> 8;
    if le16(vconfig, 0) != identity.vendor
        || le16(vconfig, 2) != identity.device
        || class != identity.class
    {
        return Err(Invalid::ConfigIdentity);
    }
    let saved = body[cfg_stored.into()..]
        .get(..saved_state_size)
        .ok_or(Invalid::Truncated)?;
    let header_bytes = saved
        .get(..CONFIG_HEADER_DWORDS * 4)
        .ok_or(Invalid::Truncated)?;
    let mut config_header = [0u32; CONFIG_HEADER_DWORDS];
    for (i, dword) in config_header.iter_mut().enumerate() {
        *dword = le32(header_bytes, i * 4);
    }
    let caps = &saved[CONFIG_HEADER_DWORDS * 4..];
    let mut rest = caps;
    let mut seen = [(0u16, false); MAX_CAPS];
    let mut index = 0;
    loop {
        if rest.len() < CAP_HEADER_SIZE {
            return Err(Invalid::NoEnd);
        }
        let (size, kind, reserved) = (le32(rest, 4) as usize, rest[2], rest[3]);
        if size == 0 {
            // The end record: nothing may follow, and its other fields are zero.
            if rest.len() != CAP_HEADER_SIZE || le16(rest, 0) != 0 || kind != 0 || reserved != 0 {
                return Err(Invalid::NoEnd);
            }
            break;
        }
        if kind > 1 {
            return Err(Invalid::CapKind(index));
        }
        if reserved != 0 {
            return Err(Invalid::Reserved);
        }
        if rest.len() - CAP_HEADER_SIZE < size {
            return Err(Invalid::CapSize(index));
        }
        if index == MAX_CAPS {
            return Err(Invalid::TooManyCaps);
        }
        let key = (le16(rest, 0), kind == 1);
        if seen[..index].contains(&key) {
            return Err(Invalid::CapDuplicate(key.0));
        }
        seen[index] = key;
        index += 1;
        rest = &rest[CAP_HEADER_SIZE + size..];
    }
    Ok(Record {
        identity,
        flags,
        vconfig,
        config_size: cfg_size.into(),
        config_header,
        caps,
    })
}

/// The address of the device a record is for, read before the whole record is validated
/// against that device with [`parse`].
pub fn address(bytes: &[u8]) -> Result<(u32, u16), Invalid> {
    let h = bytes.get(..HEADER_SIZE).ok_or(Invalid::Truncated)?;
    let version = le32(h, 0);
    if version != VERSION {
        return Err(Invalid::Version(version));
    }
    Ok((le32(h, 4), le16(h, 8)))
}
