// SPDX-License-Identifier: GPL-2.0
//! Property tests: random preserve/unpreserve sequences keep the table consistent with a
//! model, the handed-over form round-trips, and no byte string makes the loader accept an
//! inconsistent table.

use std::collections::BTreeSet;

use liveupdate_core::pci::abi::{DevId, Entry, Header, ENTRY_SIZE, HEADER_SIZE};
use liveupdate_core::pci::table::{Slot, Table, TableError};
use proptest::prelude::*;

/// A small fixed topology: two domains, each with root ports 00:0{1,2}.0, a switch
/// (01:00.0 upstream, 02:0{0,1}.0 downstream) under the first port, endpoints below.
fn endpoints() -> Vec<Vec<DevId>> {
    let d = |domain, bus: u16, slot: u16, func: u16| DevId {
        domain,
        bdf: bus << 8 | slot << 3 | func,
    };
    let mut paths = Vec::new();
    for domain in [0, 0x10000] {
        let (port1, port2) = (d(domain, 0, 1, 0), d(domain, 0, 2, 0));
        let up = d(domain, 1, 0, 0);
        for (down, bus) in [(d(domain, 2, 0, 0), 3), (d(domain, 2, 1, 0), 4)] {
            for func in 0..3 {
                paths.push(vec![port1, up, down, d(domain, bus, 0, func)]);
            }
        }
        for func in 0..2 {
            paths.push(vec![port2, d(domain, 5, 0, func)]);
        }
        // A bridge preserved itself.
        paths.push(vec![port2]);
    }
    paths
}

fn expected_refcount(id: DevId, preserved: &BTreeSet<usize>, paths: &[Vec<DevId>]) -> Option<u16> {
    let n = preserved
        .iter()
        .filter(|&&p| paths[p].contains(&id))
        .count();
    (n > 0).then_some(n as u16)
}

proptest! {
    #[test]
    fn random_sequences_match_the_model(ops in prop::collection::vec((any::<bool>(), 0usize..32), 0..200)) {
        let paths = endpoints();
        let mut table: Table<Vec<Slot>> = Table::new(Vec::new());
        let mut preserved = BTreeSet::new();
        for (preserve, pick) in ops {
            let p = pick % paths.len();
            if preserve {
                let got = table.preserve(&paths[p]);
                if preserved.insert(p) {
                    prop_assert_eq!(got, Ok(()));
                } else {
                    prop_assert_eq!(got, Err(TableError::Busy));
                }
            } else {
                let got = table.unpreserve(&paths[p]);
                if preserved.remove(&p) {
                    prop_assert_eq!(got, Ok(()));
                } else {
                    prop_assert_eq!(got, Err(TableError::NotPreserved));
                }
            }
            prop_assert!(table.is_consistent());
            for path in &paths {
                for &id in path {
                    prop_assert_eq!(table.refcount(id), expected_refcount(id, &preserved, &paths));
                }
            }
        }
        // What is handed over loads back to the same table.
        let raw: Vec<[u8; ENTRY_SIZE]> = table.entries().map(|e| e.encode()).collect();
        let header = Header::decode(&table.header(0xabc000).encode());
        let loaded = Table::load(&header, &raw, Vec::new()).unwrap();
        prop_assert_eq!(loaded.entries().collect::<Vec<_>>(), table.entries().collect::<Vec<_>>());
    }

    #[test]
    fn any_bytes_are_rejected_or_load_consistently(
        header in prop::array::uniform16(any::<u8>()),
        raw in prop::collection::vec(prop::array::uniform8(any::<u8>()), 0..64),
        force_valid_header in any::<bool>(),
    ) {
        let mut header = Header::decode(&header);
        if force_valid_header {
            // Reach past the version and count checks to the per-entry ones.
            header.version = liveupdate_core::pci::abi::VERSION;
            header.nr_devices = raw.iter().filter(|r| Entry::decode(r).refcount != 0).count() as u32;
        }
        if let Ok(table) = Table::load(&header, &raw, Vec::new()) {
            prop_assert!(table.is_consistent());
            prop_assert_eq!(table.len(), header.nr_devices as usize);
            for e in table.entries() {
                prop_assert!(e.id.domain <= liveupdate_core::pci::abi::MAX_DOMAIN);
            }
        }
    }

    #[test]
    fn codec_round_trips(bytes in prop::array::uniform16(any::<u8>())) {
        prop_assert_eq!(Header::decode(&bytes).encode(), bytes);
        let entry: [u8; ENTRY_SIZE] = bytes[..ENTRY_SIZE].try_into().unwrap();
        prop_assert_eq!(Entry::decode(&entry).encode(), entry);
        prop_assert_eq!(HEADER_SIZE, 16);
    }
}
