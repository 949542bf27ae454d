// SPDX-License-Identifier: GPL-2.0
//! Drives the real `lu-runner` binary with a fake QEMU (a shell script
//! replaying a log: `<lu> ` lines to the event port's file, the others to
//! the console), so process handling, time limits and exit codes are tested
//! without booting anything.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TWO_STAGES: &str = r#"
description = "fake"
boot_timeout = 3
[[stage]]
run = [["t", "-s", "1"]]
[[stage]]
run = [["t", "-s", "2"]]
"#;

/// The fake QEMU's start: finds the event port's file among its arguments.
const REPLAY: &str = r#"#!/bin/sh
for arg; do
	case "$arg" in file:*) events="${arg#file:}" ;; esac
done
replay() {
	while IFS= read -r line; do
		case "$line" in
		"<lu> "*) printf '%s\n' "$line" >>"$events" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done
}
"#;

struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new(name: &str, console: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lu-fake-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        for f in ["bzImage", "lu-init", "busybox", "bin/t"] {
            fs::write(dir.join(f), b"x").unwrap();
        }
        fs::write(dir.join("scenario.toml"), TWO_STAGES).unwrap();
        let script = format!("{REPLAY}replay <<'LOG'\n{console}LOG\n");
        let qemu = dir.join("qemu");
        fs::write(
            &qemu,
            script.replace("SLEEP\n", "LOG\nsleep 60\nreplay <<'LOG'\n"),
        )
        .unwrap();
        Command::new("chmod").arg("+x").arg(&qemu).status().unwrap();
        Fake { dir }
    }

    fn run(&self) -> (bool, String) {
        let d = |p: &str| self.dir.join(p);
        let out = Command::new(env!("CARGO_BIN_EXE_lu-runner"))
            .arg("test")
            .arg("--kernel")
            .arg(d("bzImage"))
            .arg("--init")
            .arg(d("lu-init"))
            .arg("--busybox")
            .arg(d("busybox"))
            .arg("--bin-dir")
            .arg(d("bin"))
            .arg("--qemu")
            .arg(d("qemu"))
            .arg("--out")
            .arg(d("out"))
            .arg(d("scenario.toml"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn log(&self) -> String {
        fs::read_to_string(Path::new(&self.dir).join("out/scenario.serial.log")).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const GOOD: &str = "Linux version 7.3.4\n<lu> stage 1 of 2\n<lu> run 1 t -s 1\n<lu> exit 1 code 0\n<lu> kexec 2\n\
                    Linux version 7.3.4\n<lu> stage 2 of 2\n<lu> run 1 t -s 2\n<lu> exit 1 code 0\n<lu> done\n";

#[test]
fn a_good_run_passes_and_keeps_the_log() {
    let fake = Fake::new("good", GOOD);
    let (ok, out) = fake.run();
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l == "5 passed, 0 failed, 0 skipped"),
        "{out}"
    );
    assert!(fake.log().contains("<lu> done"));
}

#[test]
fn a_failing_stage_two_check_is_a_failure() {
    let fake = Fake::new(
        "stage2",
        &GOOD.replace("exit 1 code 0\n<lu> done", "exit 1 code 1\n<lu> done"),
    );
    let (ok, out) = fake.run();
    assert!(!ok);
    assert!(out.contains("FAIL scenario: stage 2: t -s 2"), "{out}");
    assert!(
        out.lines().any(|l| l == "4 passed, 1 failed, 0 skipped"),
        "{out}"
    );
}

#[test]
fn a_guest_panic_is_a_failure() {
    let panic = "Linux version 7.3.4\n<lu> stage 1 of 2\n<lu> run 1 t -s 1\n<lu> exit 1 code 0\n<lu> kexec 2\n\
                 Linux version 7.3.4\nKernel panic - not syncing: Attempted to kill init!\n";
    let (ok, out) = Fake::new("panic", panic).run();
    assert!(!ok);
    assert!(out.contains("FAIL scenario: boot 2: kernel"), "{out}");
    assert!(out.contains("serial log:"), "{out}");
}

#[test]
fn a_hung_guest_is_killed_and_fails() {
    let hung = "Linux version 7.3.4\n<lu> stage 1 of 2\n<lu> run 1 t -s 1\nSLEEP\n";
    let started = std::time::Instant::now();
    let (ok, out) = Fake::new("hung", hung).run();
    assert!(!ok);
    assert!(
        started.elapsed().as_secs() < 30,
        "the 3 s boot limit was not enforced"
    );
    assert!(out.contains("timed out"), "{out}");
    assert!(out.contains("FAIL scenario: stage 1: t -s 1"), "{out}");
}
