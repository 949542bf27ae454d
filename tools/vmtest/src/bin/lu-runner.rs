// SPDX-License-Identifier: GPL-2.0
//! Boots the kernel under QEMU and runs scenarios in stages across kexec.
//!
//! ```text
//! lu-runner test  --kernel bzImage --bin-dir DIR... [--module KO...] [--out DIR] SCENARIO.toml...
//!                 [--kernel-named NAME=bzImage [--module-named NAME=KO...]]...
//! lu-runner shell --kernel bzImage [--bin-dir DIR...] [--module KO...] [--device MODEL...]
//! ```

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use lu_vmtest::cpio;
use lu_vmtest::ktap::{Outcome, TestResult};
use lu_vmtest::monitor::{End, Monitor};
use lu_vmtest::plan::{self, Plan};
use lu_vmtest::report::Report;
use lu_vmtest::scenario::{packed_port_address, Device, Scenario};
use lu_vmtest::traffic::Source;

const USAGE: &str = "usage:
  lu-runner test  --kernel BZIMAGE [--bin-dir DIR]... [--module KO]... [--out DIR] SCENARIO.toml...
                  [--kernel-named NAME=BZIMAGE [--module-named NAME=KO]...]...
  lu-runner shell --kernel BZIMAGE [--bin-dir DIR]... [--module KO]... [--device MODEL]...
options:
  --module KO     kernel module the guest loads at every boot, with the
                  parameters the kernel command line gives it (NAME.PARAM=V)
  --kernel-named NAME=BZIMAGE, --module-named NAME=KO
                  another kernel, and its modules, that stages with
                  kernel = \"NAME\" kexec into
  --messages DIR  Rust sources whose warnings and errors fail a scenario
                  that does not expect them (expected_messages)
  --init PATH     guest init (default: lu-init next to lu-runner)
  --busybox PATH  static busybox for the guest (default: /bin/busybox)
  --qemu PATH     QEMU binary (default: qemu-system-x86_64, or $LU_QEMU)";

struct Options {
    kernel: PathBuf,
    init: PathBuf,
    busybox: PathBuf,
    qemu: String,
    bin_dirs: Vec<PathBuf>,
    modules: Vec<PathBuf>,
    /// Other kernels stages may kexec into, by name: image and modules (`--kernel-named`,
    /// `--module-named`).
    named: Vec<(String, PathBuf, Vec<PathBuf>)>,
    out: PathBuf,
    devices: Vec<String>,
    scenarios: Vec<PathBuf>,
    /// The project's own warnings and errors (`--messages`).
    messages: Vec<String>,
}

/// The `NAME=PATH` of `--kernel-named` and `--module-named`.
fn named_value(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((name, path)) if lu_vmtest::plan::is_kernel_name(name) && !path.is_empty() => {
            Ok((name.to_string(), path.into()))
        }
        _ => Err(format!(
            "{value:?}: NAME=PATH expected, NAME of a-z, 0-9 and -"
        )),
    }
}

fn parse_args(args: &[String]) -> Result<(String, Options), String> {
    let mut it = args.iter();
    let command = it.next().ok_or("no command")?.clone();
    let sibling = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("lu-init");
    let mut o = Options {
        kernel: PathBuf::new(),
        init: sibling,
        busybox: "/bin/busybox".into(),
        qemu: std::env::var("LU_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into()),
        bin_dirs: Vec::new(),
        modules: Vec::new(),
        named: Vec::new(),
        out: "lu-vmtest-out".into(),
        devices: Vec::new(),
        scenarios: Vec::new(),
        messages: Vec::new(),
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--kernel" => o.kernel = value()?.into(),
            "--init" => o.init = value()?.into(),
            "--busybox" => o.busybox = value()?.into(),
            "--qemu" => o.qemu = value()?,
            "--bin-dir" => o.bin_dirs.push(value()?.into()),
            "--module" => o.modules.push(value()?.into()),
            "--kernel-named" => {
                let (name, path) = named_value(&value()?)?;
                if o.named.iter().any(|(n, ..)| *n == name) {
                    return Err(format!("kernel {name} given twice"));
                }
                o.named.push((name, path, Vec::new()));
            }
            "--module-named" => {
                let (name, path) = named_value(&value()?)?;
                let kernel = o.named.iter_mut().find(|(n, ..)| *n == name);
                let (.., modules) = kernel.ok_or(format!(
                    "--module-named {name}: no --kernel-named {name} before"
                ))?;
                modules.push(path);
            }
            "--out" => o.out = value()?.into(),
            "--device" => o.devices.push(value()?),
            "--messages" => o
                .messages
                .extend(lu_vmtest::messages::in_tree(Path::new(&value()?))?),
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a => o.scenarios.push(a.into()),
        }
    }
    if o.kernel.as_os_str().is_empty() {
        return Err("--kernel is required".into());
    }
    for (what, path) in [
        ("kernel", &o.kernel),
        ("guest init", &o.init),
        ("busybox", &o.busybox),
    ] {
        if !path.is_file() {
            return Err(format!("{what} not found: {}", path.display()));
        }
    }
    Ok((command, o))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, opts) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("lu-runner: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match command.as_str() {
        "test" if !opts.scenarios.is_empty() => test(&opts),
        "shell" => shell(&opts),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lu-runner: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario; true when all passed.
fn test(opts: &Options) -> Result<bool, String> {
    fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let mut all = Vec::new();
    for path in &opts.scenarios {
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let scenario = Scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("==> {name}: {}", scenario.description);
        let started = Instant::now();
        let log = opts.out.join(format!("{name}.serial.log"));
        let results = run_scenario(&name, &scenario, opts, &log)?;
        let failed: Vec<_> = results
            .iter()
            .filter(|r| r.outcome == Outcome::Fail)
            .collect();
        for r in &failed {
            println!("FAIL {name}: {}", r.name);
            for line in r.detail.lines() {
                println!("     {line}");
            }
        }
        let count = |o| results.iter().filter(|r| r.outcome == o).count();
        println!(
            "<== {name}: {} passed, {} failed, {} skipped in {:.1} s{}",
            count(Outcome::Pass),
            failed.len(),
            count(Outcome::Skip),
            started.elapsed().as_secs_f64(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; serial log: {}", log.display())
            }
        );
        all.extend(results);
    }
    let count = |o| all.iter().filter(|r| r.outcome == o).count();
    let (passed, failed, skipped) = (
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip),
    );
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(failed == 0)
}

fn run_scenario(
    name: &str,
    scenario: &Scenario,
    opts: &Options,
    log: &Path,
) -> Result<Vec<TestResult>, String> {
    let plan = scenario.plan();
    let initrd = opts.out.join(format!("{name}.cpio"));
    let programs: Vec<String> = scenario.programs().into_iter().map(String::from).collect();
    write_initramfs(&initrd, &plan, &programs, plan.stages.len() > 1, opts)?;
    // Frame sources of the NICs that keep receiving; they stop when dropped, after QEMU.
    let sources = scenario
        .devices
        .iter()
        .enumerate()
        .filter(|(_, d)| d.traffic)
        .map(|(i, _)| Source::start(&format!("lu-traffic{i}")).map(|s| (i, s)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("frame source: {e}"))?;
    let mut qemu = qemu_command(
        opts,
        &scenario.devices,
        scenario.root_ports_per_slot,
        &sources,
        scenario.memory_mib,
        &initrd,
        &plan.stages[0].cmdline,
    );
    let qmp = opts.out.join(format!("{name}.qmp"));
    let _ = fs::remove_file(&qmp);
    qemu.arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp.display()));
    // The guest's first serial port is its console, the second its init's event port.
    let events = opts.out.join(format!("{name}.events"));
    File::create(&events).map_err(|e| format!("{}: {e}", events.display()))?;
    qemu.args(["-serial", "stdio", "-serial"])
        .arg(format!("file:{}", events.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = qemu.spawn().map_err(|e| format!("{}: {e}", opts.qemu))?;
    let lines = guest_lines(&mut child, events);
    let mut log_file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut monitor = Monitor::new(plan.stages.len());
    monitor.expect_skips(&scenario.expected_skips);
    monitor.watch_messages(&opts.messages, &scenario.expected_messages);
    for (n, stage) in scenario.stages.iter().enumerate() {
        monitor.expect_kunit(n + 1, &stage.kunit_suites);
    }
    let mut report = Report::default();
    let limit = Duration::from_secs(scenario.boot_timeout);
    let mut deadline = Instant::now() + limit;
    let mut nmi_sent = false;
    let end = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let now = Instant::now();
                let boots = monitor.boots();
                let progress = match &line {
                    Line::Console(text) => {
                        report.console(text, now);
                        monitor.console(text)
                    }
                    Line::Event(text) => {
                        report.guest(text, now);
                        monitor.guest(text)
                    }
                };
                let (Line::Console(text) | Line::Event(text)) = line;
                let _ = writeln!(log_file, "{text}");
                for p in progress {
                    println!("    {name}: {p}");
                }
                if monitor.boots() != boots && !nmi_sent {
                    deadline = Instant::now() + limit;
                }
            }
            // Where the guest is stuck: its kernel panics on the NMI and prints every CPU's
            // backtrace (BASE_CMDLINE), then QEMU exits.
            Err(mpsc::RecvTimeoutError::Timeout) if !nmi_sent && inject_nmi(&qmp).is_ok() => {
                println!(
                    "    {name}: no end after {} s: NMI sent for the guest's backtraces",
                    limit.as_secs()
                );
                nmi_sent = true;
                deadline = Instant::now() + NMI_GRACE;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                println!("    {name}: QEMU killed");
                break End::TimedOut {
                    secs: limit.as_secs(),
                };
            }
            // The guest the NMI stopped timed out all the same.
            Err(mpsc::RecvTimeoutError::Disconnected) if nmi_sent => {
                break End::TimedOut {
                    secs: limit.as_secs(),
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break End::Exited,
        }
    };
    let _ = fs::remove_file(&qmp);
    let _ = child.wait();
    if let End::TimedOut { secs } = end {
        println!("    {name}: no end after {secs} s");
    }
    if !report.lines().is_empty() {
        println!("==> report of {name}");
        for line in report.lines() {
            println!("    {line}");
        }
    }
    Ok(monitor.finish(end))
}

/// How long a guest that timed out has to print its backtraces after the NMI.
const NMI_GRACE: Duration = Duration::from_secs(30);

/// Sends an NMI to the guest through QEMU's QMP socket at `path`.
fn inject_nmi(path: &Path) -> io::Result<()> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut replies = BufReader::new(stream.try_clone()?);
    let mut reply = String::new();
    // The greeting, then one reply per command.
    replies.read_line(&mut reply)?;
    for command in [
        r#"{"execute": "qmp_capabilities"}"#,
        r#"{"execute": "inject-nmi"}"#,
    ] {
        writeln!(stream, "{command}")?;
        reply.clear();
        replies.read_line(&mut reply)?;
        if !reply.contains("\"return\"") {
            return Err(io::Error::other(reply.trim().to_string()));
        }
    }
    Ok(())
}

/// A line of the guest's console (or of QEMU's own messages) or of its event port.
enum Line {
    Console(String),
    Event(String),
}

/// How often the event port's file is read.
const EVENT_POLL: Duration = Duration::from_millis(10);

/// QEMU's stdout (the guest's console) and stderr, and the event port QEMU
/// writes to the file `events`, as lines in the order they arrive. The
/// channel closes once QEMU has closed its output and the last event is read.
fn guest_lines(child: &mut Child, events: PathBuf) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel();
    let stdout = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn io::Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn io::Read + Send>);
    let open_streams = Arc::new(AtomicUsize::new(0));
    for stream in [stdout, stderr].into_iter().flatten() {
        let tx = tx.clone();
        let open_streams = open_streams.clone();
        open_streams.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            for chunk in BufReader::new(stream).split(b'\n') {
                let Ok(bytes) = chunk else { break };
                if tx.send(Line::Console(text_of(&bytes))).is_err() {
                    break;
                }
            }
            open_streams.fetch_sub(1, Ordering::SeqCst);
        });
    }
    std::thread::spawn(move || {
        let Ok(mut file) = File::open(&events) else {
            return;
        };
        let mut pending = Vec::new();
        loop {
            // Read after looking, so that the events written before QEMU exited are all read.
            let exited = open_streams.load(Ordering::SeqCst) == 0;
            if file.read_to_end(&mut pending).is_err() {
                return;
            }
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if tx.send(Line::Event(text_of(&line[..end]))).is_err() {
                    return;
                }
            }
            if exited {
                if !pending.is_empty() {
                    let _ = tx.send(Line::Event(text_of(&pending)));
                }
                return;
            }
            std::thread::sleep(EVENT_POLL);
        }
    });
    rx
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\r')
        .to_string()
}

fn qemu_command(
    opts: &Options,
    devices: &[Device],
    root_ports_per_slot: u8,
    sources: &[(usize, Source)],
    memory_mib: u32,
    initrd: &Path,
    cmdline: &str,
) -> Command {
    let mut c = Command::new(&opts.qemu);
    c.args([
        "-M",
        "q35,kernel-irqchip=split",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "2",
    ]);
    c.args([
        "-m",
        &format!("{memory_mib}M"),
        "-display",
        "none",
        "-nodefaults",
        "-no-reboot",
    ]);
    // The IOMMU must come before the devices it translates for.
    c.args(["-device", "intel-iommu,intremap=on,caching-mode=on"]);
    // Scenarios are validated when parsed; a shell's devices each get their own port.
    let (ports, created) = Device::ports(devices).unwrap_or_default();
    for port in 1..=created {
        let addr = match packed_port_address(port, root_ports_per_slot) {
            Some((addr, true)) => format!(",addr={addr},multifunction=on"),
            Some((addr, false)) => format!(",addr={addr}"),
            None => devices
                .iter()
                .zip(&ports)
                .find_map(|(d, p)| d.port_slot.filter(|_| *p == port))
                .map(|slot| format!(",addr={slot:#x}"))
                .unwrap_or_default(),
        };
        c.args([
            "-device",
            &format!("pcie-root-port,id=rp{port},chassis={port},slot={port}{addr}"),
        ]);
    }
    for (i, (dev, port)) in devices.iter().zip(ports).enumerate() {
        let mut props = dev
            .props
            .as_deref()
            .map(|p| format!(",{p}"))
            .unwrap_or_default();
        if let Some((_, source)) = sources.iter().find(|(d, _)| *d == i) {
            c.args(["-netdev", &source.netdev()]);
            props.push_str(&format!(",netdev={}", source.id()));
        }
        c.args(["-device", &format!("{},bus=rp{port}{props}", dev.model)]);
    }
    c.arg("-kernel")
        .arg(&opts.kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", cmdline]);
    c
}

/// The initramfs: init, busybox, the plan, the kernel modules, the test
/// programs and, when there is a later stage to kexec into, the kernel
/// itself.
fn write_initramfs(
    path: &Path,
    plan: &Plan,
    programs: &[String],
    with_kernel: bool,
    opts: &Options,
) -> Result<(), String> {
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let io_err = |e: io::Error| format!("{}: {e}", path.display());
    let file = File::create(path).map_err(io_err)?;
    let mut w = cpio::Writer::new(io::BufWriter::new(file));
    for dir in [
        "/bin",
        "/dev",
        "/proc",
        "/sys",
        "/tmp",
        "/lu",
        "/lu/bin",
        plan::MODULES,
    ] {
        w.dir(dir, 0o755).map_err(io_err)?;
    }
    let add_modules = |w: &mut cpio::Writer<_>, dir: &str, modules: &[PathBuf]| {
        for module in modules {
            let name = module
                .file_name()
                .ok_or(format!("{}: not a module file", module.display()))?;
            let dest = format!("{dir}/{}", name.to_string_lossy());
            w.file(&dest, 0o644, &read(module)?).map_err(io_err)?;
        }
        Ok::<(), String>(())
    };
    add_modules(&mut w, plan::MODULES, &opts.modules)?;
    // The other kernels the stages boot, with their own modules.
    let kernels: std::collections::BTreeSet<&str> = plan
        .stages
        .iter()
        .filter_map(|s| s.kernel.as_deref())
        .collect();
    if !kernels.is_empty() {
        w.dir("/lu/kernels", 0o755).map_err(io_err)?;
    }
    for name in kernels {
        let (_, image, modules) = opts.named.iter().find(|(n, ..)| n == name).ok_or(format!(
            "the scenario boots kernel {name}: give it with --kernel-named {name}=BZIMAGE"
        ))?;
        w.dir(&format!("/lu/kernels/{name}"), 0o755)
            .map_err(io_err)?;
        let dir = plan::kernel_modules(Some(name));
        w.dir(&dir, 0o755).map_err(io_err)?;
        add_modules(&mut w, &dir, modules)?;
        w.file(&plan::kernel_image(Some(name)), 0o644, &read(image)?)
            .map_err(io_err)?;
    }
    w.char_dev("/dev/console", 0o600, 5, 1).map_err(io_err)?;
    w.file("/init", 0o755, &read(&opts.init)?).map_err(io_err)?;
    w.file("/bin/busybox", 0o755, &read(&opts.busybox)?)
        .map_err(io_err)?;
    w.file(plan::PATH, 0o644, plan.encode()?.as_bytes())
        .map_err(io_err)?;
    if with_kernel {
        w.file(plan::KERNEL, 0o644, &read(&opts.kernel)?)
            .map_err(io_err)?;
    }
    for prog in programs.iter().filter(|p| !p.starts_with('/')) {
        let found = opts
            .bin_dirs
            .iter()
            .map(|d| d.join(prog))
            .find(|p| p.is_file());
        let src = found.ok_or(format!("program {prog} not found in any --bin-dir"))?;
        w.file(&format!("/lu/bin/{prog}"), 0o755, &read(&src)?)
            .map_err(io_err)?;
    }
    w.finish().and_then(|mut f| f.flush()).map_err(io_err)
}

/// Boots the kernel into an interactive busybox shell on this terminal.
fn shell(opts: &Options) -> Result<bool, String> {
    fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let scenario = Scenario::parse("description = \"shell\"\n[[stage]]\n")?;
    let mut plan = scenario.plan();
    plan.stages[0].cmdline.push_str(" lu.mode=shell");
    let initrd = opts.out.join("shell.cpio");
    // Everything at hand for poking around, including a kernel to kexec.
    let mut programs = Vec::new();
    for dir in &opts.bin_dirs {
        let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten().filter(|e| e.path().is_file()) {
            programs.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    write_initramfs(&initrd, &plan, &programs, true, opts)?;
    let devices: Vec<Device> = opts
        .devices
        .iter()
        .map(|m| Device {
            model: m.clone(),
            props: None,
            port: None,
            traffic: false,
            port_slot: None,
            count: 1,
        })
        .collect();
    let mut qemu = qemu_command(
        opts,
        &devices,
        1,
        &[],
        1024,
        &initrd,
        &plan.stages[0].cmdline,
    );
    // Ctrl-A X quits QEMU; Ctrl-A C reaches its monitor.
    qemu.args(["-serial", "mon:stdio"]);
    println!("booting {} (Ctrl-A X quits)", opts.kernel.display());
    let status = qemu.status().map_err(|e| format!("{}: {e}", opts.qemu))?;
    Ok(status.success())
}
