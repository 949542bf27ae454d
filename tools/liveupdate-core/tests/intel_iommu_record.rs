// SPDX-License-Identifier: GPL-2.0
//! Tests of the VT-d Live Update record: codec, validator, corrupted records.

use liveupdate_core::intel_iommu::abi::{
    encode, EncodeError, Invalid, Record, Unit, COMPATIBLE, DEVICE_SIZE, HEADER_SIZE, MAX_DEVICES,
    RECORD_SIZE, UNIT_SIZE, VERSION,
};
use liveupdate_core::intel_iommu::tables::KeptDevice;
use proptest::prelude::*;

fn dev(bdf: u16, domain_id: u16, pgtable: u64) -> KeptDevice {
    KeptDevice {
        bdf,
        domain_id,
        levels: 4,
        device_tlb: false,
        pgtable,
    }
}

/// Two units: the first with two devices of one domain and one of another, the second with
/// one device with a device TLB.
fn sample() -> (Vec<Unit>, Vec<KeptDevice>) {
    let units = vec![
        Unit {
            reg_base: 0xfed9_0000,
            root_table: 0x1_0000,
            segment: 0,
            nr_devices: 3,
        },
        Unit {
            reg_base: 0xfed9_1000,
            root_table: 0x2_0000,
            segment: 1,
            nr_devices: 1,
        },
    ];
    let mut tlb = dev(0x0100, 1, 0x5_0000);
    tlb.device_tlb = true;
    tlb.levels = 5;
    let devices = vec![
        dev(0x0018, 1, 0x3_0000),
        dev(0x0019, 1, 0x3_0000),
        dev(0x0200, 2, 0x4_0000),
        tlb,
    ];
    (units, devices)
}

fn encoded() -> Box<[u8; RECORD_SIZE]> {
    let (units, devices) = sample();
    let mut out = Box::new([0xa5; RECORD_SIZE]);
    encode(&mut out, 0x9_0000, &units, &devices).unwrap();
    out
}

#[test]
fn the_layout_is_the_c_one() {
    assert_eq!(COMPATIBLE.to_str().unwrap(), "intel-iommu-v1");
    assert_eq!((HEADER_SIZE, UNIT_SIZE, DEVICE_SIZE), (16, 24, 16));
    let b = encoded();
    assert_eq!(&b[0..4], &VERSION.to_le_bytes());
    assert_eq!(&b[4..8], &[2, 0, 4, 0]);
    assert_eq!(&b[8..16], &0x9_0000u64.to_le_bytes());
    // Second unit: reg_base, root_table, segment 1, one device.
    let u = HEADER_SIZE + UNIT_SIZE;
    assert_eq!(&b[u..u + 8], &0xfed9_1000u64.to_le_bytes());
    assert_eq!(&b[u + 16..u + 24], &[1, 0, 1, 0, 0, 0, 0, 0]);
    // Last device: bdf, domain, 5 levels, device TLB, pgtable.
    let d = HEADER_SIZE + 2 * UNIT_SIZE + 3 * DEVICE_SIZE;
    assert_eq!(&b[d..d + 8], &[0x00, 0x01, 1, 0, 5, 1, 0, 0]);
    assert_eq!(&b[d + 8..d + 16], &0x5_0000u64.to_le_bytes());
    assert!(b[d + 16..].iter().all(|x| *x == 0));
}

#[test]
fn records_read_back_as_written() {
    let (units, devices) = sample();
    let b = encoded();
    let r = Record::parse(&b).unwrap();
    assert_eq!(r.tables, 0x9_0000);
    assert_eq!(r.nr_devices(), 4);
    assert_eq!(r.units().collect::<Vec<_>>(), units);
    assert_eq!(r.devices(0).collect::<Vec<_>>(), devices[..3]);
    assert_eq!(r.devices(1).collect::<Vec<_>>(), devices[3..]);
    assert_eq!(r.devices(2).count(), 0);
}

#[test]
fn records_that_do_not_fit_are_not_written() {
    let (mut units, devices) = sample();
    let mut out = Box::new([0; RECORD_SIZE]);
    units[0].nr_devices = 2;
    assert_eq!(
        encode(&mut out, 0, &units, &devices),
        Err(EncodeError::Counts)
    );
    let many = vec![dev(1, 1, 0x1000); MAX_DEVICES + 1];
    let one = [Unit {
        nr_devices: many.len() as u16,
        ..units[0]
    }];
    assert_eq!(encode(&mut out, 0, &one, &many), Err(EncodeError::TooMany));
    assert_eq!(
        encode(&mut out, 0, &one, &many[..MAX_DEVICES]),
        Err(EncodeError::Counts)
    );
}

#[test]
fn corrupt_records_are_rejected() {
    let check = |edit: &dyn Fn(&mut [u8; RECORD_SIZE])| {
        let mut b = encoded();
        edit(&mut b);
        Record::parse(&b).err()
    };
    let dev0 = HEADER_SIZE + 2 * UNIT_SIZE;
    assert_eq!(check(&|b| b[0] = 2), Some(Invalid::Version(2)));
    assert_eq!(check(&|b| b[4] = 0), Some(Invalid::Counts));
    // No unit and no device: nothing handed over, and that is a record too.
    assert!(check(&|b| {
        b[4..8].fill(0);
        b[HEADER_SIZE..].fill(0);
    })
    .is_none());
    // A third unit read from the devices' bytes.
    assert_eq!(check(&|b| b[4] = 3), Some(Invalid::UnitAddress(2)));
    assert_eq!(check(&|b| b[6] = 5), Some(Invalid::Counts));
    assert_eq!(check(&|b| b[7] = 1), Some(Invalid::Counts));
    assert_eq!(
        check(&|b| b[HEADER_SIZE + 1] = 0x01),
        Some(Invalid::UnitAddress(0))
    );
    assert_eq!(
        check(&|b| b[HEADER_SIZE + 8..HEADER_SIZE + 16].fill(0)),
        Some(Invalid::UnitAddress(0))
    );
    assert_eq!(check(&|b| b[HEADER_SIZE + 20] = 1), Some(Invalid::Reserved));
    assert_eq!(
        check(&|b| b.copy_within(HEADER_SIZE..HEADER_SIZE + 8, HEADER_SIZE + UNIT_SIZE)),
        Some(Invalid::UnitTwice(0xfed9_0000))
    );
    assert_eq!(check(&|b| b[dev0 + 4] = 6), Some(Invalid::Device(0)));
    assert_eq!(check(&|b| b[dev0 + 4] = 2), Some(Invalid::Device(0)));
    assert_eq!(check(&|b| b[dev0 + 5] = 2), Some(Invalid::Device(0)));
    assert_eq!(check(&|b| b[dev0 + 8] = 8), Some(Invalid::Device(0)));
    assert_eq!(check(&|b| b[dev0 + 6] = 1), Some(Invalid::Reserved));
    assert_eq!(check(&|b| b[RECORD_SIZE - 1] = 1), Some(Invalid::Reserved));
    // The second device made the first again.
    assert_eq!(
        check(&|b| b[dev0 + DEVICE_SIZE] = 0x18),
        Some(Invalid::DeviceTwice(0x0018))
    );
    // One domain, other tables; other domains, one set of tables.
    assert_eq!(
        check(&|b| b[dev0 + DEVICE_SIZE + 10] = 9),
        Some(Invalid::Domain(1))
    );
    assert_eq!(
        check(&|b| b[dev0 + 2 * DEVICE_SIZE + 2] = 1),
        Some(Invalid::Domain(1))
    );
    assert_eq!(
        check(&|b| b[dev0 + 2 * DEVICE_SIZE + 10] = 3),
        Some(Invalid::Domain(2))
    );
    // A device of the second unit may share the first's domain id: ids are per unit.
    assert_eq!(check(&|b| b[dev0 + 3 * DEVICE_SIZE + 2] = 2), None);
}

proptest! {
    /// Any bytes either parse into a record whose counts fit the page and whose devices are
    /// sound, or are rejected; never a panic.
    #[test]
    fn any_bytes_are_parsed_or_rejected(
        seed in prop::collection::vec(any::<u8>(), RECORD_SIZE),
        keep_header in any::<bool>(),
    ) {
        let mut b = Box::new([0; RECORD_SIZE]);
        b.copy_from_slice(&seed);
        if keep_header {
            b[..HEADER_SIZE].copy_from_slice(&encoded()[..HEADER_SIZE]);
        }
        if let Ok(r) = Record::parse(&b) {
            let units: Vec<Unit> = r.units().collect();
            let total: usize = units.iter().map(|u| usize::from(u.nr_devices)).sum();
            prop_assert_eq!(total, r.nr_devices());
            prop_assert!(HEADER_SIZE + units.len() * UNIT_SIZE + total * DEVICE_SIZE <= RECORD_SIZE);
            for i in 0..units.len() {
                for d in r.devices(i) {
                    prop_assert!((3..=5).contains(&d.levels));
                    prop_assert!(d.pgtable != 0 && d.pgtable % 4096 == 0);
                }
            }
        }
    }

    /// Single-byte corruptions of a good record never panic, and a record that still parses
    /// has sound counts.
    #[test]
    fn corrupted_records_never_panic(at in 0usize..RECORD_SIZE, value in any::<u8>()) {
        let mut b = encoded();
        b[at] = value;
        if let Ok(r) = Record::parse(&b) {
            let total: usize = r.units().map(|u| usize::from(u.nr_devices)).sum();
            prop_assert_eq!(total, r.nr_devices());
        }
    }
}
