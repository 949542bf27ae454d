// SPDX-License-Identifier: GPL-2.0
//! A scenario's report: what its programs say about what they did, and how long after a kexec
//! the guest reached the points it marks.
//!
//! A program's output line `# report: TEXT` adds TEXT. A kernel log line `lu-mark: NAME`
//! (written to /dev/kmsg by the guest) adds the time from the last kexec event to when the line
//! reached the host: the guest's clocks start again at each kexec, the host's does not. The
//! caller passes the time each line arrived, which keeps this testable.

use std::time::Instant;

use crate::protocol::Event;

const REPORT: &str = "# report: ";
const MARK: &str = "lu-mark: ";

#[derive(Default)]
pub struct Report {
    kexec_at: Option<Instant>,
    lines: Vec<String>,
}

impl Report {
    /// Takes one line of the guest's event port that arrived at `now`.
    pub fn guest(&mut self, line: &str, now: Instant) {
        match Event::parse(line) {
            Some(Event::Kexec { .. }) => self.kexec_at = Some(now),
            Some(Event::Out { line, .. }) => {
                if let Some(text) = line.strip_prefix(REPORT) {
                    self.lines.push(text.to_string());
                }
            }
            _ => {}
        }
    }

    /// Takes one line of the kernel's console that arrived at `now`.
    pub fn console(&mut self, line: &str, now: Instant) {
        if let Some(at) = line.find(MARK) {
            let name = line[at + MARK.len()..].trim();
            self.lines.push(match self.kexec_at {
                Some(kexec) => format!(
                    "{name}: {:.2} s after the kexec (host clock)",
                    now.duration_since(kexec).as_secs_f64()
                ),
                None => format!("{name}: before any kexec"),
            });
        }
    }

    /// The report so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn report_lines_and_marks_timed_from_the_kexec() {
        let t0 = Instant::now();
        let mut r = Report::default();
        r.guest("<lu> out 1 ok 1 something", t0);
        r.guest("<lu> out 1 # report: device: 0000:01:00.0", t0);
        r.console("[    1.0] lu-mark: too-early", t0);
        r.guest("<lu> kexec 2", t0 + Duration::from_millis(100));
        r.console(
            "[    0.5] lu-mark: device-usable",
            t0 + Duration::from_millis(2600),
        );
        r.console("# report: not from a program", t0);
        r.guest("lu-mark: not from the kernel", t0);
        assert_eq!(
            r.lines(),
            [
                "device: 0000:01:00.0",
                "too-early: before any kexec",
                "device-usable: 2.50 s after the kexec (host clock)",
            ]
        );
    }
}
