// SPDX-License-Identifier: GPL-2.0
//! Tests of the vfio-pci Live Update record: codec, validator, corrupted records.

use liveupdate_core::vfio_pci::abi::{
    address, config_stored, encode, encoded_len, parse, Cap, EncodeError, Identity, Invalid, State,
    BARS, CAP_HEADER_SIZE, COMPATIBLE, FLAG_BIG_ENDIAN, FLAG_BUS_MASTER, FLAG_RESET_WORKS,
    HEADER_SIZE, MAX_CAPS, MIN_CONFIG_STORED, VERSION,
};
use proptest::prelude::*;

/// The QEMU edu device at 0000:02:00.0.
const EDU: Identity = Identity {
    domain: 0,
    bdf: 0x0200,
    vendor: 0x1234,
    device: 0x11e8,
    class: 0x00ff00,
};

/// A virtual config space of `size` bytes for `id`, whose last byte is not zero, so that a
/// record stores all of it.
fn vconfig(id: &Identity, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    v[size - 1] = 0x5a;
    v[0..2].copy_from_slice(&id.vendor.to_le_bytes());
    v[2..4].copy_from_slice(&id.device.to_le_bytes());
    v[8..12].copy_from_slice(&(id.class << 8 | 0x10).to_le_bytes()); // revision 0x10
    v[4] = 0x06; // memory + bus master
    v
}

struct Sample {
    vconfig: Vec<u8>,
    caps: Vec<(u16, bool, Vec<u8>)>,
}

impl Sample {
    fn new() -> Self {
        Sample {
            vconfig: vconfig(&EDU, 256),
            caps: vec![
                (0x05, false, vec![1; 12]),
                (0x10, false, vec![2; 60]),
                (0x01, true, vec![3; 56]),
            ],
        }
    }

    fn state(&self) -> State<'_, impl Iterator<Item = Cap<'_>> + Clone> {
        let mut config_header = [0u32; 16];
        for (i, d) in config_header.iter_mut().enumerate() {
            *d = 0x1000_0000 + i as u32;
        }
        State {
            identity: EDU,
            flags: FLAG_BUS_MASTER | FLAG_RESET_WORKS,
            vconfig: &self.vconfig,
            config_header,
            caps: self.caps.iter().map(|(n, e, d)| Cap {
                cap_nr: *n,
                extended: *e,
                data: d,
            }),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let state = self.state();
        let mut out = vec![0; encoded_len(&state) + 100]; // KHO rounds allocations up
        let n = encode(&state, &mut out).unwrap();
        assert_eq!(n, encoded_len(&state));
        out
    }
}

#[test]
fn a_record_round_trips() {
    let sample = Sample::new();
    let bytes = sample.bytes();
    let record = parse(&bytes, &EDU).unwrap();
    assert_eq!(record.identity, EDU);
    assert_eq!(record.flags, FLAG_BUS_MASTER | FLAG_RESET_WORKS);
    assert_eq!(record.vconfig, &sample.vconfig[..]);
    assert_eq!(record.config_header[15], 0x1000_000f);
    let caps: Vec<_> = record
        .caps()
        .map(|c| (c.cap_nr, c.extended, c.data.to_vec()))
        .collect();
    assert_eq!(caps, sample.caps);
}

#[test]
fn a_device_whose_bars_or_config_space_changed_is_refused() {
    let sample = Sample::new();
    let bytes = sample.bytes();
    let record = parse(&bytes, &EDU).unwrap();
    let size = sample.vconfig.len();
    // The sample's config header holds 0x1000_0000 + its dword index; BARs are dwords 4 to 9.
    let mut bars: [u32; BARS] = core::array::from_fn(|i| 0x1000_0004 + i as u32);
    assert_eq!(record.check_device(&bars, size), Ok(()));
    let resized = Invalid::DeviceConfigSize {
        recorded: size,
        found: 4096,
    };
    assert_ne!(size, 4096);
    assert_eq!(record.check_device(&bars, 4096), Err(resized));
    assert_eq!(
        resized.to_string(),
        format!("config space of {size} bytes in the previous kernel, 4096 here")
    );
    bars[5] = 0xfe00_0000;
    let moved = Invalid::Bar {
        index: 5,
        recorded: 0x1000_0009,
        found: 0xfe00_0000,
    };
    assert_eq!(record.check_device(&bars, size), Err(moved));
    assert_eq!(
        moved.to_string(),
        "BAR 5 is 0xfe000000 here, was 0x10000009 in the previous kernel"
    );
}

#[test]
fn only_a_record_of_another_device_leaves_the_device_alone() {
    let another = [
        Invalid::Identity,
        Invalid::DeviceConfigSize {
            recorded: 256,
            found: 4096,
        },
        Invalid::Bar {
            index: 0,
            recorded: 1,
            found: 2,
        },
    ];
    assert!(another.iter().all(Invalid::describes_another_device));
    let corrupt = [
        Invalid::Truncated,
        Invalid::Version(VERSION + 1),
        Invalid::Flags(0x80),
        Invalid::ByteOrder,
        Invalid::Reserved,
        Invalid::ConfigSize(512),
        Invalid::ConfigStored(60),
        Invalid::ConfigIdentity,
        Invalid::CapSize(0),
        Invalid::CapKind(0),
        Invalid::CapDuplicate(0x10),
        Invalid::TooManyCaps,
        Invalid::NoEnd,
    ];
    assert!(!corrupt.iter().any(Invalid::describes_another_device));
}

#[test]
fn the_address_is_read_before_the_device_is_known() {
    let mut bytes = Sample::new().bytes();
    assert_eq!(address(&bytes), Ok((EDU.domain, EDU.bdf)));
    assert_eq!(address(&bytes[..HEADER_SIZE - 1]), Err(Invalid::Truncated));
    bytes[0] = 3;
    assert_eq!(address(&bytes), Err(Invalid::Version(3)));
}

#[test]
fn the_layout_is_fixed() {
    let bytes = Sample::new().bytes();
    assert_eq!(HEADER_SIZE, 28);
    assert_eq!(&bytes[0..4], &VERSION.to_le_bytes());
    assert_eq!(&bytes[8..10], &0x0200u16.to_le_bytes()); // bdf
    assert_eq!(&bytes[20..22], &256u16.to_le_bytes()); // cfg_size
    assert_eq!(&bytes[22..24], &256u16.to_le_bytes()); // cfg_stored
    assert_eq!(
        &bytes[HEADER_SIZE..HEADER_SIZE + 2],
        &0x1234u16.to_le_bytes()
    ); // vconfig
    assert_eq!(COMPATIBLE, c"vfio-pci-state-v1");
}

#[test]
fn caps_of_16_bit_registers_keep_their_odd_sizes() {
    // The PCI core saves the PCI Express capability as 7 registers of 16 bits: 14 bytes, after
    // which the next record is not dword-aligned.
    let mut sample = Sample::new();
    sample.caps[1].2 = vec![2; 14];
    let bytes = sample.bytes();
    let record = parse(&bytes, &EDU).unwrap();
    let sizes: Vec<_> = record.caps().map(|c| c.data.len()).collect();
    assert_eq!(sizes, [12, 14, 56]);
    assert_eq!(record.caps().nth(2).unwrap().data, &[3; 56][..]);
}

#[test]
fn extended_config_space_is_accepted() {
    let mut sample = Sample::new();
    sample.vconfig = vconfig(&EDU, 4096);
    let bytes = sample.bytes();
    assert_eq!(parse(&bytes, &EDU).unwrap().vconfig.len(), 4096);
}

#[test]
fn the_config_space_is_stored_up_to_its_last_non_zero_dword() {
    let mut sample = Sample::new();
    sample.vconfig = vconfig(&EDU, 4096);
    sample.vconfig[4095] = 0;
    sample.vconfig[0x105] = 0x77;
    let bytes = sample.bytes();
    assert_eq!(&bytes[22..24], &0x108u16.to_le_bytes());
    let record = parse(&bytes, &EDU).unwrap();
    assert_eq!(record.config_size, 4096);
    assert_eq!(record.vconfig, &sample.vconfig[..0x108]);
    assert!(sample.vconfig[0x108..].iter().all(|&b| b == 0));
    // Never less than the standard header, which names the device.
    assert_eq!(config_stored(&[0; 256]), MIN_CONFIG_STORED);
    // Whole dwords.
    let mut v = [0; 256];
    v[0xfd] = 1;
    assert_eq!(config_stored(&v), 256);
    v[0xfd] = 0;
    v[0x81] = 1;
    assert_eq!(config_stored(&v), 0x84);
    // The record of a 4 KiB config space that is mostly zero fits a page.
    assert!(encoded_len(&sample.state()) < 4096);
}

#[test]
fn the_encoder_refuses_what_it_cannot_write() {
    let mut sample = Sample::new();
    {
        let state = sample.state();
        assert_eq!(
            encode(&state, &mut [0; 10]),
            Err(EncodeError::TooSmall(encoded_len(&state)))
        );
    }
    sample.vconfig.truncate(100);
    assert_eq!(
        encode(&sample.state(), &mut vec![0; 4096]),
        Err(EncodeError::ConfigSize(100))
    );
    let mut sample = Sample::new();
    sample.caps[1].2.clear();
    assert_eq!(
        encode(&sample.state(), &mut vec![0; 4096]),
        Err(EncodeError::CapSize(0x10))
    );
    let mut sample = Sample::new();
    sample.caps = (0..=MAX_CAPS as u16)
        .map(|n| (n, false, vec![0; 4]))
        .collect();
    assert_eq!(
        encode(&sample.state(), &mut vec![0; 8192]),
        Err(EncodeError::TooManyCaps)
    );
}

/// Offset of the first capability record.
const CAPS_AT: usize = HEADER_SIZE + 256 + 64;

#[test]
fn corrupted_records_are_rejected() {
    let good = Sample::new().bytes();
    let len = encoded_len(&Sample::new().state());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        parse(&b, &EDU).err()
    };
    let other = |f: &dyn Fn(&mut Identity)| {
        let mut id = EDU;
        f(&mut id);
        parse(&good, &id).err()
    };
    let cases = [
        ("empty", parse(&[], &EDU).err(), Some(Invalid::Truncated)),
        (
            "cut in the header",
            with(&|b| b.truncate(20)),
            Some(Invalid::Truncated),
        ),
        (
            "cut in the config space",
            with(&|b| b.truncate(HEADER_SIZE + 100)),
            Some(Invalid::Truncated),
        ),
        (
            "cut in the saved state",
            with(&|b| b.truncate(len - 20)),
            Some(Invalid::Truncated),
        ),
        (
            "old version",
            with(&|b| b[0] = 0),
            Some(Invalid::Version(0)),
        ),
        (
            "future version",
            with(&|b| b[0] = 3),
            Some(Invalid::Version(3)),
        ),
        (
            "version 1, which stored the whole config space",
            with(&|b| b[0] = 1),
            Some(Invalid::Version(1)),
        ),
        (
            "unknown flag",
            with(&|b| b[10] |= 0x80),
            Some(Invalid::Flags(0x83)),
        ),
        (
            "config stored below its header",
            with(&|b| b[22..24].copy_from_slice(&60u16.to_le_bytes())),
            Some(Invalid::ConfigStored(60)),
        ),
        (
            "config stored beyond its size",
            with(&|b| b[22..24].copy_from_slice(&260u16.to_le_bytes())),
            Some(Invalid::ConfigStored(260)),
        ),
        (
            "config stored in part of a dword",
            with(&|b| b[22..24].copy_from_slice(&66u16.to_le_bytes())),
            Some(Invalid::ConfigStored(66)),
        ),
        (
            "config size 300",
            with(&|b| b[20..22].copy_from_slice(&300u16.to_le_bytes())),
            Some(Invalid::ConfigSize(300)),
        ),
        (
            "another domain",
            other(&|id| id.domain = 1),
            Some(Invalid::Identity),
        ),
        (
            "another BDF",
            other(&|id| id.bdf = 0x0201),
            Some(Invalid::Identity),
        ),
        (
            "another device ID",
            other(&|id| id.device = 0x11e9),
            Some(Invalid::Identity),
        ),
        (
            "another class",
            other(&|id| id.class = 0x020000),
            Some(Invalid::Identity),
        ),
        (
            "config space of another vendor",
            with(&|b| b[HEADER_SIZE] ^= 1),
            Some(Invalid::ConfigIdentity),
        ),
        (
            "cap data of the other byte order",
            with(&|b| b[10] |= FLAG_BIG_ENDIAN as u8),
            Some(Invalid::ByteOrder),
        ),
        (
            "cap past the section",
            with(&|b| b[CAPS_AT + 5] = 0x10),
            Some(Invalid::CapSize(0)),
        ),
        (
            "cap of unknown kind",
            with(&|b| b[CAPS_AT + 2] = 2),
            Some(Invalid::CapKind(0)),
        ),
        (
            "cap reserved set",
            with(&|b| b[CAPS_AT + 3] = 1),
            Some(Invalid::Reserved),
        ),
        (
            "cap saved twice",
            with(&|b| b[CAPS_AT + 8 + 12] = 0x05),
            Some(Invalid::CapDuplicate(0x05)),
        ),
        (
            "end record missing",
            with(&|b| {
                b[24..28].copy_from_slice(&((len - HEADER_SIZE - 256 - 8) as u32).to_le_bytes())
            }),
            Some(Invalid::NoEnd),
        ),
        (
            "bytes after the end record",
            with(&|b| {
                b[24..28].copy_from_slice(&((len - HEADER_SIZE - 256 + 4) as u32).to_le_bytes())
            }),
            Some(Invalid::NoEnd),
        ),
        (
            "end record not zero",
            with(&|b| b[len - 8] = 7),
            Some(Invalid::NoEnd),
        ),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn too_many_caps_are_rejected() {
    let mut sample = Sample::new();
    sample.caps = (0..MAX_CAPS as u16)
        .map(|n| (n, false, vec![0; 4]))
        .collect();
    let mut bytes = sample.bytes();
    assert!(parse(&bytes, &EDU).is_ok());
    // Turn the end record into one more capability, then end after it.
    let end = encoded_len(&sample.state()) - CAP_HEADER_SIZE;
    bytes[end..end + 8].copy_from_slice(&[0xff, 0, 0, 0, 4, 0, 0, 0]);
    bytes.splice(end + 8..end + 8, [0u8; 4 + CAP_HEADER_SIZE]);
    let saved = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) + 4 + CAP_HEADER_SIZE as u32;
    bytes[24..28].copy_from_slice(&saved.to_le_bytes());
    assert_eq!(parse(&bytes, &EDU).err(), Some(Invalid::TooManyCaps));
}

proptest! {
    #[test]
    fn any_bytes_are_rejected_or_parse_to_what_encodes_back(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(record) = parse(&bytes, &EDU) {
            let state = State {
                identity: record.identity,
                flags: record.flags,
                vconfig: record.vconfig,
                config_header: record.config_header,
                caps: record.caps(),
            };
            let mut out = vec![0; encoded_len(&state)];
            encode(&state, &mut out).unwrap();
            prop_assert_eq!(&bytes[..out.len()], &out[..]);
        }
    }

    #[test]
    fn a_flipped_byte_is_caught_or_harmless(at in 0usize..400, bit in 0u8..8) {
        let sample = Sample::new();
        let mut bytes = sample.bytes();
        bytes[at] ^= 1 << bit;
        // Either rejected, or a record that encodes back to exactly these bytes.
        if let Ok(record) = parse(&bytes, &EDU) {
            let caps: Vec<_> = record.caps().collect();
            prop_assert!(caps.len() <= MAX_CAPS);
            prop_assert!(caps.iter().all(|c| !c.data.is_empty()));
        }
    }
}
