// SPDX-License-Identifier: GPL-2.0
//! A scenario's report: what its programs say about what they did, and a timeline of each
//! Live Update on the host's clock.
//!
//! A program's output line `# report: TEXT` adds TEXT. The timeline starts at each kexec the
//! guest asks for (`reboot(LINUX_REBOOT_CMD_KEXEC)`): the guest's clocks start again at each
//! kexec, the host's does not. It has the kernel log lines that mark a step of the update
//! (`KERNEL_STEPS`) and the marks programs write (`lu-mark: NAME`, through /dev/kmsg), each
//! with the time it reached the host. The caller passes the time each line arrived, which keeps
//! this testable. A scenario whose programs report nothing has no report.

use std::time::Instant;

use crate::protocol::Event;

const REPORT: &str = "# report: ";
const MARK: &str = "lu-mark: ";

/// Kernel log lines that mark a step of a Live Update, and what the timeline calls the step.
/// (What the kernel logs between the freeze and the jump may not reach the console before the
/// jump, so the freeze has no line of its own.)
const KERNEL_STEPS: [(&str, &str); 3] = [
    (
        "kexec_core: Starting new kernel",
        "devices frozen and shut down; the old kernel jumps to the new one",
    ),
    ("Linux version ", "the new kernel starts"),
    (
        "luo: Retrieved live update data",
        "LUO finds the sessions handed over",
    ),
];

#[derive(Default)]
pub struct Report {
    kexec_at: Option<Instant>,
    lines: Vec<String>,
    /// Whether a program reported anything.
    reported: bool,
}

impl Report {
    /// Takes one line of the guest's event port that arrived at `now`.
    pub fn guest(&mut self, line: &str, now: Instant) {
        match Event::parse(line) {
            Some(Event::Kexec { .. }) => {
                self.kexec_at = Some(now);
                self.step("reboot(LINUX_REBOOT_CMD_KEXEC)", now);
            }
            Some(Event::Out { line, .. }) => {
                if let Some(text) = line.strip_prefix(REPORT) {
                    self.lines.push(text.to_string());
                    self.reported = true;
                }
            }
            _ => {}
        }
    }

    /// Takes one line of the kernel's console that arrived at `now`.
    pub fn console(&mut self, line: &str, now: Instant) {
        // Past the timestamp, if the kernel prints one.
        let text = line.rsplit_once("] ").map_or(line, |(_, t)| t).trim();
        if let Some(at) = text.find(MARK) {
            self.step(text[at + MARK.len()..].trim(), now);
            return;
        }
        for (pattern, name) in KERNEL_STEPS {
            if text.contains(pattern) {
                self.step(name, now);
            }
        }
    }

    /// A step of the timeline; before any kexec only the marks of programs count.
    fn step(&mut self, name: &str, now: Instant) {
        match self.kexec_at {
            Some(kexec) => self.lines.push(format!(
                "timeline: +{:.2} s  {name}",
                now.duration_since(kexec).as_secs_f64()
            )),
            None if !KERNEL_STEPS.iter().any(|(_, n)| *n == name) => self
                .lines
                .push(format!("timeline: before any kexec  {name}")),
            None => {}
        }
    }

    /// The report so far; empty while no program reported anything.
    pub fn lines(&self) -> &[String] {
        if self.reported {
            &self.lines
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn report_lines_and_a_timeline_from_the_kexec() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut r = Report::default();
        r.guest("<lu> out 1 ok 1 something", t0);
        r.guest("<lu> out 1 # report: device: 0000:01:00.0", t0);
        r.console("Linux version 7.3.4 (first boot)", t0);
        r.console("[    1.0] lu-mark: too-early", t0);
        r.guest("<lu> kexec 2", ms(100));
        r.console("kexec_core: Starting new kernel", ms(200));
        r.console("Linux version 7.3.4 (root@vm)", ms(210));
        r.console("[    0.5] lu-mark: device usable", ms(2600));
        r.console("# report: not from a program", t0);
        r.guest("lu-mark: not from the kernel", t0);
        assert_eq!(
            r.lines(),
            [
                "device: 0000:01:00.0",
                "timeline: before any kexec  too-early",
                "timeline: +0.00 s  reboot(LINUX_REBOOT_CMD_KEXEC)",
                "timeline: +0.10 s  devices frozen and shut down; the old kernel jumps to the new one",
                "timeline: +0.11 s  the new kernel starts",
                "timeline: +2.50 s  device usable",
            ]
        );
    }

    #[test]
    fn no_report_when_no_program_reports() {
        let t0 = Instant::now();
        let mut r = Report::default();
        r.guest("<lu> kexec 2", t0);
        r.console("kexec_core: Starting new kernel", t0);
        assert!(r.lines().is_empty());
    }
}
