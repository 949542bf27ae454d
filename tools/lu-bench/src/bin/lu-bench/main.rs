// SPDX-License-Identifier: GPL-2.0
//! What `make bench` runs in the guest: a VMM-like program that keeps some vfio devices across
//! Live Updates and opens identical ones cold, and prints what each took.
//!
//! Every stage of a benchmark scenario runs it once: it first measures what the update into
//! this kernel gave (the devices the previous stage kept, retrieved; the others, opened cold,
//! which vfio-pci resets), then sets the devices up again and keeps some for the next update.
//!
//! ```text
//! lu-bench ready  --after none|update --next keep|none
//! lu-bench scale  --after none|kept|cold --next keep|drop|none
//! ```
//!
//! `ready` (P1): of each model's devices, the first third is kept, the second opened cold (with
//! vfio-pci's reset), the last opened cold with resets turned off (the floor: opening and
//! binding without a reset), in the same boot. `scale` (P2): all devices are kept (`keep`) or
//! none (`drop`: the devices stay open through the kexec, as with a VMM that does not use Live
//! Update).
//!
//! Figures are `# report: bench FIGURE key=value...` lines, which the runner gathers into the
//! scenario's report; `lu-mark: bench: ...` lines in the kernel log put the update's steps on
//! the host's timeline. Checks (a kept device kept its state, a cold one was reset) fail the
//! run with a KTAP `not ok`, so no figure comes from a device that did something else.

mod devices;
mod nvme;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use devices::{Found, Path, Ready, Usable};
use liveupdate::{LiveUpdate, Session};

type Result<T> = std::result::Result<T, String>;

const SESSION: &str = "lu-bench";

/// The stage of the scenario this boot is (the runner's `lu.stage=`), which tells the updates
/// apart in the figures.
fn stage() -> String {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("lu.stage="))
        .unwrap_or("0")
        .to_string()
}

/// A figure, as the report tool reads it.
fn figure(name: &str, fields: &[(&str, String)]) {
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "# report: bench {name} stage={} {}",
        stage(),
        fields.join(" ")
    );
}

fn micros(d: Duration) -> String {
    d.as_micros().to_string()
}

fn ready_figure(figure_name: &str, devices: usize, usable: &Usable, path: &str, ready: &Ready) {
    let mut fields = vec![
        ("model", usable.found.model.name().to_string()),
        ("device", usable.found.address.clone()),
        ("devices", devices.to_string()),
        ("path", path.to_string()),
        ("get_us", micros(ready.get)),
        ("bind_us", micros(ready.bind)),
        ("attach_us", micros(ready.attach)),
        ("mapped_us", micros(ready.mapped)),
        ("bar_us", micros(ready.bar)),
    ];
    if let Some(dma) = ready.dma {
        fields.push(("dma_us", micros(dma)));
    }
    figure(figure_name, &fields);
}

/// The numbers in what the kernel last logged after `prefix`.
fn logged_numbers(prefix: &str) -> Option<Vec<u64>> {
    let text = guest::kmsg::after(prefix)?;
    Some(
        text.split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

/// P3: the KHO memory the kernel says it preserved for each kept device, and for the PCI
/// core's table of them.
fn memory_figures(kept: &[Usable]) {
    for usable in kept {
        let prefix = format!("{}: preserved for Live Update: ", usable.found.address);
        // "N-byte record in M bytes of KHO memory (config space S of C bytes, PCI state P)"
        if let Some([record, kho, stored, config, saved, ..]) = logged_numbers(&prefix).as_deref() {
            figure(
                "memory",
                &[
                    ("model", usable.found.model.name().to_string()),
                    ("device", usable.found.address.clone()),
                    ("record", record.to_string()),
                    ("kho", kho.to_string()),
                    ("config_stored", stored.to_string()),
                    ("config", config.to_string()),
                    ("saved_state", saved.to_string()),
                ],
            );
        }
    }
}

/// P3: the PCI core's table as this kernel received it.
fn pci_table_figure(kept: usize) {
    // "N preserved devices and bridges handed over: E bytes of entries in M bytes of KHO memory"
    const LINE: &str = " preserved devices and bridges handed over";
    let entries = guest::kmsg::last_with(LINE).and_then(|m| {
        let count = &m[..m.find(LINE)?];
        count
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u64>()
            .ok()
    });
    if let (Some(entries), Some([bytes, kho, ..])) = (entries, logged_numbers(LINE).as_deref()) {
        figure(
            "pci-table",
            &[
                ("kept", kept.to_string()),
                ("entries", entries.to_string()),
                ("bytes", bytes.to_string()),
                ("kho", kho.to_string()),
            ],
        );
    }
}

/// KTAP results, printed at the end with their plan (the runner reads a plan first).
struct Tap {
    results: Vec<String>,
    failed: usize,
}

impl Tap {
    fn new() -> Self {
        Self {
            results: Vec::new(),
            failed: 0,
        }
    }

    fn check<T>(&mut self, what: &str, result: Result<T>) -> Option<T> {
        let n = self.results.len() + 1;
        match result {
            Ok(v) => {
                self.results.push(format!("ok {n} {what}"));
                Some(v)
            }
            Err(e) => {
                self.results.push(format!("not ok {n} {what}\n# {e}"));
                self.failed += 1;
                None
            }
        }
    }

    fn end(&self) -> ExitCode {
        println!("KTAP version 1\n1..{}", self.results.len());
        for line in &self.results {
            println!("{line}");
        }
        let _ = std::io::stdout().flush();
        if self.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Ends the results and keeps `keep` (the session, the devices) open through the kexec.
fn hold_until_kexec(tap: &Tap, keep: Vec<Box<dyn std::any::Any>>) -> ExitCode {
    let code = tap.end();
    guest::hold_until_kexec(keep);
    code
}

/// Opens every device in `found` cold (`path`), timed; figures under `figure_name` unless
/// `None`.
fn open_all_cold(
    tap: &mut Tap,
    found: &[Found],
    path: Path,
    figure_name: Option<&str>,
) -> Vec<Usable> {
    let mut out = Vec::new();
    for f in found {
        let what = format!(
            "{} {}: open {}, bind, first access",
            f.model.name(),
            f.address,
            path.name()
        );
        let Some((usable, ready)) = tap.check(&what, devices::open_cold(f, path)) else {
            continue;
        };
        if let Some(name) = figure_name {
            ready_figure(name, found.len(), &usable, path.name(), &ready);
        }
        out.push(usable);
    }
    out
}

fn check_states(tap: &mut Tap, usable: &[Usable], kept: bool) {
    for u in usable {
        let what = if kept { "kept its state" } else { "was reset" };
        tap.check(
            &format!("{} {} {what}", u.found.model.name(), u.found.address),
            u.check_state(kept),
        );
    }
}

/// Retrieves every device in `found` from the session the previous kernel handed over, timed.
fn retrieve_all(
    tap: &mut Tap,
    found: &[Found],
    figure_name: &str,
) -> Option<(Session, Vec<Usable>)> {
    let session = tap.check(
        "retrieve the session",
        LiveUpdate::open()
            .and_then(|luo| luo.retrieve_session(SESSION))
            .map_err(|e| e.to_string()),
    )?;
    let mut out = Vec::new();
    for f in found {
        let what = format!(
            "{} {}: retrieve, bind, first access",
            f.model.name(),
            f.address
        );
        if let Some((usable, ready)) = tap.check(&what, devices::retrieve_kept(&session, f)) {
            ready_figure(figure_name, found.len(), &usable, Path::Kept.name(), &ready);
            out.push(usable);
        }
    }
    Some((session, out))
}

/// Sets every device up and preserves `kept` of them in a new session, timing each
/// PRESERVE_FD; the session, to hold until the kexec.
fn keep(tap: &mut Tap, kept: &[Usable], others: &[Usable], total: usize) -> Option<Session> {
    for u in kept.iter().chain(others) {
        tap.check(
            &format!("{} {}: set up", u.found.model.name(), u.found.address),
            u.set_up(),
        );
    }
    let session = tap.check(
        "create a session",
        LiveUpdate::open()
            .and_then(|luo| luo.create_session(SESSION))
            .map_err(|e| e.to_string()),
    )?;
    for u in kept {
        let what = format!("{} {}: preserve", u.found.model.name(), u.found.address);
        if let Some(took) = tap.check(&what, devices::preserve(&session, u)) {
            figure(
                "preserve",
                &[
                    ("model", u.found.model.name().to_string()),
                    ("device", u.found.address.clone()),
                    ("devices", total.to_string()),
                    ("us", micros(took)),
                ],
            );
        }
    }
    memory_figures(kept);
    Some(session)
}

fn finish(tap: &mut Tap, session: &Session) {
    tap.check(
        "finish the session",
        session.finish().map_err(|e| e.to_string()),
    );
}

/// P1: of each model's devices, the first third kept, the second opened cold, the last opened
/// cold with resets turned off, side by side.
fn ready(after_update: bool, next_keep: bool) -> ExitCode {
    let mut tap = Tap::new();
    let Some(found) = tap.check("find the devices", devices::vfio_devices()) else {
        return tap.end();
    };
    let third = |f: &Found| {
        let same: Vec<_> = found.iter().filter(|g| g.model == f.model).collect();
        let at = same.iter().position(|g| g.index == f.index).unwrap_or(0);
        at * 3 / same.len().max(1)
    };
    let role = |n| {
        found
            .iter()
            .filter(|f| third(f) == n)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (to_keep, cold, no_reset) = (role(0), role(1), role(2));
    for f in &no_reset {
        tap.check(
            &format!("{} {}: turn its resets off", f.model.name(), f.address),
            devices::turn_off_resets(f),
        );
    }
    let figures = after_update.then_some("ready");
    let (session, kept) = if after_update {
        let Some((session, kept)) = retrieve_all(&mut tap, &to_keep, "ready") else {
            return tap.end();
        };
        pci_table_figure(kept.len());
        (Some(session), kept)
    } else {
        (None, open_all_cold(&mut tap, &to_keep, Path::Cold, None))
    };
    let mut others = open_all_cold(&mut tap, &cold, Path::Cold, figures);
    if after_update {
        check_states(&mut tap, &kept, true);
        check_states(&mut tap, &others, false);
    }
    others.extend(open_all_cold(
        &mut tap,
        &no_reset,
        Path::ColdNoReset,
        figures,
    ));
    if let Some(session) = &session {
        finish(&mut tap, session);
    }
    if !next_keep {
        return tap.end();
    }
    let Some(session) = keep(&mut tap, &kept, &others, found.len()) else {
        return tap.end();
    };
    hold_until_kexec(
        &tap,
        vec![Box::new(session), Box::new(kept), Box::new(others)],
    )
}

/// P2: all devices kept, or none, and the time each takes to be usable after the update.
fn scale(after: &str, next: &str) -> ExitCode {
    let mut tap = Tap::new();
    let Some(found) = tap.check("find the devices", devices::vfio_devices()) else {
        return tap.end();
    };
    let n = found.len();
    let usable = match after {
        "kept" => {
            let Some((session, usable)) = retrieve_all(&mut tap, &found, "scale") else {
                return tap.end();
            };
            guest::kmsg::mark(&format!("bench: last of {n} devices usable"));
            pci_table_figure(usable.len());
            check_states(&mut tap, &usable, true);
            finish(&mut tap, &session);
            usable
        }
        "cold" => {
            let usable = open_all_cold(&mut tap, &found, Path::Cold, Some("scale"));
            guest::kmsg::mark(&format!("bench: last of {n} devices usable"));
            check_states(&mut tap, &usable, false);
            usable
        }
        _ => open_all_cold(&mut tap, &found, Path::Cold, None),
    };
    match next {
        "keep" => {
            let Some(session) = keep(&mut tap, &usable, &[], n) else {
                return tap.end();
            };
            guest::kmsg::mark(&format!("bench: update keeping {n} of {n} devices"));
            hold_until_kexec(&tap, vec![Box::new(session), Box::new(usable)])
        }
        "drop" => {
            for u in &usable {
                tap.check(
                    &format!("{} {}: set up", u.found.model.name(), u.found.address),
                    u.set_up(),
                );
            }
            guest::kmsg::mark(&format!("bench: update keeping 0 of {n} devices"));
            hold_until_kexec(&tap, vec![Box::new(usable)])
        }
        _ => tap.end(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    match (
        args.first().map(String::as_str),
        arg("--after"),
        arg("--next"),
    ) {
        (Some("ready"), Some(after @ ("none" | "update")), Some(next @ ("keep" | "none"))) => {
            ready(after == "update", next == "keep")
        }
        (
            Some("scale"),
            Some(after @ ("none" | "kept" | "cold")),
            Some(next @ ("keep" | "drop" | "none")),
        ) => scale(after, next),
        _ => {
            eprintln!(
                "usage: lu-bench ready --after none|update --next keep|none\n       \
                 lu-bench scale --after none|kept|cold --next keep|drop|none"
            );
            ExitCode::from(2)
        }
    }
}
