// SPDX-License-Identifier: GPL-2.0
//! Unit tests of the PCI Live Update ABI codec and device table.

use liveupdate_core::pci::abi::{DevId, Entry, Header, ENTRY_SIZE, HEADER_SIZE, VERSION};
use liveupdate_core::pci::table::{
    Invalid, LoadError, OutOfMemory, Slot, Storage, Table, TableError,
};

fn dev(domain: u32, bus: u8, slot: u8, func: u8) -> DevId {
    DevId {
        domain,
        bdf: (bus as u16) << 8 | (slot as u16) << 3 | func as u16,
    }
}

/// The QEMU topology: root port 00:01.0, devices behind it on bus 1.
fn port() -> DevId {
    dev(0, 0, 1, 0)
}
fn edu() -> DevId {
    dev(0, 1, 0, 0)
}
fn edu_fn1() -> DevId {
    dev(0, 1, 0, 1)
}

fn table() -> Table<Vec<Slot>> {
    Table::new(Vec::new())
}

#[test]
fn layout_is_little_endian_and_fixed() {
    let h = Header {
        version: 2,
        nr_devices: 3,
        devices: 0x1122_3344_5566_7788,
    };
    let bytes = h.encode();
    assert_eq!(bytes.len(), HEADER_SIZE);
    assert_eq!(
        bytes,
        [2, 0, 0, 0, 3, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
    );
    assert_eq!(Header::decode(&bytes), h);
    let e = Entry {
        id: DevId {
            domain: 0x10000,
            bdf: 0x0108,
        },
        refcount: 2,
    };
    let bytes = e.encode();
    assert_eq!(bytes.len(), ENTRY_SIZE);
    assert_eq!(bytes, [0, 0, 1, 0, 0x08, 0x01, 2, 0]);
    assert_eq!(Entry::decode(&bytes), e);
}

#[test]
fn devices_print_and_sort_like_lspci() {
    assert_eq!(dev(0, 1, 2, 3).to_string(), "0000:01:02.3");
    assert_eq!(dev(0x10000, 0xff, 31, 7).to_string(), "10000:ff:1f.7");
    assert!(dev(0, 0xff, 0, 0) < dev(1, 0, 0, 0));
}

#[test]
fn bridges_count_the_devices_below_them() {
    let mut t = table();
    t.preserve(&[port(), edu()]).unwrap();
    assert_eq!((t.refcount(port()), t.refcount(edu())), (Some(1), Some(1)));
    t.preserve(&[port(), edu_fn1()]).unwrap();
    assert_eq!(t.refcount(port()), Some(2));
    t.unpreserve(&[port(), edu()]).unwrap();
    assert_eq!((t.refcount(port()), t.refcount(edu())), (Some(1), None));
    t.unpreserve(&[port(), edu_fn1()]).unwrap();
    assert!(t.is_empty());
}

#[test]
fn a_bridge_preserved_itself_counts_itself_too() {
    let mut t = table();
    t.preserve(&[port(), edu()]).unwrap();
    t.preserve(&[port()]).unwrap();
    assert_eq!(t.refcount(port()), Some(2));
    assert_eq!(t.preserve(&[port()]), Err(TableError::Busy));
    t.unpreserve(&[port()]).unwrap();
    assert_eq!(t.refcount(port()), Some(1));
    assert_eq!(t.unpreserve(&[port()]), Err(TableError::NotPreserved));
}

#[test]
fn refused_calls_change_nothing() {
    let mut t = table();
    t.preserve(&[port(), edu()]).unwrap();
    let before: Vec<Entry> = t.entries().collect();
    assert_eq!(t.preserve(&[port(), edu()]), Err(TableError::Busy));
    assert_eq!(
        t.unpreserve(&[port(), edu_fn1()]),
        Err(TableError::NotPreserved)
    );
    assert_eq!(t.preserve(&[]), Err(TableError::BadPath));
    assert_eq!(
        t.preserve(&[edu_fn1(), edu_fn1()]),
        Err(TableError::BadPath)
    );
    assert_eq!(t.entries().collect::<Vec<_>>(), before);
}

#[test]
fn refcounts_never_wrap() {
    let mut t = table();
    for f in 0..u16::MAX as u32 {
        let leaf = dev(1, (f >> 8) as u8, ((f >> 3) & 31) as u8, (f & 7) as u8);
        t.preserve(&[port(), leaf]).unwrap();
    }
    assert_eq!(t.refcount(port()), Some(u16::MAX));
    assert_eq!(
        t.preserve(&[port(), dev(2, 0, 0, 0)]),
        Err(TableError::Overflow)
    );
    assert!(t.is_consistent());
}

/// Storage whose allocations fail after a budget of items.
struct Limited {
    items: Vec<Slot>,
    budget: usize,
}

impl Storage<Slot> for Limited {
    fn items(&self) -> &[Slot] {
        &self.items
    }
    fn items_mut(&mut self) -> &mut [Slot] {
        &mut self.items
    }
    fn reserve(&mut self, additional: usize) -> Result<(), OutOfMemory> {
        if self.items.len() + additional > self.budget {
            return Err(OutOfMemory);
        }
        self.items.reserve(additional);
        Ok(())
    }
    fn push_reserved(&mut self, item: Slot) {
        self.items.push(item)
    }
    fn pop(&mut self) -> Option<Slot> {
        self.items.pop()
    }
}

#[test]
fn allocation_failure_part_way_up_the_path_rolls_back() {
    let mut t = Table::new(Limited {
        items: Vec::new(),
        budget: 3,
    });
    let switch_up = dev(0, 1, 0, 0);
    let switch_down = dev(0, 2, 0, 0);
    t.preserve(&[port(), switch_up]).unwrap();
    let before: Vec<Entry> = t.entries().collect();
    // Needs two new entries (downstream port, endpoint) where one fits.
    assert_eq!(
        t.preserve(&[port(), switch_up, switch_down, dev(0, 3, 0, 0)]),
        Err(TableError::NoMemory)
    );
    assert_eq!(t.entries().collect::<Vec<_>>(), before);
    assert!(t.is_consistent());
}

#[test]
fn finish_releases_the_path_once() {
    let mut t = table();
    t.preserve(&[port(), edu()]).unwrap();
    t.preserve(&[port(), edu_fn1()]).unwrap();
    let raw: Vec<[u8; ENTRY_SIZE]> = t.entries().map(|e| e.encode()).collect();
    let mut incoming = Table::load(&t.header(0x1000), &raw, Vec::new()).unwrap();
    incoming.finish([port(), edu()].into_iter()).unwrap();
    assert_eq!(
        (incoming.refcount(port()), incoming.refcount(edu())),
        (Some(1), None)
    );
    assert_eq!(
        incoming.finish([port(), edu()].into_iter()),
        Err(TableError::NotPreserved)
    );
    // A walk up the hierarchy gives the path endpoint first.
    incoming.finish([edu_fn1(), port()].into_iter()).unwrap();
    assert!(incoming.is_empty());
}

#[test]
fn finish_refuses_empty_and_repeating_paths() {
    let mut t = table();
    t.preserve(&[port(), edu()]).unwrap();
    let raw: Vec<[u8; ENTRY_SIZE]> = t.entries().map(|e| e.encode()).collect();
    let mut incoming = Table::load(&t.header(0x1000), &raw, Vec::new()).unwrap();
    assert_eq!(incoming.finish([].into_iter()), Err(TableError::BadPath));
    assert_eq!(
        incoming.finish([edu(), port(), edu()].into_iter()),
        Err(TableError::BadPath)
    );
    assert_eq!(incoming.refcount(edu()), Some(1));
    incoming.finish([edu(), port()].into_iter()).unwrap();
    assert!(incoming.is_empty());
}

fn image() -> (Header, Vec<[u8; ENTRY_SIZE]>) {
    let mut t = table();
    t.preserve(&[port(), edu()]).unwrap();
    t.preserve(&[dev(0, 0, 2, 0), dev(0, 2, 0, 0)]).unwrap();
    (t.header(0x2000), t.entries().map(|e| e.encode()).collect())
}

#[test]
fn a_good_image_loads_with_free_slots_skipped() {
    let (header, mut raw) = image();
    raw.insert(
        1,
        Entry {
            id: dev(0, 9, 0, 0),
            refcount: 0,
        }
        .encode(),
    );
    let t = Table::load(&header, &raw, Vec::new()).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(t.refcount(port()), Some(1));
    assert_eq!(t.refcount(dev(0, 9, 0, 0)), None);
}

#[test]
fn corrupted_images_are_rejected_whole() {
    let (good_header, good) = image();
    let entry = |raw: &[u8; ENTRY_SIZE]| Entry::decode(raw);
    let with = |f: &dyn Fn(&mut Header, &mut Vec<[u8; ENTRY_SIZE]>)| {
        let (mut h, mut r) = (good_header, good.clone());
        f(&mut h, &mut r);
        Table::load(&h, &r, Vec::new()).err()
    };
    let inv = |i| Some(LoadError::Invalid(i));
    let cases: Vec<(&str, Option<LoadError>)> = vec![
        ("old version", with(&|h, _| h.version = 1)),
        ("future version", with(&|h, _| h.version = VERSION + 1)),
        ("zero version", with(&|h, _| h.version = 0)),
        ("count too high", with(&|h, _| h.nr_devices += 1)),
        ("count too low", with(&|h, _| h.nr_devices -= 1)),
        ("count huge", with(&|h, _| h.nr_devices = u32::MAX)),
        ("entries missing", with(&|_, r| r.truncate(2))),
        (
            "extra entry",
            with(&|_, r| {
                r.push(
                    Entry {
                        id: edu_fn1(),
                        refcount: 1,
                    }
                    .encode(),
                )
            }),
        ),
        (
            "duplicate device",
            with(&|h, r| {
                r.push(r[0]);
                h.nr_devices += 1
            }),
        ),
        (
            "duplicate, other refcount",
            with(&|h, r| {
                let mut e = entry(&r[1]);
                e.refcount = 7;
                r.push(e.encode());
                h.nr_devices += 1
            }),
        ),
        (
            "domain out of range",
            with(&|_, r| {
                let mut e = entry(&r[0]);
                e.id.domain = 0x8000_0000;
                r[0] = e.encode()
            }),
        ),
        (
            "domain all ones",
            with(&|_, r| {
                let mut e = entry(&r[3]);
                e.id.domain = u32::MAX;
                r[3] = e.encode()
            }),
        ),
        (
            "refcount zeroed",
            with(&|_, r| {
                let mut e = entry(&r[2]);
                e.refcount = 0;
                r[2] = e.encode()
            }),
        ),
        ("no entries at all", with(&|_, r| r.clear())),
    ];
    for (name, got) in &cases {
        assert!(got.is_some(), "{name}: accepted");
    }
    assert_eq!(cases[0].1, inv(Invalid::Version(1)));
    assert_eq!(
        cases[3].1,
        inv(Invalid::Count {
            header: 5,
            entries: 4
        })
    );
    assert_eq!(cases[8].1, inv(Invalid::Duplicate(entry(&good[0]).id)));
    assert!(matches!(
        cases[10].1,
        Some(LoadError::Invalid(Invalid::Domain(_)))
    ));
    assert!(cases.len() >= 10);
}

#[test]
fn rejections_explain_themselves() {
    assert_eq!(
        Invalid::Version(1).to_string(),
        format!("ABI version 1, this kernel reads {VERSION}")
    );
    assert_eq!(
        Invalid::Duplicate(edu()).to_string(),
        "device 0000:01:00.0 appears twice"
    );
}

#[test]
fn the_flb_is_found_by_upstreams_name() {
    assert_eq!(liveupdate_core::pci::abi::COMPATIBLE, c"pci");
    assert_eq!(VERSION, 2);
}
