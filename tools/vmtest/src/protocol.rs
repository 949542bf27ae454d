// SPDX-License-Identifier: GPL-2.0
//! What the guest's init reports, one line per event, on a serial port of
//! its own (the guest's second one, ttyS1).
//!
//! The kernel prints its messages on the console (ttyS0) whenever it likes,
//! into the middle of a line a program is writing there; nothing else writes
//! to the event port, so every line on it is one whole event. Each starts
//! with [`PREFIX`], which tells the events apart from the kernel's messages
//! in a log holding both.

use std::fmt;

pub const PREFIX: &str = "<lu> ";

/// The event port, in the guest.
pub const PORT: &str = "/dev/ttyS1";

/// Exit status of a program the guest ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Code(i32),
    Signal(i32),
    Timeout,
}

/// kselftest's exit code for a skipped test.
pub const KSFT_SKIP: i32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Init is up in stage `n` of `total`.
    Stage {
        n: usize,
        total: usize,
    },
    /// Program number `index` of this stage starts.
    Run {
        index: usize,
        command: String,
    },
    /// One line of that program's output.
    Out {
        index: usize,
        line: String,
    },
    Exit {
        index: usize,
        status: RunStatus,
    },
    /// Init kexecs into stage `to`.
    Kexec {
        to: usize,
    },
    /// All stages ran; the guest powers off.
    Done,
    /// Init itself failed (bad plan, kexec refused, ...).
    Error(String),
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunStatus::Code(c) => write!(f, "code {c}"),
            RunStatus::Signal(s) => write!(f, "signal {s}"),
            RunStatus::Timeout => write!(f, "timeout"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        match self {
            Event::Stage { n, total } => write!(f, "stage {n} of {total}"),
            Event::Run { index, command } => write!(f, "run {index} {command}"),
            Event::Out { index, line } => write!(f, "out {index} {line}"),
            Event::Exit { index, status } => write!(f, "exit {index} {status}"),
            Event::Kexec { to } => write!(f, "kexec {to}"),
            Event::Done => write!(f, "done"),
            Event::Error(msg) => write!(f, "error {msg}"),
        }
    }
}

impl Event {
    /// Parses a line of the event port; `None` when it is no event.
    pub fn parse(line: &str) -> Option<Event> {
        let body = line.strip_prefix(PREFIX)?;
        let (word, rest) = body.split_once(' ').unwrap_or((body, ""));
        let (num, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let num = num.parse::<usize>();
        Some(match word {
            "stage" => Event::Stage {
                n: num.ok()?,
                total: tail.strip_prefix("of ")?.parse().ok()?,
            },
            "run" => Event::Run {
                index: num.ok()?,
                command: tail.to_string(),
            },
            "out" => Event::Out {
                index: num.ok()?,
                line: tail.to_string(),
            },
            "exit" => Event::Exit {
                index: num.ok()?,
                status: parse_status(tail)?,
            },
            "kexec" => Event::Kexec { to: num.ok()? },
            "done" => Event::Done,
            "error" => Event::Error(rest.to_string()),
            _ => return None,
        })
    }
}

fn parse_status(s: &str) -> Option<RunStatus> {
    let (kind, n) = s.split_once(' ').unwrap_or((s, ""));
    match kind {
        "code" => Some(RunStatus::Code(n.parse().ok()?)),
        "signal" => Some(RunStatus::Signal(n.parse().ok()?)),
        "timeout" => Some(RunStatus::Timeout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips() {
        let events = [
            Event::Stage { n: 2, total: 3 },
            Event::Run {
                index: 1,
                command: "luo_kexec_simple -s 2".into(),
            },
            Event::Out {
                index: 1,
                line: "ok 1 x # SKIP y".into(),
            },
            Event::Out {
                index: 4,
                line: String::new(),
            },
            Event::Exit {
                index: 1,
                status: RunStatus::Code(-1),
            },
            Event::Exit {
                index: 2,
                status: RunStatus::Signal(9),
            },
            Event::Exit {
                index: 3,
                status: RunStatus::Timeout,
            },
            Event::Kexec { to: 2 },
            Event::Done,
            Event::Error("kexec_file_load: Invalid argument".into()),
        ];
        for e in events {
            assert_eq!(Event::parse(&e.to_string()), Some(e.clone()), "{e}");
        }
    }

    #[test]
    fn only_whole_lines_are_events() {
        let line = "[   1.2] random: crng init done<lu> kexec 2";
        assert_eq!(Event::parse(line), None);
        assert_eq!(Event::parse("ok 1 plain kernel line"), None);
        assert_eq!(Event::parse("<lu> exit x code 1"), None);
        assert_eq!(Event::parse("<lu> bogus"), None);
    }
}
