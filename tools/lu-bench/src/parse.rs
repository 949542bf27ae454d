// SPDX-License-Identifier: GPL-2.0
//! What the benchmark runs printed, as samples and updates.
//!
//! - `bench FIGURE key=value...`: a sample, from the guest (through the runner's report of a
//!   scenario, `==> report of NAME`) or from `scripts/bench.sh` (sizes, test times).
//! - `...: table bench: key=value...`: a sample of the kernel's KUnit benchmark of the PCI
//!   table, from a serial log.
//! - `timeline: +S s  STEP`: a step of the update the runner timed on the host's clock, from
//!   the guest's `reboot(LINUX_REBOOT_CMD_KEXEC)`; `bench: update keeping K of N devices`
//!   before it says what the update keeps, `bench: last of N devices usable` after it ends it.

use serde::Serialize;

/// One `bench` line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// The scenario whose report had it; empty outside one.
    pub scenario: String,
    pub figure: String,
    pub fields: Vec<(String, String)>,
}

impl Sample {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }
}

/// One Live Update, timed on the host's clock from the guest's reboot(KEXEC).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Update {
    pub scenario: String,
    /// Devices kept, of how many, as the guest said before it.
    pub kept: Option<(u32, u32)>,
    /// Seconds to the old kernel's jump into the new one (freeze and shutdown).
    pub jump: Option<f64>,
    /// Seconds to the last device usable in the new kernel.
    pub usable: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Raw {
    pub samples: Vec<Sample>,
    pub updates: Vec<Update>,
}

const REBOOT: &str = "reboot(LINUX_REBOOT_CMD_KEXEC)";
const JUMP: &str = "devices frozen and shut down";
const KEEPING: &str = "bench: update keeping ";
const USABLE: &str = "bench: last of ";
const TABLE: &str = ": table bench: ";

fn fields(text: &str) -> Vec<(String, String)> {
    text.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// "+S s  STEP" → (S, STEP).
fn timed_step(text: &str) -> Option<(f64, &str)> {
    let (secs, step) = text.strip_prefix('+')?.split_once(" s ")?;
    Some((secs.parse().ok()?, step.trim()))
}

impl Raw {
    /// Adds everything `text` holds.
    pub fn add(&mut self, text: &str) {
        let mut scenario = String::new();
        let mut keeping = None;
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("==> report of ") {
                scenario = name.trim().to_string();
                keeping = None;
            } else if let Some(rest) = line.strip_prefix("bench ") {
                let (figure, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                self.samples.push(Sample {
                    scenario: scenario.clone(),
                    figure: figure.to_string(),
                    fields: fields(rest),
                });
            } else if let Some(at) = line.find(TABLE) {
                self.samples.push(Sample {
                    scenario: scenario.clone(),
                    figure: "table".into(),
                    fields: fields(&line[at + TABLE.len()..]),
                });
            } else if let Some(text) = line.strip_prefix("timeline: ") {
                let (secs, step) = match timed_step(text) {
                    Some((secs, step)) => (Some(secs), step),
                    None => (None, text.trim_start_matches("before any kexec").trim()),
                };
                if let Some(kept) = step.strip_prefix(KEEPING) {
                    let mut numbers = kept.split(' ').filter_map(|w| w.parse().ok());
                    keeping = numbers.next().zip(numbers.next());
                } else if step == REBOOT {
                    self.updates.push(Update {
                        scenario: scenario.clone(),
                        kept: keeping.take(),
                        ..Update::default()
                    });
                } else if let (Some(secs), Some(update)) = (secs, self.updates.last_mut()) {
                    if update.scenario != scenario {
                        continue;
                    }
                    if step.starts_with(JUMP) {
                        update.jump = Some(secs);
                    } else if step.starts_with(USABLE) && step.ends_with(" devices usable") {
                        update.usable = Some(secs);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
==> scale-8: benchmark
    scale-8: stage 1 done
==> report of scale-8
    bench preserve model=igb device=0000:01:00.0 devices=8 us=631
    timeline: before any kexec  bench: update keeping 8 of 8 devices
    timeline: +0.00 s  reboot(LINUX_REBOOT_CMD_KEXEC)
    timeline: +0.11 s  devices frozen and shut down; the old kernel jumps to the new one
    timeline: +2.06 s  the new kernel starts
    bench scale model=igb device=0000:01:00.0 devices=8 path=kept bar_us=15000
    timeline: +4.50 s  bench: last of 8 devices usable
    timeline: +4.60 s  bench: update keeping 0 of 8 devices
    timeline: +0.00 s  reboot(LINUX_REBOOT_CMD_KEXEC)
    timeline: +0.09 s  devices frozen and shut down; the old kernel jumps to the new one
    timeline: +6.00 s  bench: last of 8 devices usable
[    1.5] pci_liveupdate: table bench: entries=64 run=1 insert_ns=100 lookup_ns=20 remove_ns=90
";

    #[test]
    fn samples_and_updates() {
        let mut raw = Raw::default();
        raw.add(RUN);
        assert_eq!(raw.samples.len(), 3);
        let s = &raw.samples[1];
        assert_eq!(
            (s.scenario.as_str(), s.figure.as_str()),
            ("scale-8", "scale")
        );
        assert_eq!(s.get("path"), Some("kept"));
        assert_eq!(s.num("bar_us"), Some(15000.0));
        assert_eq!(raw.samples[2].figure, "table");
        assert_eq!(raw.samples[2].num("lookup_ns"), Some(20.0));
        assert_eq!(
            raw.updates,
            [
                Update {
                    scenario: "scale-8".into(),
                    kept: Some((8, 8)),
                    jump: Some(0.11),
                    usable: Some(4.5),
                },
                Update {
                    scenario: "scale-8".into(),
                    kept: Some((0, 8)),
                    jump: Some(0.09),
                    usable: Some(6.0),
                },
            ]
        );
    }

    #[test]
    fn an_update_without_its_steps_has_no_times() {
        let mut raw = Raw::default();
        raw.add("==> report of a\ntimeline: +0.00 s  reboot(LINUX_REBOOT_CMD_KEXEC)\n==> report of b\ntimeline: +3.00 s  bench: last of 1 devices usable\n");
        assert_eq!(raw.updates.len(), 1);
        assert_eq!((raw.updates[0].jump, raw.updates[0].usable), (None, None));
    }
}
