// SPDX-License-Identifier: GPL-2.0
//! The guest's /init: run this stage's programs, report on the event port,
//! then kexec into the next stage or power off.
//!
//! The stage number comes from `lu.stage=N` on the kernel command line;
//! `lu.mode=shell` gives an interactive busybox shell instead.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lu_vmtest::cpio;
use lu_vmtest::plan::{self, Plan, Run};
use lu_vmtest::protocol::{Event, RunStatus, PORT};

const PATH: &str = "/lu/bin:/bin";

fn main() {
    if let Err(e) = mount_all() {
        report(Event::Error(format!("mounting file systems: {e}")));
    }
    // Busybox applets as commands for tests that are shell scripts.
    let _ = Command::new("/bin/busybox")
        .args(["--install", "-s", "/bin"])
        .status();
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let shell_mode = param(&cmdline, "lu.mode") == Some("shell");
    if !shell_mode {
        open_event_port();
    }
    let plan = read_plan();
    let n: usize = param(&cmdline, "lu.stage")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // This stage's kernel: its modules are the ones that load.
    let kernel = plan
        .as_ref()
        .ok()
        .and_then(|p| p.stages.get(n - 1))
        .and_then(|s| s.kernel.as_deref());
    if let Err(msg) = load_modules(&cmdline, &plan::kernel_modules(kernel)) {
        report(Event::Error(msg));
    }
    if shell_mode {
        shell();
    } else if let Err(msg) = plan.and_then(|plan| run_plan(&plan, n)) {
        report(Event::Error(msg));
    }
    power_off();
}

fn read_plan() -> Result<Plan, String> {
    let text = fs::read_to_string(plan::PATH).map_err(|e| format!("{}: {e}", plan::PATH))?;
    Plan::decode(&text)
}

fn run_plan(plan: &Plan, n: usize) -> Result<(), String> {
    let stage = plan
        .stages
        .get(n - 1)
        .ok_or(format!("no stage {n} in the plan"))?;
    report(Event::Stage {
        n,
        total: plan.stages.len(),
    });
    for (i, run) in stage.runs.iter().enumerate() {
        let index = i + 1;
        report(Event::Run {
            index,
            command: run.command(),
        });
        let status = run_program(index, run);
        report(Event::Exit { index, status });
    }
    match plan.stages.get(n) {
        Some(next) => kexec(n + 1, next),
        None => {
            report(Event::Done);
            Ok(())
        }
    }
}

/// Where [`report`] writes; the console until the event port is open.
static EVENT_PORT: OnceLock<File> = OnceLock::new();

fn open_event_port() {
    match fs::OpenOptions::new().write(true).open(PORT) {
        Ok(port) => {
            let _ = EVENT_PORT.set(port);
        }
        // The host reads events from that port only: say why none come.
        Err(e) => println!("lu-init: {PORT}: {e}; no events for the host"),
    }
}

/// Reports one event to the host, and waits until it has left the guest:
/// what follows may be a kexec or a power off.
fn report(event: Event) {
    let Some(mut port) = EVENT_PORT.get() else {
        println!("{event}");
        return;
    };
    if let Err(e) = port.write_all(format!("{event}\n").as_bytes()) {
        println!("lu-init: {PORT}: {e}; lost: {event}");
        return;
    }
    // SAFETY: tcdrain(3) on a descriptor the static keeps open has no memory effects.
    unsafe { libc::tcdrain(port.as_raw_fd()) };
}

fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Loads every module in `dir` of the initramfs, with the parameters the
/// kernel command line gives it (`vfio_pci.ids=...`), as modprobe would:
/// each after the modules its `.modinfo` says it depends on (vfio-pci after
/// vfio-pci-core, after vfio), otherwise in name order.
fn load_modules(cmdline: &str, dir: &str) -> Result<(), String> {
    let Ok(dir) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut pending = Vec::new();
    for path in paths {
        let image = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        pending.push((module_name(&path), module_depends(&image), path));
    }
    while !pending.is_empty() {
        let waits = |deps: &Vec<String>| {
            deps.iter()
                .any(|d| pending.iter().any(|(name, ..)| name == d))
        };
        let Some(next) = pending.iter().position(|(_, deps, _)| !waits(deps)) else {
            return Err(format!(
                "modules depend on each other: {}",
                pending[0].2.display()
            ));
        };
        let (_, _, path) = pending.remove(next);
        load_module(cmdline, &path).map_err(|e| format!("loading {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A module's name as modinfo and the kernel write it: `-` is `_`.
fn module_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    stem.replace('-', "_")
}

/// The modules the `depends=` entry of a module image's `.modinfo` names.
fn module_depends(image: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = image.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let value = &image[at + KEY.len()..];
    let value = &value[..value.iter().position(|&b| b == 0).unwrap_or(value.len())];
    String::from_utf8_lossy(value)
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.replace('-', "_"))
        .collect()
}

fn load_module(cmdline: &str, path: &Path) -> io::Result<()> {
    let prefix = format!("{}.", module_name(path));
    let params: Vec<&str> = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&prefix))
        .collect();
    let params = CString::new(params.join(" ")).map_err(io::Error::other)?;
    let file = File::open(path)?;
    // SAFETY: the descriptor is open for the duration of the call and
    // `params` is a NUL-terminated string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            0usize,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mount(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    fs::create_dir_all(target)?;
    let c = |s: &str| CString::new(s).expect("no NUL in constant mount arguments");
    let (source, target, fstype) = (c(source), c(target), c(fstype));
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call; a null data pointer is allowed.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mount_all() -> io::Result<()> {
    mount("devtmpfs", "/dev", "devtmpfs")?;
    mount("proc", "/proc", "proc")?;
    mount("sysfs", "/sys", "sysfs")?;
    mount("debugfs", "/sys/kernel/debug", "debugfs")?;
    mount("tmpfs", "/tmp", "tmpfs")
}

/// Runs one program with its output collected in a file, then reports that
/// output line by line (so it cannot interleave with other programs').
fn run_program(index: usize, run: &Run) -> RunStatus {
    let out_path = format!("/tmp/lu-run-{index}.out");
    let spawned = File::create(&out_path).and_then(|out| {
        Command::new(resolve(&run.argv[0]))
            .args(&run.argv[1..])
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            report(Event::Out {
                index,
                line: format!("cannot start {}: {e}", run.argv[0]),
            });
            return RunStatus::Code(127);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(run.timeout_secs.into());
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                break st.code().map_or_else(
                    || RunStatus::Signal(st.signal().unwrap_or(0)),
                    RunStatus::Code,
                )
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                // SAFETY: kill(2) on our child's process group has no memory effects.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break RunStatus::Timeout;
            }
        }
    };
    let output = fs::read(&out_path).unwrap_or_default();
    for line in String::from_utf8_lossy(&output).lines() {
        report(Event::Out {
            index,
            line: line.to_string(),
        });
    }
    let _ = fs::remove_file(&out_path);
    status
}

/// The program's path, looked up in [`PATH`] here rather than by std (see
/// the comment on the working directory in `main`).
fn resolve(program: &str) -> String {
    if program.contains('/') {
        return program.to_string();
    }
    PATH.split(':')
        .map(|dir| format!("{dir}/{program}"))
        .find(|p| Path::new(p).is_file())
        .unwrap_or_else(|| program.to_string())
}

/// Packs the root file system (not what is mounted on it) as the next
/// kernel's initramfs, so every stage starts from the same files.
fn pack_rootfs(out: &str) -> io::Result<()> {
    let root_dev = fs::metadata("/")?.dev();
    let mut w = cpio::Writer::new(io::BufWriter::new(File::create(out)?));
    pack_dir(&mut w, Path::new("/"), root_dev)?;
    // /dev is a devtmpfs mount; the kernel needs this node before init runs.
    w.char_dev("/dev/console", 0o600, 5, 1)?;
    w.finish()?.flush()
}

fn pack_dir<W: Write>(w: &mut cpio::Writer<W>, dir: &Path, root_dev: u64) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = path.to_string_lossy();
        let meta = fs::symlink_metadata(&path)?;
        let perm = meta.permissions().mode() & 0o7777;
        let ty = meta.file_type();
        if ty.is_dir() {
            w.dir(&name, perm)?;
            if meta.dev() == root_dev {
                pack_dir(w, &path, root_dev)?;
            }
        } else if ty.is_symlink() {
            w.symlink(&name, &fs::read_link(&path)?.to_string_lossy())?;
        } else if ty.is_file() {
            w.file(&name, perm, &fs::read(&path)?)?;
        } else if ty.is_char_device() {
            let rdev = meta.rdev();
            w.char_dev(&name, perm, libc::major(rdev), libc::minor(rdev))?;
        }
    }
    Ok(())
}

/// Loads the kernel of stage `to` (`stage`) and kexecs into it. The kexec is reported once
/// the kernel is loaded, right before the reboot, so the host times the Live Update itself.
fn kexec(to: usize, stage: &plan::Stage) -> Result<(), String> {
    const INITRD: &str = "/tmp/lu-initrd.cpio";
    pack_rootfs(INITRD).map_err(|e| format!("packing the initramfs: {e}"))?;
    let image = plan::kernel_image(stage.kernel.as_deref());
    let kernel = File::open(&image).map_err(|e| format!("{image}: {e}"))?;
    let initrd = File::open(INITRD).map_err(|e| format!("{INITRD}: {e}"))?;
    let cmdline =
        CString::new(stage.cmdline.as_str()).map_err(|_| "NUL in the command line".to_string())?;
    let len = cmdline.as_bytes_with_nul().len();
    // SAFETY: both descriptors are open for the duration of the call and
    // `cmdline` is a NUL-terminated buffer of `len` bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd.as_raw_fd(),
            len,
            cmdline.as_ptr(),
            0usize,
        )
    };
    if rc != 0 {
        return Err(format!("kexec_file_load: {}", io::Error::last_os_error()));
    }
    // SAFETY: sync(2) takes no arguments.
    unsafe { libc::sync() };
    report(Event::Kexec { to });
    // SAFETY: reboot(2) takes no pointers.
    unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_KEXEC) };
    Err(format!("reboot(KEXEC): {}", io::Error::last_os_error()))
}

fn shell() {
    println!("lu-init: busybox shell; 'poweroff -f' or Ctrl-D leaves the VM");
    let _ = Command::new("/bin/busybox")
        .args(["setsid", "cttyhack", "/bin/sh", "-l"])
        .env("PATH", PATH)
        .env("HOME", "/tmp")
        .env("PS1", "lu-vm# ")
        .status();
}

fn power_off() -> ! {
    // SAFETY: sync(2) and reboot(2) take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF);
    }
    // Power off failed: PID 1 must not return.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_depend_on_what_their_modinfo_names() {
        let image = b"\x7fELF...\0license=GPL\0depends=vfio,vfio-pci-core\0vermagic=7.3\0";
        assert_eq!(module_depends(image), ["vfio", "vfio_pci_core"]);
        assert!(module_depends(b"\0depends=\0name=vfio\0").is_empty());
        assert!(module_depends(b"\0name=irqbypass\0").is_empty());
        assert_eq!(
            module_name(Path::new("/lu/modules/vfio-pci.ko")),
            "vfio_pci"
        );
    }
}
