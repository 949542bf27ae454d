// SPDX-License-Identifier: GPL-2.0
//! The plan the host hands to the guest's init inside the initramfs.
//!
//! One entry per stage (boot): the kernel command line to kexec into that
//! stage, the kernel to kexec into when it is not the one QEMU booted, and
//! the programs to run once it is up. Stage 1 is booted by QEMU; every later
//! stage is reached by a kexec Live Update from the one before.
//!
//! The text form is line based so the guest needs no parser library:
//!
//! ```text
//! stage
//! cmdline console=ttyS0 lu.stage=2 ...
//! kernel next
//! run 60<TAB>luo_kexec_simple<TAB>-s<TAB>2
//! ```

use std::fmt::Write;

/// Where the plan lives in the initramfs.
pub const PATH: &str = "/lu/plan";

/// Where the kernel modules the guest loads at every boot are.
pub const MODULES: &str = "/lu/modules";

/// The image of the kernel QEMU boots.
pub const KERNEL: &str = "/lu/bzImage";

/// Where the image of kernel `name` is: [`KERNEL`] for the one QEMU boots (`None`).
pub fn kernel_image(name: Option<&str>) -> String {
    name.map_or_else(|| KERNEL.into(), |n| format!("/lu/kernels/{n}/bzImage"))
}

/// Where the modules of kernel `name` are: [`MODULES`] for the one QEMU boots (`None`).
pub fn kernel_modules(name: Option<&str>) -> String {
    name.map_or_else(|| MODULES.into(), |n| format!("/lu/kernels/{n}/modules"))
}

/// Whether `name` can name a kernel: lower-case letters, digits and dashes.
pub fn is_kernel_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Full kernel command line of this stage's boot.
    pub cmdline: String,
    /// The kernel this stage runs, when not the one QEMU boots.
    pub kernel: Option<String>,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Program and arguments; the program is looked up in the guest's PATH.
    pub argv: Vec<String>,
    /// The guest kills the program after this many seconds.
    pub timeout_secs: u32,
}

impl Run {
    /// The command as one printable line.
    pub fn command(&self) -> String {
        self.argv.join(" ")
    }
}

impl Plan {
    /// Encodes the plan; fails on text the format cannot carry.
    pub fn encode(&self) -> Result<String, String> {
        let mut out = String::new();
        for stage in &self.stages {
            if stage.cmdline.contains('\n') {
                return Err("a kernel command line contains a newline".into());
            }
            let _ = writeln!(out, "stage\ncmdline {}", stage.cmdline);
            if let Some(kernel) = &stage.kernel {
                if !is_kernel_name(kernel) {
                    return Err(format!("{kernel:?} cannot name a kernel"));
                }
                let _ = writeln!(out, "kernel {kernel}");
            }
            for run in &stage.runs {
                if run.argv.is_empty() {
                    return Err("a run has no program".into());
                }
                if let Some(a) = run.argv.iter().find(|a| a.contains(['\t', '\n'])) {
                    return Err(format!("argument {a:?} contains a tab or newline"));
                }
                let _ = writeln!(out, "run {}\t{}", run.timeout_secs, run.argv.join("\t"));
            }
        }
        Ok(out)
    }

    pub fn decode(text: &str) -> Result<Plan, String> {
        let mut stages: Vec<Stage> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |what: &str| format!("plan line {}: {what}: {line:?}", n + 1);
            if line == "stage" {
                stages.push(Stage {
                    cmdline: String::new(),
                    kernel: None,
                    runs: Vec::new(),
                });
                continue;
            }
            let stage = stages
                .last_mut()
                .ok_or_else(|| bad("entry before any stage"))?;
            if let Some(cmdline) = line.strip_prefix("cmdline ") {
                stage.cmdline = cmdline.to_string();
            } else if let Some(kernel) = line.strip_prefix("kernel ") {
                if !is_kernel_name(kernel) {
                    return Err(bad("bad kernel name"));
                }
                stage.kernel = Some(kernel.to_string());
            } else if let Some(rest) = line.strip_prefix("run ") {
                let mut fields = rest.split('\t');
                let timeout_secs = fields
                    .next()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| bad("bad timeout"))?;
                let argv: Vec<String> = fields.map(str::to_string).collect();
                if argv.is_empty() || argv[0].is_empty() {
                    return Err(bad("run without a program"));
                }
                stage.runs.push(Run { argv, timeout_secs });
            } else {
                return Err(bad("unknown entry"));
            }
        }
        if stages.is_empty() {
            return Err("the plan has no stage".into());
        }
        Ok(Plan { stages })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        let run = |argv: &[&str]| Run {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout_secs: 30,
        };
        Plan {
            stages: vec![
                Stage {
                    cmdline: "console=ttyS0 lu.stage=1".into(),
                    kernel: None,
                    runs: vec![run(&["a", "-s", "1"])],
                },
                Stage {
                    cmdline: "console=ttyS0 lu.stage=2".into(),
                    kernel: Some("next".into()),
                    runs: vec![run(&["b", "x y"])],
                },
                Stage {
                    cmdline: "lu.stage=3".into(),
                    kernel: None,
                    runs: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let plan = sample();
        assert_eq!(Plan::decode(&plan.encode().unwrap()).unwrap(), plan);
    }

    #[test]
    fn rejects_what_it_cannot_carry() {
        let mut plan = sample();
        plan.stages[0].runs[0].argv.push("a\tb".into());
        assert!(plan.encode().is_err());
        let mut plan = sample();
        plan.stages[1].cmdline.push('\n');
        assert!(plan.encode().is_err());
        let mut plan = sample();
        plan.stages[1].kernel = Some("../x".into());
        assert!(plan.encode().is_err());
    }

    #[test]
    fn kernels_have_their_own_image_and_modules() {
        assert_eq!(kernel_image(None), KERNEL);
        assert_eq!(kernel_image(Some("next")), "/lu/kernels/next/bzImage");
        assert_eq!(kernel_modules(None), MODULES);
        assert_eq!(kernel_modules(Some("next")), "/lu/kernels/next/modules");
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "run 5\tx",
            "stage\nrun x\tprog",
            "stage\nrun 5",
            "stage\nbogus",
            "stage\nkernel ",
            "stage\nkernel a/b",
        ] {
            assert!(Plan::decode(text).is_err(), "{text:?}");
        }
    }
}
