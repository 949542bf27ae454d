// SPDX-License-Identifier: GPL-2.0
//! Scenarios: which devices, which tests in which stage, as data.
//!
//! A scenario is a TOML file; its stages are boots, each stage after the
//! first reached by a kexec Live Update from the one before:
//!
//! ```toml
//! description = "stock LUO selftests across one kexec"
//! devices = [{ model = "edu" }]
//!
//! [[stage]]
//! kunit = "rust_*"                 # KUnit suites run at this boot,
//! kunit_suites = ["rust_kernel_kho"] # each of which must report
//! run = [["luo_kexec_simple", "-s", "1"]]
//!
//! [[stage]]
//! run = [["luo_kexec_simple", "-s", "2"]]
//! ```

use serde::Deserialize;

use crate::plan::{self, Plan};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    /// Hard limit on one boot, from its start to the next kexec or power off.
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: u64,
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// Extra kernel parameters, on every stage.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// PCI devices, each behind its own PCIe root port unless it names one.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Root ports per slot of the root bus, as the functions of one multifunction device: 8
    /// fits 32 ports where one per slot runs out of slots. With more than 1, every port is
    /// placed this way and no device may give a `port_slot`.
    #[serde(default = "one_port_per_slot")]
    pub root_ports_per_slot: u8,
    #[serde(rename = "stage")]
    pub stages: Vec<StageSpec>,
    /// Results that may skip, by name as the runner reports them; any other
    /// skip fails.
    #[serde(default)]
    pub expected_skips: Vec<String>,
    /// Warnings and errors of the project's own the scenario provokes on
    /// purpose, as substrings of the kernel's lines; any other fails.
    #[serde(default)]
    pub expected_messages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// QEMU device model, e.g. "edu", "nvme", "igb".
    pub model: String,
    /// Extra QEMU properties, e.g. "addr=0.1".
    #[serde(default)]
    pub props: Option<String>,
    /// Share the root port of an earlier device: ports are numbered from 1 in the order
    /// devices create them. Without it the device gets a new port.
    #[serde(default)]
    pub port: Option<usize>,
    /// A NIC that keeps receiving frames from the host for the whole run, kexecs included
    /// (see [`crate::traffic`]).
    #[serde(default)]
    pub traffic: bool,
    /// The slot of the device's own root port on the root bus, instead of the next free one.
    /// q35 routes the INTx of the devices behind a root port by its slot (PIRQ slot % 8):
    /// slots 8 apart share their lines.
    #[serde(default)]
    pub port_slot: Option<u8>,
    /// How many such devices, each behind its own root port.
    #[serde(default = "one_device")]
    pub count: usize,
}

fn one_device() -> usize {
    1
}

fn one_port_per_slot() -> u8 {
    1
}

/// The root bus address (`slot.function`) of root port `port` (numbered from 1) when ports are
/// packed `per_slot` to a slot from slot 1, and whether it starts a multifunction slot; `None`
/// for one port per slot, where QEMU picks the slot.
pub fn packed_port_address(port: usize, per_slot: u8) -> Option<(String, bool)> {
    if per_slot <= 1 {
        return None;
    }
    let per_slot = usize::from(per_slot);
    let (slot, function) = ((port - 1) / per_slot + 1, (port - 1) % per_slot);
    Some((format!("{slot:#x}.{function}"), function == 0))
}

impl Device {
    /// The QEMU root port of each device, numbered from 1, and how many ports that makes.
    pub fn ports(devices: &[Device]) -> Result<(Vec<usize>, usize), String> {
        let mut created = 0;
        let mut out = Vec::new();
        let mut slots = Vec::new();
        for dev in devices {
            let port = match dev.port {
                Some(_) if dev.port_slot.is_some() => {
                    return Err(format!("{}: port_slot is for a port of its own", dev.model))
                }
                Some(p) if (1..=created).contains(&p) => p,
                Some(p) => return Err(format!("{}: no root port {p} before it", dev.model)),
                None => {
                    created += 1;
                    created
                }
            };
            if let Some(slot) = dev.port_slot {
                if !(1..32).contains(&slot) || slots.contains(&slot) {
                    return Err(format!(
                        "{}: port_slot {slot} is taken or out of 1..31",
                        dev.model
                    ));
                }
                slots.push(slot);
            }
            out.push(port);
        }
        Ok((out, created))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// KUnit suite glob to run at this boot; without it KUnit stays off.
    #[serde(default)]
    pub kunit: Option<String>,
    /// The KUnit suites the glob must run: a suite missing from the boot's
    /// results fails, so a suite that is not built or not matched cannot
    /// pass unnoticed.
    #[serde(default)]
    pub kunit_suites: Vec<String>,
    /// Programs with their arguments, run in order.
    #[serde(default)]
    pub run: Vec<Vec<String>>,
    /// Per-program time limit inside the guest.
    #[serde(default = "default_run_timeout")]
    pub run_timeout: u32,
    /// Extra kernel parameters of this stage only, e.g. to boot the kernel a kexec reaches
    /// differently from the one before.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// The kernel the kexec into this stage boots, by name (the runner's `--kernel-named`),
    /// instead of the one QEMU booted; not for stage 1.
    #[serde(default)]
    pub kernel: Option<String>,
}

fn default_boot_timeout() -> u64 {
    300
}
fn default_memory() -> u32 {
    1024
}
fn default_run_timeout() -> u32 {
    120
}

/// Kernel parameters every stage gets. A guest that times out is sent an NMI: the kernel then
/// panics and prints every CPU's backtrace, so that the log says where it was stuck.
const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 intel_iommu=on liveupdate=on \
                            unknown_nmi_panic panic_sys_info=all_bt";

impl Scenario {
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        if s.stages.is_empty() {
            return Err("a scenario needs at least one [[stage]]".into());
        }
        if let Some(run) = s
            .stages
            .iter()
            .flat_map(|st| &st.run)
            .find(|r| r.is_empty())
        {
            return Err(format!("empty command in a stage: {run:?}"));
        }
        let mut s = s;
        s.devices = Self::expand(std::mem::take(&mut s.devices))?;
        Device::ports(&s.devices)?;
        if !(1..=8).contains(&s.root_ports_per_slot) {
            return Err("root_ports_per_slot is 1 to 8: the functions of a slot".into());
        }
        let (_, ports) = Device::ports(&s.devices)?;
        if s.root_ports_per_slot > 1 {
            if s.devices.iter().any(|d| d.port_slot.is_some()) {
                return Err("port_slot and root_ports_per_slot exclude each other".into());
            }
            if ports.div_ceil(usize::from(s.root_ports_per_slot)) > 30 {
                return Err("more root ports than the root bus has slots for".into());
            }
        }
        if let Some((n, _)) = s
            .stages
            .iter()
            .enumerate()
            .find(|(_, st)| st.kunit.is_some() == st.kunit_suites.is_empty())
        {
            return Err(format!(
                "stage {}: kunit and kunit_suites go together",
                n + 1
            ));
        }
        if s.stages[0].kernel.is_some() {
            return Err("stage 1 runs the kernel QEMU boots: no kernel for it".into());
        }
        if let Some(bad) = s.kernels().into_iter().find(|k| !plan::is_kernel_name(k)) {
            return Err(format!("{bad:?} cannot name a kernel"));
        }
        if let Some(bad) = s
            .cmdline
            .iter()
            .chain(s.stages.iter().flat_map(|st| &st.cmdline))
            .find(|p| p.starts_with("lu.") || p.starts_with("kunit."))
        {
            return Err(format!(
                "{bad}: lu.* and kunit.* parameters are set by the runner"
            ));
        }
        Ok(s)
    }

    /// `devices` with each device given a `count` repeated that many times, each with its own
    /// port.
    fn expand(devices: Vec<Device>) -> Result<Vec<Device>, String> {
        let mut out = Vec::new();
        for dev in devices {
            match dev.count {
                0 => return Err(format!("{}: count 0", dev.model)),
                1 => out.push(dev),
                n if dev.port.is_some() || dev.port_slot.is_some() || dev.traffic => {
                    return Err(format!(
                        "{}: count {n} is for devices each on a new port, without traffic",
                        dev.model
                    ))
                }
                n => out.extend((0..n).map(|_| Device {
                    count: 1,
                    model: dev.model.clone(),
                    props: dev.props.clone(),
                    port: None,
                    traffic: false,
                    port_slot: None,
                })),
            }
        }
        Ok(out)
    }

    /// The kernel command line of stage `n` (1-based).
    pub fn cmdline(&self, n: usize) -> String {
        let stage = &self.stages[n - 1];
        let mut words = vec![BASE_CMDLINE.to_string(), format!("lu.stage={n}")];
        words.extend(self.cmdline.iter().cloned());
        words.extend(stage.cmdline.iter().cloned());
        match &stage.kunit {
            Some(glob) => words.push(format!("kunit.filter_glob={glob}")),
            None => words.push("kunit.enable=0".into()),
        }
        words.join(" ")
    }

    /// The plan the guest follows.
    pub fn plan(&self) -> Plan {
        Plan {
            stages: (1..=self.stages.len())
                .map(|n| plan::Stage {
                    cmdline: self.cmdline(n),
                    kernel: self.stages[n - 1].kernel.clone(),
                    runs: self.stages[n - 1]
                        .run
                        .iter()
                        .map(|argv| plan::Run {
                            argv: argv.clone(),
                            timeout_secs: self.stages[n - 1].run_timeout,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The named kernels the stages boot, each once.
    pub fn kernels(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.stages.iter().filter_map(|s| s.kernel.as_deref()) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Every program the guest runs, each once.
    pub fn programs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .stages
            .iter()
            .flat_map(|s| &s.run)
            .map(|r| r[0].as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_STAGES: &str = r#"
        description = "d"
        devices = [{ model = "edu" }]
        [[stage]]
        kunit = "rust_*"
        kunit_suites = ["rust_a"]
        run = [["t", "-s", "1"], ["u"]]
        [[stage]]
        run = [["t", "-s", "2"]]
        cmdline = ["pci=assign-busses"]
        kernel = "next"
    "#;

    #[test]
    fn stages_become_a_plan() {
        let s = Scenario::parse(TWO_STAGES).unwrap();
        let plan = s.plan();
        assert_eq!(plan.stages.len(), 2);
        assert!(plan.stages[0].cmdline.contains("lu.stage=1"));
        assert!(plan.stages[0].cmdline.contains("kunit.filter_glob=rust_*"));
        assert!(plan.stages[1]
            .cmdline
            .contains("lu.stage=2 pci=assign-busses kunit.enable=0"));
        assert!(!plan.stages[0].cmdline.contains("assign-busses"));
        assert_eq!(plan.stages[1].runs[0].argv, ["t", "-s", "2"]);
        assert_eq!(plan.stages[0].kernel, None);
        assert_eq!(plan.stages[1].kernel.as_deref(), Some("next"));
        assert_eq!(s.kernels(), ["next"]);
        assert_eq!(s.programs(), ["t", "u"]);
    }

    #[test]
    fn devices_share_ports_they_name() {
        let dev = |port| Device {
            model: "edu".into(),
            props: None,
            port,
            traffic: false,
            port_slot: None,
            count: 1,
        };
        let devices = [dev(None), dev(Some(1)), dev(None), dev(Some(2))];
        assert_eq!(Device::ports(&devices), Ok((vec![1, 1, 2, 2], 2)));
        assert!(Device::ports(&[dev(None), dev(Some(2))]).is_err());
        let at = |port_slot| Device {
            port_slot: Some(port_slot),
            ..dev(None)
        };
        assert_eq!(Device::ports(&[dev(None), at(12)]), Ok((vec![1, 2], 2)));
        assert!(Device::ports(&[at(12), at(12)]).is_err());
        assert!(Device::ports(&[at(0)]).is_err());
        assert!(Device::ports(&[at(32)]).is_err());
        assert!(Device::ports(&[
            dev(None),
            Device {
                port: Some(1),
                ..at(9)
            }
        ])
        .is_err());
    }

    #[test]
    fn counted_devices_get_ports_packed_into_slots() {
        let s = Scenario::parse(
            "description = \"d\"\nroot_ports_per_slot = 8\n\
             devices = [{ model = \"edu\" }, { model = \"igb\", count = 32 }]\n[[stage]]",
        )
        .unwrap();
        assert_eq!(s.devices.len(), 33);
        assert!(s.devices[1..]
            .iter()
            .all(|d| d.model == "igb" && d.count == 1));
        assert_eq!(Device::ports(&s.devices).unwrap().1, 33);
        assert_eq!(packed_port_address(1, 8), Some(("0x1.0".into(), true)));
        assert_eq!(packed_port_address(8, 8), Some(("0x1.7".into(), false)));
        assert_eq!(packed_port_address(33, 8), Some(("0x5.0".into(), true)));
        assert_eq!(packed_port_address(3, 1), None);
    }

    #[test]
    fn rejects_bad_scenarios() {
        for text in [
            "description = \"d\"\nstage = []",
            "description = \"d\"\n[[stage]]\nrun = [[]]",
            "description = \"d\"\ncmdline = [\"lu.stage=3\"]\n[[stage]]",
            "description = \"d\"\n[[stage]]\nbogus = 1",
            "[[stage]]",
            "description = \"d\"\ndevices = [{ model = \"edu\", port = 1 }]\n[[stage]]",
            "description = \"d\"\n[[stage]]\ncmdline = [\"kunit.enable=1\"]",
            "description = \"d\"\n[[stage]]\nkernel = \"next\"",
            "description = \"d\"\n[[stage]]\n[[stage]]\nkernel = \"../x\"",
            "description = \"d\"\ndevices = [{ model = \"igb\", count = 0 }]\n[[stage]]",
            "description = \"d\"\ndevices = [{ model = \"igb\", count = 2, port_slot = 3 }]\n[[stage]]",
            "description = \"d\"\nroot_ports_per_slot = 9\n[[stage]]",
            "description = \"d\"\nroot_ports_per_slot = 2\ndevices = [{ model = \"igb\", port_slot = 3 }]\n[[stage]]",
            "description = \"d\"\nroot_ports_per_slot = 2\ndevices = [{ model = \"igb\", count = 61 }]\n[[stage]]",
        ] {
            assert!(Scenario::parse(text).is_err(), "{text}");
        }
    }
}
