// SPDX-License-Identifier: GPL-2.0

//! A benchmark of the table of preserved devices, as KUnit runs it: how the cost of an insert,
//! a lookup and a removal grows with the number of entries, up to 4096.
//!
//! It prints figures and checks only that the table holds what was put in: it never fails on a
//! time. `make bench` runs it (tools/vmtest/scenarios/bench/table.toml) and reports the figures;
//! its name keeps it out of the `rust_*` globs `make test` runs.

use kernel::{
    prelude::*,
    time::{Instant, Monotonic},
};

use super::{
    abi::DevId,
    table::{Slot, Table},
};

/// Table sizes measured, and how often each is measured.
const SIZES: [usize; 4] = [64, 256, 1024, 4096];
const RUNS: usize = 5;

/// The `i`th of `n` devices (a power of two) in a scrambled order: an odd multiplier permutes
/// the residues modulo `n`, and a large one makes consecutive calls land all over the table,
/// as real BDFs would (a small one would insert or remove in order, at one end).
fn device(i: usize, n: usize, multiplier: usize) -> DevId {
    let k = i.wrapping_mul(multiplier) % n;
    DevId {
        domain: (k >> 16) as u32,
        bdf: k as u16,
    }
}

/// Nanoseconds per call of `op` on each of the `n` devices.
fn per_call(n: usize, multiplier: usize, mut op: impl FnMut(DevId) -> bool) -> Result<i64> {
    let started = Instant::<Monotonic>::now();
    for i in 0..n {
        if !op(device(i, n, multiplier)) {
            return Err(EINVAL);
        }
    }
    Ok(started.elapsed().as_nanos() / n as i64)
}

#[kunit_tests(pci_liveupdate_table_bench)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_remove_up_to_4096_entries() -> Result {
        for n in SIZES {
            for run in 1..=RUNS {
                let mut table = Table::<KVec<Slot>>::new(KVec::new());
                let insert = per_call(n, 40503, |id| table.preserve(&[id]).is_ok())?;
                assert_eq!(table.len(), n);
                let lookup = per_call(n, 2_654_435_761, |id| table.refcount(id) == Some(1))?;
                let remove = per_call(n, 0x85eb_ca6b, |id| table.unpreserve(&[id]).is_ok())?;
                assert!(table.is_empty());
                pr_info!(
                    "table bench: entries={} run={} insert_ns={} lookup_ns={} remove_ns={}\n",
                    n,
                    run,
                    insert,
                    lookup,
                    remove
                );
            }
        }
        Ok(())
    }
}
