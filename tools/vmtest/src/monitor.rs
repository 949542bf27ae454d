// SPDX-License-Identifier: GPL-2.0
//! Follows one QEMU run, across every kexec, and turns it into test
//! results: the kernel's console and the guest init's event port.
//!
//! The two arrive on separate streams, so nothing here depends on how their
//! lines interleave. It knows nothing about QEMU or time: the caller feeds it
//! lines and tells it how the run ended, which keeps every verdict testable
//! on canned logs.

use crate::ktap::{self, Outcome, TestResult};
use crate::protocol::{Event, RunStatus, KSFT_SKIP};

/// Kernel messages that mean the kernel is in trouble, whatever the tests say.
const KERNEL_PROBLEMS: &[&str] = &[
    "Kernel panic - not syncing",
    "BUG:",
    "Oops:",
    "WARNING:",
    "UBSAN:",
    "KFENCE:",
    "unreferenced object",
    "kernel BUG at",
    // The hung-task detector: "INFO: task <comm>:<pid> blocked for more than <n> seconds."
    "blocked for more than",
    "rcu: INFO:",
    // An interrupt line disabled after an unhandled interrupt storm.
    "nobody cared",
];

/// The line every kernel prints first; a new one means a new boot.
const BOOT_BANNER: &str = "Linux version ";

/// How a QEMU run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// QEMU exited by itself (power off, or reboot after a panic).
    Exited,
    /// The runner killed it: no progress within the boot's time limit.
    TimedOut { secs: u64 },
}

struct Running {
    index: usize,
    command: String,
    ktap: ktap::Parser,
    /// The last lines of output, shown when the program fails.
    tail: Vec<String>,
}

pub struct Monitor {
    stages: usize,
    boot: usize,
    stage: usize,
    kernel_ktap: ktap::Parser,
    /// `expected_kunit[b]`: the KUnit suites boot `b + 1` must report.
    expected_kunit: Vec<Vec<String>>,
    /// Results that may skip; any other skip fails.
    expected_skips: Vec<String>,
    /// The project's own warnings and errors, and those of them expected.
    watched_messages: Vec<String>,
    expected_messages: Vec<String>,
    running: Option<Running>,
    results: Vec<TestResult>,
    done: bool,
}

const TAIL_LINES: usize = 20;

impl Monitor {
    /// A monitor for a guest plan of `stages` stages.
    pub fn new(stages: usize) -> Self {
        Self {
            stages,
            boot: 0,
            stage: 0,
            kernel_ktap: ktap::Parser::new(),
            expected_kunit: Vec::new(),
            expected_skips: Vec::new(),
            watched_messages: Vec::new(),
            expected_messages: Vec::new(),
            running: None,
            results: Vec::new(),
            done: false,
        }
    }

    /// Boot `boot` (1-based) must report results of each of `suites`.
    pub fn expect_kunit(&mut self, boot: usize, suites: &[String]) {
        if self.expected_kunit.len() < boot {
            self.expected_kunit.resize(boot, Vec::new());
        }
        self.expected_kunit[boot - 1] = suites.to_vec();
    }

    /// The results named in `names` may skip; a skip of any other fails, as a
    /// test that skips where it should run checks nothing.
    pub fn expect_skips(&mut self, names: &[String]) {
        self.expected_skips = names.to_vec();
    }

    /// A console line holding one of `watched` (the project's warnings and
    /// errors) fails, unless it holds one of `expected` too.
    pub fn watch_messages(&mut self, watched: &[String], expected: &[String]) {
        self.watched_messages = watched.to_vec();
        self.expected_messages = expected.to_vec();
    }

    /// Boots seen so far (the first boot and one per kexec).
    pub fn boots(&self) -> usize {
        self.boot
    }

    /// Takes one line of the kernel's console; returns progress messages
    /// for the user.
    pub fn console(&mut self, line: &str) -> Vec<String> {
        let mut progress = Vec::new();
        if line.contains(BOOT_BANNER) {
            self.collect_kunit(&mut progress);
            self.boot += 1;
            progress.push(format!("boot {}: kernel started", self.boot));
        }
        if let Some(problem) = KERNEL_PROBLEMS.iter().find(|p| line.contains(*p)) {
            let at = line.find(problem).unwrap_or(0);
            self.fail(format!("boot {}: kernel", self.boot), line[at..].trim());
            progress.push(format!(
                "boot {}: kernel reported: {}",
                self.boot,
                line[at..].trim()
            ));
        }
        if self
            .watched_messages
            .iter()
            .any(|m| line.contains(m.as_str()))
            && !self
                .expected_messages
                .iter()
                .any(|m| line.contains(m.as_str()))
        {
            self.fail(
                format!("boot {}: unexpected message", self.boot),
                line.trim(),
            );
            progress.push(format!(
                "boot {}: unexpected message: {}",
                self.boot,
                line.trim()
            ));
        }
        self.kernel_ktap.line(line);
        progress
    }

    /// Takes one line of the guest's event port; returns progress messages
    /// for the user.
    pub fn guest(&mut self, line: &str) -> Vec<String> {
        let mut progress = Vec::new();
        match Event::parse(line) {
            Some(event) => self.event(event, &mut progress),
            None => {
                self.fail(
                    format!("stage {}: init", self.stage),
                    &format!("unreadable event: {line:?}"),
                );
                progress.push(format!("stage {}: unreadable event {line:?}", self.stage));
            }
        }
        progress
    }

    fn event(&mut self, event: Event, progress: &mut Vec<String>) {
        match event {
            Event::Stage { n, total } => {
                let name = format!("stage {n}: reached userspace");
                if n != self.stage + 1 || total != self.stages {
                    self.fail(
                        name,
                        &format!("expected stage {} of {}", self.stage + 1, self.stages),
                    );
                } else {
                    self.pass(name);
                }
                self.stage = n;
                progress.push(format!("stage {n}/{total}: init is up"));
            }
            Event::Run { index, command } => {
                progress.push(format!("stage {}: running {command}", self.stage));
                self.running = Some(Running {
                    index,
                    command,
                    ktap: ktap::Parser::new(),
                    tail: Vec::new(),
                });
            }
            Event::Out { index, line } => {
                if let Some(run) = self.running.as_mut().filter(|r| r.index == index) {
                    run.ktap.line(&line);
                    if run.tail.len() == TAIL_LINES {
                        run.tail.remove(0);
                    }
                    run.tail.push(line);
                }
            }
            Event::Exit { index, status } => {
                if let Some(run) = self.running.take().filter(|r| r.index == index) {
                    let verdict = self.close_run(run, status);
                    progress.push(verdict);
                }
            }
            Event::Kexec { to } => {
                progress.push(format!("stage {}: kexec into stage {to}", self.stage));
            }
            Event::Done => {
                self.done = true;
                progress.push("guest finished all stages".into());
            }
            Event::Error(msg) => {
                self.fail(format!("stage {}: init", self.stage), &msg);
                progress.push(format!("stage {}: init failed: {msg}", self.stage));
            }
        }
    }

    fn close_run(&mut self, run: Running, status: RunStatus) -> String {
        let prefix = format!("stage {}: {}", self.stage, run.command);
        let leaves = run.ktap.finish();
        let leaf_failed = leaves.iter().any(|r| r.outcome == Outcome::Fail);
        for leaf in &leaves {
            self.results.push(TestResult {
                name: format!("{prefix}: {}", leaf.name),
                ..leaf.clone()
            });
        }
        let outcome = match status {
            RunStatus::Code(0) => Outcome::Pass,
            RunStatus::Code(KSFT_SKIP) => Outcome::Skip,
            _ => Outcome::Fail,
        };
        // The exit status is a result of its own unless the program's KTAP
        // results already say it all.
        if leaves.is_empty() || (outcome == Outcome::Fail && !leaf_failed) {
            let detail = match outcome {
                Outcome::Pass => String::new(),
                _ => format!("exit {status}; last output:\n{}", run.tail.join("\n")),
            };
            self.results.push(TestResult {
                name: prefix.clone(),
                outcome,
                detail,
            });
        }
        let word = match outcome {
            Outcome::Pass => "passed",
            Outcome::Skip => "skipped",
            Outcome::Fail => "FAILED",
        };
        format!("stage {}: {} {word} ({status})", self.stage, run.command)
    }

    fn collect_kunit(&mut self, progress: &mut Vec<String>) {
        let kunit = std::mem::take(&mut self.kernel_ktap).finish();
        let expected = match self.boot {
            0 => Vec::new(),
            b => self.expected_kunit.get(b - 1).cloned().unwrap_or_default(),
        };
        for suite in expected {
            let prefix = format!("{suite}.");
            if !kunit
                .iter()
                .any(|r| r.name == suite || r.name.starts_with(&prefix))
            {
                self.fail(
                    format!("boot {}: kunit: {suite}", self.boot),
                    "expected suite reported no result",
                );
            }
        }
        if kunit.is_empty() {
            return;
        }
        let failed = kunit.iter().filter(|r| r.outcome == Outcome::Fail).count();
        progress.push(format!(
            "boot {}: KUnit {} passed, {failed} failed",
            self.boot,
            kunit.iter().filter(|r| r.outcome == Outcome::Pass).count()
        ));
        for r in kunit {
            self.results.push(TestResult {
                name: format!("boot {}: kunit: {}", self.boot, r.name),
                ..r
            });
        }
    }

    fn pass(&mut self, name: String) {
        self.results.push(TestResult {
            name,
            outcome: Outcome::Pass,
            detail: String::new(),
        });
    }

    fn fail(&mut self, name: String, detail: &str) {
        self.results.push(TestResult {
            name,
            outcome: Outcome::Fail,
            detail: detail.to_string(),
        });
    }

    /// Ends the run and returns every result.
    pub fn finish(mut self, end: End) -> Vec<TestResult> {
        let mut ignored = Vec::new();
        self.collect_kunit(&mut ignored);
        if let Some(run) = self.running.take() {
            let name = format!("stage {}: {}", self.stage, run.command);
            self.fail(
                name,
                &format!("never finished; last output:\n{}", run.tail.join("\n")),
            );
        }
        if let End::TimedOut { secs } = end {
            self.fail(
                format!("boot {}", self.boot.max(1)),
                &format!("no progress for {secs} s: timed out"),
            );
        }
        for n in self.stage + 1..=self.stages {
            self.fail(format!("stage {n}: reached userspace"), "never started");
        }
        if self.done {
            self.pass("guest: completed every stage".into());
        } else {
            self.fail(
                "guest: completed every stage".into(),
                "the guest stopped before the end",
            );
        }
        for r in &mut self.results {
            if r.outcome == Outcome::Skip && !self.expected_skips.contains(&r.name) {
                r.outcome = Outcome::Fail;
                r.detail = format!("skipped where the scenario expects it to run: {}", r.detail);
            }
        }
        self.results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PREFIX;

    /// Feeds a canned log: `<lu> ` lines to the event port, the others to
    /// the console.
    fn run(stages: usize, log: &str, end: End) -> Vec<TestResult> {
        let mut m = Monitor::new(stages);
        feed(&mut m, log);
        m.finish(end)
    }

    /// Gives `m` the lines of `log`: events to the event port, the rest to the console.
    fn feed(m: &mut Monitor, log: &str) {
        for line in log.lines() {
            if line.starts_with(PREFIX) {
                m.guest(line);
            } else {
                m.console(line);
            }
        }
    }

    fn failures(results: &[TestResult]) -> Vec<&str> {
        results
            .iter()
            .filter(|r| r.outcome == Outcome::Fail)
            .map(|r| r.name.as_str())
            .collect()
    }

    const GOOD_TWO_STAGES: &str = "Linux version 7.3.4\n    ok 1 a\nok 1 s\n\
        <lu> stage 1 of 2\n<lu> run 1 t -s 1\n<lu> out 1 hello\n<lu> exit 1 code 0\n<lu> kexec 2\n\
        Linux version 7.3.4\n<lu> stage 2 of 2\n<lu> run 1 t -s 2\n<lu> exit 1 code 0\n<lu> done\n";

    #[test]
    fn a_clean_two_stage_run_passes() {
        let results = run(2, GOOD_TWO_STAGES, End::Exited);
        assert_eq!(failures(&results), Vec::<&str>::new());
        let names: Vec<_> = results.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"boot 1: kunit: s.a"));
        assert!(names.contains(&"stage 2: t -s 2"));
        assert!(names.contains(&"guest: completed every stage"));
    }

    #[test]
    fn the_console_and_the_events_may_arrive_in_any_order() {
        let (events, console): (Vec<&str>, Vec<&str>) =
            GOOD_TWO_STAGES.lines().partition(|l| l.starts_with(PREFIX));
        let mut m = Monitor::new(2);
        for line in events {
            m.guest(line);
        }
        for line in console {
            m.console(line);
        }
        let results = m.finish(End::Exited);
        assert_eq!(failures(&results), Vec::<&str>::new());
        assert!(results.iter().any(|r| r.name == "boot 1: kunit: s.a"));
    }

    #[test]
    fn an_unreadable_event_fails() {
        let log = GOOD_TWO_STAGES.replace(
            "<lu> exit 1 code 0\n<lu> done",
            "<lu> exit 1 code 0input: x\n<lu> done",
        );
        let results = run(2, &log, End::Exited);
        assert_eq!(failures(&results), ["stage 2: init", "stage 2: t -s 2"]);
        assert!(results.iter().any(|r| r.detail.contains("0input: x")));
    }

    #[test]
    fn a_failing_stage_two_check_fails() {
        let log = GOOD_TWO_STAGES.replace(
            "<lu> run 1 t -s 2\n<lu> exit 1 code 0",
            "<lu> run 1 t -s 2\n<lu> out 1 mismatch\n<lu> exit 1 code 1",
        );
        let results = run(2, &log, End::Exited);
        assert_eq!(failures(&results), ["stage 2: t -s 2"]);
        assert!(results.iter().any(|r| r.detail.contains("mismatch")));
    }

    #[test]
    fn a_guest_panic_fails() {
        let log = "Linux version 7.3.4\n<lu> stage 1 of 2\n<lu> run 1 t -s 1\n<lu> exit 1 code 0\n<lu> kexec 2\n\
                   Linux version 7.3.4\nKernel panic - not syncing: VFS: Unable to mount root fs\n";
        let got = run(2, log, End::Exited);
        assert_eq!(
            failures(&got),
            [
                "boot 2: kernel",
                "stage 2: reached userspace",
                "guest: completed every stage"
            ]
        );
    }

    #[test]
    fn a_hung_guest_fails() {
        let log = "Linux version 7.3.4\n<lu> stage 1 of 1\n<lu> run 1 sleeper\n";
        let got = run(1, log, End::TimedOut { secs: 60 });
        assert_eq!(
            failures(&got),
            ["stage 1: sleeper", "boot 1", "guest: completed every stage"]
        );
    }

    #[test]
    fn a_kernel_warning_fails_even_when_tests_pass() {
        let log = GOOD_TWO_STAGES.replace(
            "<lu> done",
            "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2\n<lu> done",
        );
        assert_eq!(failures(&run(2, &log, End::Exited)), ["boot 2: kernel"]);
    }

    #[test]
    fn a_hung_task_or_a_bug_inside_another_line_fails() {
        for problem in [
            "INFO: task lu-init:1 blocked for more than 122 seconds.",
            "kernel BUG at drivers/pci/pci.c:12!",
        ] {
            let log = GOOD_TWO_STAGES
                .replace("<lu> done", &format!("partial output{problem}\n<lu> done"));
            let results = run(2, &log, End::Exited);
            assert_eq!(failures(&results), ["boot 2: kernel"]);
            assert!(results
                .iter()
                .any(|r| !r.detail.is_empty() && problem.ends_with(&r.detail)));
        }
    }

    #[test]
    fn an_expected_kunit_suite_that_did_not_run_fails() {
        let suites = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut m = Monitor::new(2);
        m.expect_kunit(1, &suites(&["s", "gone"]));
        m.expect_kunit(2, &suites(&["later"]));
        feed(&mut m, GOOD_TWO_STAGES);
        let results = m.finish(End::Exited);
        assert_eq!(
            failures(&results),
            ["boot 1: kunit: gone", "boot 2: kunit: later"]
        );
    }

    #[test]
    fn the_projects_own_warnings_fail_unless_expected() {
        let watched = vec!["rejecting the handed-over state:".to_string()];
        let line = "pci_liveupdate: rejecting the handed-over state: ABI version 3";
        let log = GOOD_TWO_STAGES.replace("<lu> done", &format!("{line}\n<lu> done"));
        for (expected, failed) in [(vec![], true), (vec!["ABI version".to_string()], false)] {
            let mut m = Monitor::new(2);
            m.watch_messages(&watched, &expected);
            feed(&mut m, &log);
            let got = m.finish(End::Exited);
            let want: &[&str] = if failed {
                &["boot 2: unexpected message"]
            } else {
                &[]
            };
            assert_eq!(failures(&got), want);
        }
    }

    #[test]
    fn an_interrupt_storm_fails() {
        let log = GOOD_TWO_STAGES.replace(
            "<lu> done",
            "irq 10: nobody cared (try booting with the \"irqpoll\" option)\n<lu> done",
        );
        assert_eq!(failures(&run(2, &log, End::Exited)), ["boot 2: kernel"]);
    }

    #[test]
    fn skips_and_ktap_leaves_are_counted_once() {
        let log = "<lu> stage 1 of 1\n<lu> run 1 k\n<lu> out 1 ok 1 a\n<lu> out 1 not ok 2 b\n<lu> exit 1 code 1\n\
                   <lu> run 2 s\n<lu> exit 2 code 4\n<lu> done\n";
        let got = run(1, log, End::Exited);
        assert_eq!(failures(&got), ["stage 1: k: b", "stage 1: s"]);
        let mut m = Monitor::new(1);
        m.expect_skips(&["stage 1: s".to_string()]);
        for line in log.lines() {
            m.guest(line);
        }
        let got = m.finish(End::Exited);
        assert_eq!(failures(&got), ["stage 1: k: b"]);
        assert!(got
            .iter()
            .any(|r| r.name == "stage 1: s" && r.outcome == Outcome::Skip));
    }

    #[test]
    fn a_missing_kexec_or_a_wrong_stage_fails() {
        let log = "<lu> stage 1 of 2\n<lu> kexec 2\n<lu> stage 1 of 2\n";
        let got = run(2, log, End::Exited);
        assert_eq!(
            failures(&got),
            [
                "stage 1: reached userspace",
                "stage 2: reached userspace",
                "guest: completed every stage"
            ]
        );
    }
}
