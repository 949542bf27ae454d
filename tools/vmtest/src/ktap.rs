// SPDX-License-Identifier: GPL-2.0
//! A KTAP parser for KUnit (nested suites) and kselftest (flat) output.
//!
//! It is fed one line at a time, because results arrive over a serial
//! console interleaved with other kernel messages, and it reports leaf
//! results: a suite's cases rather than the suite, named `suite.case`.
//! A group whose results do not match its plan (`1..N`) gets a failed
//! result `plan` of its own: a test that stopped half-way or printed twice
//! must not pass on the results it did print.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// Why it failed or was skipped, when known.
    pub detail: String,
}

/// Indentation of one nesting level in KTAP.
const INDENT: usize = 4;

#[derive(Default)]
pub struct Parser {
    /// `pending[d]`: results seen at depth `d` whose parent has not been
    /// closed yet (their names get the parent's name as prefix).
    pending: Vec<Vec<TestResult>>,
    /// `plans[d]`: the plan of the group open at depth `d`, if it had one.
    plans: Vec<Option<Plan>>,
    results: Vec<TestResult>,
}

#[derive(Clone, Copy)]
struct Plan {
    planned: u64,
    seen: u64,
}

impl Plan {
    /// A failed result `plan` when the group's results do not match it.
    fn check(self) -> Option<TestResult> {
        (self.seen != self.planned).then(|| TestResult {
            name: "plan".into(),
            outcome: Outcome::Fail,
            detail: format!("planned {} tests, {} reported", self.planned, self.seen),
        })
    }
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line of output; anything that is not KTAP is ignored.
    pub fn line(&mut self, raw: &str) {
        let line = raw.trim_end();
        let text = line.trim_start();
        let depth = (line.len() - text.len()) / INDENT;
        if let Some(reason) = text.strip_prefix("Bail out!") {
            self.close_all();
            self.results.push(TestResult {
                name: "bail out".into(),
                outcome: Outcome::Fail,
                detail: reason.trim().to_string(),
            });
            return;
        }
        if self.plans.len() < depth + 2 {
            self.plans.resize(depth + 2, None);
        }
        if let Some(planned) = parse_plan(text) {
            // A module's KUnit suites come with a KTAP header of their own
            // once the boot's are done: the plan before it is closed.
            let previous = self.plans[depth].replace(Plan { planned, seen: 0 });
            self.results.extend(previous.and_then(Plan::check));
            return;
        }
        // KUnit prints a module's plan before it checks kunit.enable.
        if text == "kunit: disabled" {
            if let Some(Plan { seen: 0, .. }) = self.plans[0] {
                self.plans[0] = None;
            }
            return;
        }
        let Some(result) = parse_result(text) else {
            return;
        };
        if let Some(plan) = &mut self.plans[depth] {
            plan.seen += 1;
        }
        if self.pending.len() < depth + 2 {
            self.pending.resize_with(depth + 2, Vec::new);
        }
        // Results nested deeper than this one with no parent line of their
        // own (output cut off, broken nesting) are kept as they are.
        for d in (depth + 2..self.pending.len()).rev() {
            let orphans = std::mem::take(&mut self.pending[d]);
            self.pending[depth + 1].extend(orphans);
        }
        let mut children = std::mem::take(&mut self.pending[depth + 1]);
        for plan in self.plans[depth + 1..].iter_mut() {
            children.extend(plan.take().and_then(Plan::check));
        }
        let mut leaves = Vec::new();
        let has_failed_child = children.iter().any(|c| c.outcome == Outcome::Fail);
        let parent_only =
            children.is_empty() || (result.outcome == Outcome::Fail && !has_failed_child);
        for child in children {
            leaves.push(TestResult {
                name: format!("{}.{}", result.name, child.name),
                ..child
            });
        }
        if parent_only {
            leaves.push(result);
        }
        if depth == 0 {
            self.results.extend(leaves);
        } else {
            self.pending[depth].extend(leaves);
        }
    }

    /// Results closed so far, oldest first, removed from the parser.
    pub fn take_results(&mut self) -> Vec<TestResult> {
        std::mem::take(&mut self.results)
    }

    /// Ends the input: results still waiting for a parent line are kept.
    pub fn finish(mut self) -> Vec<TestResult> {
        self.close_all();
        self.results
    }

    fn close_all(&mut self) {
        for level in self.pending.iter_mut() {
            self.results.append(level);
        }
        for plan in self.plans.iter_mut() {
            self.results.extend(plan.take().and_then(Plan::check));
        }
    }
}

/// `1..N`, possibly followed by a directive (`1..0 # SKIP why`).
fn parse_plan(text: &str) -> Option<u64> {
    let count = text.strip_prefix("1..")?;
    let count = count.split_once(' ').map_or(count, |(n, _)| n);
    count.parse().ok()
}

/// `ok 3 - name # SKIP reason` / `not ok 1 name`.
fn parse_result(text: &str) -> Option<TestResult> {
    let (ok, rest) = if let Some(r) = text.strip_prefix("ok ") {
        (true, r)
    } else {
        (false, text.strip_prefix("not ok ")?)
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    num.parse::<u64>().ok()?;
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.split_once(" # ") {
        Some((n, d)) => (n, Some(d.trim())),
        None => (rest.strip_suffix(" #").unwrap_or(rest), None),
    };
    let skip = directive.and_then(|d| {
        let upper = d.to_ascii_uppercase();
        upper.starts_with("SKIP").then(|| d[4..].trim().to_string())
    });
    let (outcome, detail) = match (ok, skip) {
        (_, Some(reason)) => (Outcome::Skip, reason),
        (true, None) => (Outcome::Pass, String::new()),
        (false, None) => (Outcome::Fail, directive.unwrap_or("").to_string()),
    };
    Some(TestResult {
        name: name.trim().to_string(),
        outcome,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, Outcome)> {
        let mut p = Parser::new();
        text.lines().for_each(|l| p.line(l));
        p.finish()
            .into_iter()
            .map(|r| (r.name, r.outcome))
            .collect()
    }

    #[test]
    fn kunit_suites_report_their_cases() {
        let log = "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: rust_kernel_kunit\n    1..2\n\
                   [    1.0] some kernel message\n    ok 1 rust_test_a\n    not ok 2 rust_test_b\n\
                   not ok 1 rust_kernel_kunit\n    # Subtest: other\n    ok 1 c # SKIP no device\nok 2 other\n";
        assert_eq!(
            parse(log),
            [
                ("rust_kernel_kunit.rust_test_a".into(), Outcome::Pass),
                ("rust_kernel_kunit.rust_test_b".into(), Outcome::Fail),
                ("other.c".into(), Outcome::Skip),
            ]
        );
    }

    #[test]
    fn parameterised_cases_nest_one_level_more() {
        let log = "        ok 1 p1\n        ok 2 p2\n    ok 1 case\nok 1 suite\n";
        assert_eq!(
            parse(log),
            [
                ("suite.case.p1".into(), Outcome::Pass),
                ("suite.case.p2".into(), Outcome::Pass)
            ]
        );
    }

    #[test]
    fn a_failed_suite_without_failed_cases_counts_itself() {
        let log = "    ok 1 a\nnot ok 1 suite # init failed\n";
        let got = parse(log);
        assert_eq!(got[0], ("suite.a".into(), Outcome::Pass));
        assert_eq!(got[1], ("suite".into(), Outcome::Fail));
    }

    #[test]
    fn kselftest_flat_output() {
        let log = "TAP version 13\n1..3\n# RUN x\nok 1 - global.a\nnot ok 2 global.b\nok 3 global.c # skip why\n# Totals: ...\n";
        assert_eq!(
            parse(log),
            [
                ("global.a".into(), Outcome::Pass),
                ("global.b".into(), Outcome::Fail),
                ("global.c".into(), Outcome::Skip),
            ]
        );
    }

    #[test]
    fn bail_out_and_cut_off_output_are_not_lost() {
        assert_eq!(
            parse("    ok 1 a\n    not ok 2 b\n")[1],
            ("b".into(), Outcome::Fail)
        );
        let got = parse("ok 1 a\nBail out! no /dev/liveupdate\n");
        assert_eq!(got[1], ("bail out".into(), Outcome::Fail));
    }

    #[test]
    fn a_module_plan_counts_on_its_own_and_is_void_when_kunit_is_disabled() {
        let run = |lines: &[&str]| {
            let mut p = Parser::new();
            lines.iter().for_each(|l| p.line(l));
            p.finish()
        };
        let fails = |results: &[TestResult]| {
            results
                .iter()
                .filter(|r| r.outcome == Outcome::Fail)
                .map(|r| format!("{}: {}", r.name, r.detail))
                .collect::<Vec<_>>()
        };
        let disabled = run(&["KTAP version 1", "1..1", "kunit: disabled"]);
        assert!(disabled.is_empty());
        let boot_short = run(&["1..2", "ok 1 a", "KTAP version 1", "1..1", "ok 1 m"]);
        assert_eq!(fails(&boot_short), ["plan: planned 2 tests, 1 reported"]);
        let both = run(&["1..1", "ok 1 a", "1..1", "ok 1 m"]);
        assert_eq!(both.len(), 2);
        assert!(fails(&both).is_empty());
    }

    #[test]
    fn results_that_do_not_match_their_plan_fail() {
        let fails = |log: &str| -> Vec<String> {
            let mut p = Parser::new();
            log.lines().for_each(|l| p.line(l));
            p.finish()
                .into_iter()
                .filter(|r| r.outcome == Outcome::Fail)
                .map(|r| format!("{}: {}", r.name, r.detail))
                .collect()
        };
        // A suite that stopped before its case, a top-level plan exceeded,
        // a program that stopped half-way.
        let log = "1..2\n    1..1\n    ok 1 a\nok 1 suite\n    1..1\n    ok 1 b\nok 2 other\n";
        assert!(fails(log).is_empty());
        let short = log.replace("    ok 1 b\n", "");
        assert_eq!(fails(&short), ["other.plan: planned 1 tests, 0 reported"]);
        let extra = format!("{log}ok 3 third\n");
        assert_eq!(fails(&extra), ["plan: planned 2 tests, 3 reported"]);
        assert_eq!(
            fails("TAP version 13\n1..3\nok 1 x\nok 2 y\n"),
            ["plan: planned 3 tests, 2 reported"]
        );
        assert!(fails("1..0 # SKIP no device\n").is_empty());
    }

    #[test]
    fn ignores_lines_that_only_look_similar() {
        assert!(parse("okay 1 x\nnot ok x y\nok\n# ok 1 comment\n").is_empty());
    }
}
