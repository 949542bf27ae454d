// SPDX-License-Identifier: GPL-2.0
//! The figures of `make bench`, computed from the samples.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::parse::{Raw, Sample};
use crate::stats::Stat;

/// P1: one model's devices on one path, in ms from the VMM's first call.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub model: String,
    /// "kept" (RETRIEVE_FD), "cold" (open, which resets) or "cold-noreset" (open with resets
    /// turned off).
    pub path: String,
    /// To the file (and guest memory).
    pub get: Option<Stat>,
    /// To bound to iommufd (vfio-pci enables, and resets a cold device).
    pub bind: Option<Stat>,
    /// To attached to an IOAS.
    pub attach: Option<Stat>,
    /// To guest memory mapped.
    pub mapped: Option<Stat>,
    /// To the first successful BAR access.
    pub bar: Option<Stat>,
    /// To the first completed DMA, for a model that does one.
    pub dma: Option<Stat>,
}

/// P1: kept against cold, as the ratio of their medians; and against cold without the reset
/// (the floor a kept device could reach).
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub model: String,
    pub bar: Option<f64>,
    pub dma: Option<f64>,
    pub bar_no_reset: Option<f64>,
    pub dma_no_reset: Option<f64>,
}

/// P2: one device count. Per-device costs are each update's total over its devices, so what
/// the first device of an update pays alone (the PCI core's record at the first preserve) is
/// shared; `*_call` are the single calls.
#[derive(Debug, Serialize)]
pub struct Scale {
    pub devices: u32,
    /// PRESERVE_FD per device, ms.
    pub preserve: Option<Stat>,
    pub preserve_call: Option<Stat>,
    /// RETRIEVE_FD to the first BAR access, per kept device, ms.
    pub kept: Option<Stat>,
    pub kept_call: Option<Stat>,
    /// Open (with its reset) to the first BAR access, per device opened cold, ms.
    pub cold: Option<Stat>,
    pub cold_call: Option<Stat>,
    /// reboot(KEXEC) to the old kernel's jump, all devices kept / none, s (host clock).
    pub jump_kept: Option<Stat>,
    pub jump_none: Option<Stat>,
    /// reboot(KEXEC) to the last device usable, all kept / none, s (host clock).
    pub usable_kept: Option<Stat>,
    pub usable_none: Option<Stat>,
}

/// P2: the KUnit benchmark of the PCI table, ns per call.
#[derive(Debug, Serialize)]
pub struct Table {
    pub entries: u32,
    pub insert: Option<Stat>,
    pub lookup: Option<Stat>,
    pub remove: Option<Stat>,
}

/// P3: the vfio record of one model, bytes.
#[derive(Debug, Serialize)]
pub struct Record {
    pub model: String,
    pub record: Option<Stat>,
    pub kho: Option<Stat>,
    /// Bytes of the virtual config space stored, of `config`.
    pub config_stored: Option<Stat>,
    pub config: Option<Stat>,
    pub saved_state: Option<Stat>,
}

/// P3: the PCI core's table with `kept` devices, bytes.
#[derive(Debug, Serialize)]
pub struct PciTable {
    pub kept: u32,
    pub entries: u32,
    pub bytes: u32,
    pub kho: u32,
}

/// P4: `size` of one object in one configuration.
#[derive(Debug, Serialize)]
pub struct Size {
    pub config: String,
    pub object: String,
    pub text: u64,
    pub data: u64,
    pub bss: u64,
}

/// P5: `make test` runs recorded by scripts/test.sh, s.
#[derive(Debug, Serialize)]
pub struct TestTime {
    /// "cold" (no build directory at the start) or "warm".
    pub kind: String,
    pub seconds: Option<Stat>,
    /// The latest run's result line and commit.
    pub latest: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub ready: Vec<Ready>,
    pub ratios: Vec<Ratio>,
    pub scale: Vec<Scale>,
    pub table: Vec<Table>,
    pub records: Vec<Record>,
    pub pci_tables: Vec<PciTable>,
    pub sizes: Vec<Size>,
    pub test_times: Vec<TestTime>,
}

fn of<'a>(samples: impl Iterator<Item = &'a Sample>, key: &str, scale: f64) -> Option<Stat> {
    Stat::of(samples.filter_map(|s| s.num(key))).map(|s| s.scaled(scale))
}

fn distinct<'a>(samples: impl Iterator<Item = &'a Sample>, key: &str) -> Vec<String> {
    let set: BTreeSet<&str> = samples.filter_map(|s| s.get(key)).collect();
    set.into_iter().map(String::from).collect()
}

const MS: f64 = 1e-3;

/// The mean of `key` over the samples of each update (scenario and stage), as one figure over
/// the updates.
fn per_update<'a>(
    samples: impl Iterator<Item = &'a Sample>,
    key: &str,
    scale: f64,
) -> Option<Stat> {
    let mut groups: Vec<((&str, &str), f64, usize)> = Vec::new();
    for s in samples {
        let (Some(v), Some(stage)) = (s.num(key), s.get("stage")) else {
            continue;
        };
        let id = (s.scenario.as_str(), stage);
        match groups.iter_mut().find(|(g, _, _)| *g == id) {
            Some((_, sum, n)) => {
                *sum += v;
                *n += 1;
            }
            None => groups.push((id, v, 1)),
        }
    }
    Stat::of(groups.iter().map(|(_, sum, n)| sum / *n as f64)).map(|s| s.scaled(scale))
}

impl Figures {
    pub fn of(raw: &Raw) -> Self {
        let figure = |name: &'static str| raw.samples.iter().filter(move |s| s.figure == name);
        let ready_of = |model: &str, path: &str| {
            let it = || {
                figure("ready")
                    .filter(|s| s.get("model") == Some(model) && s.get("path") == Some(path))
            };
            Ready {
                model: model.into(),
                path: path.into(),
                get: of(it(), "get_us", MS),
                bind: of(it(), "bind_us", MS),
                attach: of(it(), "attach_us", MS),
                mapped: of(it(), "mapped_us", MS),
                bar: of(it(), "bar_us", MS),
                dma: of(it(), "dma_us", MS),
            }
        };
        let mut ready = Vec::new();
        let mut ratios = Vec::new();
        for model in distinct(figure("ready"), "model") {
            let kept = ready_of(&model, "kept");
            let cold = ready_of(&model, "cold");
            let floor = ready_of(&model, "cold-noreset");
            let ratio = |k: Option<Stat>, c: Option<Stat>| Some(k?.median / c?.median);
            ratios.push(Ratio {
                model: model.clone(),
                bar: ratio(kept.bar, cold.bar),
                dma: ratio(kept.dma, cold.dma),
                bar_no_reset: ratio(kept.bar, floor.bar),
                dma_no_reset: ratio(kept.dma, floor.dma),
            });
            ready.extend([kept, cold, floor].into_iter().filter(|r| r.bar.is_some()));
        }

        let mut counts: Vec<u32> = figure("scale")
            .chain(figure("preserve").filter(|s| s.scenario.starts_with("scale")))
            .filter_map(|s| s.num("devices"))
            .map(|n| n as u32)
            .collect();
        counts.sort_unstable();
        counts.dedup();
        let scale = counts
            .into_iter()
            .map(|n| {
                let at = |name: &'static str| {
                    figure(name).filter(move |s| {
                        s.scenario.starts_with("scale") && s.num("devices") == Some(n.into())
                    })
                };
                let path = |p: &'static str| at("scale").filter(move |s| s.get("path") == Some(p));
                let updates = |kept: bool| {
                    raw.updates.iter().filter(move |u| {
                        u.kept
                            .is_some_and(|(k, of)| of == n && (k == of) == kept && (k == 0) != kept)
                    })
                };
                Scale {
                    devices: n,
                    preserve: per_update(at("preserve"), "us", MS),
                    preserve_call: of(at("preserve"), "us", MS),
                    kept: per_update(path("kept"), "bar_us", MS),
                    kept_call: of(path("kept"), "bar_us", MS),
                    cold: per_update(path("cold"), "bar_us", MS),
                    cold_call: of(path("cold"), "bar_us", MS),
                    jump_kept: Stat::of(updates(true).filter_map(|u| u.jump)),
                    jump_none: Stat::of(updates(false).filter_map(|u| u.jump)),
                    usable_kept: Stat::of(updates(true).filter_map(|u| u.usable)),
                    usable_none: Stat::of(updates(false).filter_map(|u| u.usable)),
                }
            })
            .collect();

        let mut sizes: Vec<u32> = figure("table")
            .filter_map(|s| s.num("entries"))
            .map(|n| n as u32)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let table = sizes
            .into_iter()
            .map(|n| {
                let at = || figure("table").filter(move |s| s.num("entries") == Some(n.into()));
                Table {
                    entries: n,
                    insert: of(at(), "insert_ns", 1.0),
                    lookup: of(at(), "lookup_ns", 1.0),
                    remove: of(at(), "remove_ns", 1.0),
                }
            })
            .collect();

        let records = distinct(figure("memory"), "model")
            .into_iter()
            .map(|model| {
                let it = || figure("memory").filter(|s| s.get("model") == Some(model.as_str()));
                Record {
                    record: of(it(), "record", 1.0),
                    kho: of(it(), "kho", 1.0),
                    config_stored: of(it(), "config_stored", 1.0),
                    config: of(it(), "config", 1.0),
                    saved_state: of(it(), "saved_state", 1.0),
                    model,
                }
            })
            .collect();
        let mut pci_tables: Vec<PciTable> = figure("pci-table")
            .filter_map(|s| {
                Some(PciTable {
                    kept: s.num("kept")? as u32,
                    entries: s.num("entries")? as u32,
                    bytes: s.num("bytes")? as u32,
                    kho: s.num("kho")? as u32,
                })
            })
            .collect();
        pci_tables.sort_by_key(|t| (t.kept, t.entries, t.kho));
        pci_tables.dedup_by_key(|t| (t.kept, t.entries, t.bytes, t.kho));

        let sizes = figure("size")
            .filter_map(|s| {
                Some(Size {
                    config: s.get("config")?.into(),
                    object: s.get("object")?.into(),
                    text: s.num("text")? as u64,
                    data: s.num("data")? as u64,
                    bss: s.num("bss")? as u64,
                })
            })
            .collect();

        let test_times = ["cold", "warm"]
            .into_iter()
            .map(|kind| {
                let it = || figure("make-test").filter(move |s| s.get("kind") == Some(kind));
                TestTime {
                    kind: kind.into(),
                    seconds: of(it(), "seconds", 1.0),
                    latest: it().next_back().map(|s| {
                        format!(
                            "{} passed, {} failed, {} skipped at {}",
                            s.get("passed").unwrap_or("?"),
                            s.get("failed").unwrap_or("?"),
                            s.get("skipped").unwrap_or("?"),
                            s.get("commit").unwrap_or("?")
                        )
                    }),
                }
            })
            .collect();

        Figures {
            ready,
            ratios,
            scale,
            table,
            records,
            pci_tables,
            sizes,
            test_times,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_device_costs_share_each_update_total() {
        let mut raw = Raw::default();
        raw.add(
            "==> report of scale-2
bench preserve stage=1 devices=2 us=9000
bench preserve stage=1 devices=2 us=1000
bench preserve stage=3 devices=2 us=3000
bench preserve stage=3 devices=2 us=1000
",
        );
        let s = &Figures::of(&raw).scale[0];
        // Updates: (9 + 1) / 2 = 5 ms and (3 + 1) / 2 = 2 ms per device.
        assert_eq!(s.preserve, Stat::of([5.0, 2.0]));
        assert_eq!(s.preserve_call.unwrap().median, 2.0);
    }

    #[test]
    fn kept_against_cold_and_scaling() {
        let mut raw = Raw::default();
        raw.add(
            "==> report of ready
bench ready model=igb path=kept devices=4 bar_us=10000
bench ready model=igb path=kept devices=4 bar_us=30000
bench ready model=igb path=cold devices=4 bar_us=200000
bench ready model=nvme path=kept devices=4 bar_us=1000 dma_us=2000
bench ready model=nvme path=cold devices=4 bar_us=100000 dma_us=100000
bench ready model=nvme path=cold-noreset devices=4 bar_us=1000 dma_us=4000
bench memory model=igb record=4218 kho=8192 config=4096 saved_state=94
bench pci-table kept=1 entries=2 bytes=16 kho=8192
bench pci-table kept=1 entries=2 bytes=16 kho=8192
==> report of scale-1
bench preserve stage=1 model=igb devices=1 us=500
bench scale stage=2 model=igb devices=1 path=kept bar_us=15000
timeline: before any kexec  bench: update keeping 1 of 1 devices
timeline: +0.00 s  reboot(LINUX_REBOOT_CMD_KEXEC)
timeline: +0.20 s  devices frozen and shut down; the old kernel jumps to the new one
timeline: +3.00 s  bench: last of 1 devices usable
timeline: +3.10 s  bench: update keeping 0 of 1 devices
timeline: +0.00 s  reboot(LINUX_REBOOT_CMD_KEXEC)
timeline: +0.10 s  devices frozen and shut down; the old kernel jumps to the new one
timeline: +3.50 s  bench: last of 1 devices usable
bench size config=off object=vmlinux text=10 data=20 bss=30
bench make-test kind=warm seconds=60 passed=5 failed=0 skipped=1 commit=abc
",
        );
        let f = Figures::of(&raw);
        assert_eq!(f.ready.len(), 5);
        let igb = &f.ratios[0];
        assert_eq!(igb.model, "igb");
        assert_eq!(igb.bar, Some(0.1));
        assert_eq!(f.ratios[1].dma, Some(0.02));
        assert_eq!(f.ratios[1].dma_no_reset, Some(0.5));
        assert_eq!(igb.bar_no_reset, None);
        assert_eq!(f.ready[0].bar.unwrap().median, 20.0);
        assert_eq!(f.scale.len(), 1);
        let s = &f.scale[0];
        assert_eq!(s.preserve.unwrap().median, 0.5);
        assert_eq!(s.kept_call.unwrap().median, 15.0);
        assert_eq!(s.jump_kept.unwrap().median, 0.2);
        assert_eq!(s.usable_none.unwrap().median, 3.5);
        assert_eq!(f.pci_tables.len(), 1);
        assert_eq!(f.records[0].kho.unwrap().median, 8192.0);
        assert_eq!(f.sizes[0].data, 20);
        assert_eq!(f.test_times[1].seconds.unwrap().median, 60.0);
        assert_eq!(f.test_times[0].seconds, None);
    }
}
