// SPDX-License-Identifier: GPL-2.0
//! A VMM-like program that keeps devices across a Live Update, with the `liveupdate` crate:
//! what `make demo` runs in the guest.
//!
//! `lu-demo preserve` binds QEMU's edu device through its vfio cdev and iommufd, maps a DMA
//! buffer, has the device copy a pattern from it into its own memory by DMA and writes a device
//! register. It sets up two identical igb NICs the same way (bus mastering on, a register whose
//! reset value shows written), and preserves the edu's file, a memfd with what it expects, and
//! the file of one igb in a Live Update session, which a child process keeps open through the
//! kexec. The other igb is the control: not kept.
//!
//! `lu-demo restore`, in the next kernel, retrieves the edu's file, binds it and maps a new DMA
//! buffer, and checks that bus mastering is still on, that the register kept its value and that
//! the device's memory still holds the pattern, read back by DMA. Then side by side: the kept
//! igb is retrieved and bound, the control opened and bound (vfio-pci resets it, with the
//! 100 ms wait a function reset takes), each timed from the first call to usable, and each
//! checked: register and bus mastering kept, or back to their reset values.
//!
//! Results are KTAP. Lines starting with `# report:` make the report `make demo` prints, with
//! every check and its outcome; `lu-mark:` lines in the kernel log put the steps on the host's
//! timeline of the update.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use liveupdate::{
    DmaBuffer, DmaStops, DmaThroughUpdate, Ioas, Iommufd, LiveUpdate, Session, VfioDevice,
    CONFIG_REGION,
};

const DEVICE: &str = "0000:01:00.0";
const KEPT_IGB: &str = "0000:02:00.0";
const CONTROL_IGB: &str = "0000:03:00.0";
const SESSION: &str = "lu-demo";
const DEVICE_TOKEN: u64 = 1;
const STATE_TOKEN: u64 = 2;
const IGB_TOKEN: u64 = 3;

/// The edu device's registers (QEMU docs/specs/edu.rst), in BAR 0.
mod edu {
    pub const ID: u64 = 0x00;
    pub const LIVENESS: u64 = 0x04;
    pub const DMA_SRC: u64 = 0x80;
    pub const DMA_DST: u64 = 0x88;
    pub const DMA_COUNT: u64 = 0x90;
    pub const DMA_CMD: u64 = 0x98;
    pub const DMA_START: u64 = 1;
    pub const DMA_TO_RAM: u64 = 2;
    /// Where the device's own memory is, in its DMA address space.
    pub const BUFFER: u64 = 0x40000;
    /// The identification register of an edu device: 0xMMmm00ed.
    pub const ID_MAGIC: u32 = 0xed;
}

/// The igb's (82576) Receive Long Packet Maximum Length: a function reset sets it back to
/// 0x2600, and the receive path ignores it unless long packets are enabled.
mod igb {
    pub const RLPML: u64 = 0x5004;
    pub const RLPML_RESET: u32 = 0x2600;
    pub const RLPML_SET: u32 = 0x1234;
}

const IOVA: u64 = 0x10_0000;
const PATTERN_LEN: usize = 64;
const LIVENESS_VALUE: u32 = 0x1ace_0ff5;
const PCI_COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 0x2;
const COMMAND_MASTER: u16 = 0x4;

type Result<T> = std::result::Result<T, String>;

/// KTAP results, with the report lines.
struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    fn new(plan: usize) -> Self {
        println!("KTAP version 1\n1..{plan}");
        Self { n: 0, failed: 0 }
    }

    /// A check, in the KTAP results and in the report with its outcome.
    fn check(&mut self, what: &str, result: Result<()>) {
        self.n += 1;
        match result {
            Ok(()) => {
                println!("ok {} {what}", self.n);
                self.report(&format!("check ok:     {what}"));
            }
            Err(e) => {
                println!("not ok {} {what}\n# {e}", self.n);
                self.report(&format!("check FAILED: {what}: {e}"));
                self.failed += 1;
            }
        }
    }

    fn report(&self, line: &str) {
        println!("# report: {line}");
    }
}

fn err(e: liveupdate::Error) -> String {
    e.to_string()
}

/// The physical command register of `pci`, read through sysfs: what vfio shows could hide it.
fn physical_command(pci: &str) -> Result<u16> {
    let file =
        File::open(format!("/sys/bus/pci/devices/{pci}/config")).map_err(|e| e.to_string())?;
    let mut b = [0; 2];
    file.read_exact_at(&mut b, PCI_COMMAND)
        .map_err(|e| e.to_string())?;
    Ok(u16::from_le_bytes(b))
}

/// Runs one DMA of `PATTERN_LEN` bytes between IOVA and the device's memory.
fn dma(device: &VfioDevice, to_ram: bool) -> Result<()> {
    let bar = device.region(0).map_err(err)?;
    let (src, dst) = if to_ram {
        (edu::BUFFER, IOVA)
    } else {
        (IOVA, edu::BUFFER)
    };
    device.write_u64(&bar, edu::DMA_SRC, src).map_err(err)?;
    device.write_u64(&bar, edu::DMA_DST, dst).map_err(err)?;
    device
        .write_u64(&bar, edu::DMA_COUNT, PATTERN_LEN as u64)
        .map_err(err)?;
    let cmd = edu::DMA_START | if to_ram { edu::DMA_TO_RAM } else { 0 };
    device.write_u64(&bar, edu::DMA_CMD, cmd).map_err(err)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while device.read_u64(&bar, edu::DMA_CMD).map_err(err)? & edu::DMA_START != 0 {
        if Instant::now() > deadline {
            return Err("the DMA did not complete within 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Whether `pci` has bus mastering on in the device itself.
fn bus_master(pci: &str) -> Result<bool> {
    Ok(physical_command(pci)? & COMMAND_MASTER != 0)
}

/// Turns on memory decoding and bus mastering of `device` (at `pci`) through vfio.
fn enable_master(device: &VfioDevice, pci: &str) -> Result<()> {
    let config = device.region(CONFIG_REGION).map_err(err)?;
    let mut b = [0; 2];
    device.read(&config, PCI_COMMAND, &mut b).map_err(err)?;
    let command = u16::from_le_bytes(b) | COMMAND_MEMORY | COMMAND_MASTER;
    device
        .write(&config, PCI_COMMAND, &command.to_le_bytes())
        .map_err(err)?;
    match bus_master(pci)? {
        false => Err("bus mastering is off in the device".into()),
        true => Ok(()),
    }
}

/// An igb's RLPML register.
fn rlpml(device: &VfioDevice) -> Result<u32> {
    let bar = device.region(0).map_err(err)?;
    device.read_u32(&bar, igb::RLPML).map_err(err)
}

/// Opens and binds the igb at `pci` and sets it up as the VMM would: bus mastering on, RLPML
/// written.
fn set_up_igb(pci: &str) -> Result<(VfioDevice, Iommufd, DmaBuffer)> {
    let device = VfioDevice::open(pci).map_err(err)?;
    let (iommufd, _ioas, buffer) = bind(&device)?;
    enable_master(&device, pci)?;
    let bar = device.region(0).map_err(err)?;
    device
        .write_u32(&bar, igb::RLPML, igb::RLPML_SET)
        .map_err(err)?;
    Ok((device, iommufd, buffer))
}

/// Binds `device` to a new IOAS with a DMA buffer mapped at `IOVA`.
fn bind(device: &VfioDevice) -> Result<(Iommufd, Ioas, DmaBuffer)> {
    let iommufd = Iommufd::open().map_err(err)?;
    let ioas = iommufd.alloc_ioas().map_err(err)?;
    device.bind(&iommufd).map_err(err)?;
    device.attach(ioas).map_err(err)?;
    let buffer = DmaBuffer::new(2 * PATTERN_LEN).map_err(err)?;
    iommufd.map(ioas, &buffer, IOVA).map_err(err)?;
    Ok((iommufd, ioas, buffer))
}

fn pattern() -> Vec<u8> {
    let seed = std::process::id();
    (0..PATTERN_LEN)
        .map(|i| (i as u32 * 37 + seed) as u8)
        .collect()
}

fn memfd_with(data: &[u8]) -> Result<OwnedFd> {
    let mut file = guest::memfd(c"lu-demo-state").map_err(|e| e.to_string())?;
    file.write_all(data).map_err(|e| e.to_string())?;
    Ok(file.into())
}

/// The state the kernel says it recorded for `pci` at its preserve.
fn preserved_size(pci: &str) -> String {
    guest::kmsg::after(&format!("{pci}: preserved for Live Update: "))
        .unwrap_or_else(|| "size not in the kernel log".into())
}

fn preserve() -> ExitCode {
    let mut tap = Tap::new(6);
    let device = match VfioDevice::open(DEVICE) {
        Ok(d) => d,
        Err(e) => {
            tap.check("open the edu's vfio cdev", Err(err(e)));
            return ExitCode::FAILURE;
        }
    };
    let (iommufd, _ioas, buffer) = match bind(&device) {
        Ok(b) => {
            tap.check(
                "bind the edu to iommufd, attach an IOAS, map a DMA buffer",
                Ok(()),
            );
            b
        }
        Err(e) => {
            tap.check(
                "bind the edu to iommufd, attach an IOAS, map a DMA buffer",
                Err(e),
            );
            return ExitCode::FAILURE;
        }
    };
    let (Ok(bar), Ok(config)) = (device.region(0), device.region(CONFIG_REGION)) else {
        tap.check("find BAR 0 and the config space", Err("no region".into()));
        return ExitCode::FAILURE;
    };
    let id = device.read_u32(&bar, edu::ID).unwrap_or(0);
    tap.report(&format!(
        "device: {DEVICE}, QEMU edu (ID register {id:#010x}), bound through iommufd; \
         BAR 0 {} KiB, config space {} bytes",
        bar.size / 1024,
        config.size
    ));
    tap.check(
        "turn on the edu's memory decoding and bus mastering",
        enable_master(&device, DEVICE),
    );
    let pattern = pattern();
    tap.check(
        "program the edu: DMA a pattern into its memory, write a register",
        (|| {
            if id & 0xff != edu::ID_MAGIC {
                return Err(format!("not an edu device (ID {id:#x})"));
            }
            buffer.write(0, &pattern).map_err(err)?;
            dma(&device, false)?;
            device
                .write_u32(&bar, edu::LIVENESS, LIVENESS_VALUE)
                .map_err(err)?;
            Ok(())
        })(),
    );
    let igbs = set_up_igb(KEPT_IGB).and_then(|kept| Ok((kept, set_up_igb(CONTROL_IGB)?)));
    let Ok((kept_igb, control_igb)) = igbs else {
        tap.check(
            "set up two igbs the same way",
            Err(igbs.err().unwrap_or_default()),
        );
        return ExitCode::FAILURE;
    };
    tap.check(
        &format!(
            "set up the igbs {KEPT_IGB} and {CONTROL_IGB} the same way: bus mastering on, \
             RLPML {:#x}",
            igb::RLPML_SET
        ),
        Ok(()),
    );
    let luo = LiveUpdate::open();
    let session = luo.as_ref().map_err(|e| e.to_string()).and_then(|luo| {
        let session = luo.create_session(SESSION).map_err(err)?;
        session
            .preserve(device.as_fd(), DEVICE_TOKEN)
            .map_err(err)?;
        let state = memfd_with(&pattern)?;
        session.preserve(state.as_fd(), STATE_TOKEN).map_err(err)?;
        session
            .preserve(kept_igb.0.as_fd(), IGB_TOKEN)
            .map_err(err)?;
        Ok((session, state))
    });
    let Ok((session, state)) = session else {
        tap.check("preserve the files", Err(session.err().unwrap_or_default()));
        return ExitCode::FAILURE;
    };
    tap.check(
        &format!(
            "preserve the edu's file, the expected state and {KEPT_IGB}'s file in session \
             {SESSION}; {CONTROL_IGB} is not kept"
        ),
        Ok(()),
    );
    tap.check(
        "ask whether the edu's DMA goes on through the update: no, its DMA buffer is not kept \
         memory (VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA), so it is quiesced at the kexec",
        device
            .dma_through_update()
            .map_err(err)
            .and_then(|dma| match dma {
                DmaThroughUpdate {
                    stops: Some(DmaStops::NotKept),
                    required: false,
                } => Ok(()),
                other => Err(format!("{other:?}")),
            }),
    );
    tap.report(&format!(
        "kept: the edu's file (token {DEVICE_TOKEN}): {}",
        preserved_size(DEVICE)
    ));
    tap.report(&format!(
        "kept: a memfd with the {PATTERN_LEN}-byte pattern the edu holds (token {STATE_TOKEN})"
    ));
    tap.report(&format!(
        "kept: the igb {KEPT_IGB}'s file (token {IGB_TOKEN}): {}",
        preserved_size(KEPT_IGB)
    ));
    if tap.failed > 0 {
        return ExitCode::FAILURE;
    }
    let _ = std::io::stdout().flush();
    guest::hold_until_kexec(vec![
        Box::new(session),
        Box::new(state),
        Box::new(device),
        Box::new(iommufd),
        Box::new(buffer),
        Box::new(kept_igb),
        Box::new(control_igb),
    ]);
    ExitCode::SUCCESS
}

/// Checks that `pci`, usable through `device`, has `want_rlpml` and bus mastering `want_master`.
fn igb_state(device: &VfioDevice, pci: &str, want_rlpml: u32, want_master: bool) -> Result<()> {
    let (got, master) = (rlpml(device)?, bus_master(pci)?);
    if got != want_rlpml || master != want_master {
        let master = if master { "on" } else { "off" };
        return Err(format!("RLPML {got:#x}, bus mastering {master}"));
    }
    Ok(())
}

/// An igb bound to a new IOAS, with its DMA buffer.
type UsableIgb = ((Iommufd, Ioas, DmaBuffer), VfioDevice);

/// Gets an igb's file with `open`, binds it and attaches an IOAS: the device, and how long
/// that took from the first call.
fn igb_usable(open: impl FnOnce() -> Result<VfioDevice>) -> (Result<UsableIgb>, Duration) {
    let started = Instant::now();
    let device = open().and_then(|d| Ok((bind(&d)?, d)));
    (device, started.elapsed())
}

fn restore() -> ExitCode {
    let mut tap = Tap::new(10);
    let cdev_busy = VfioDevice::open(DEVICE).err().and_then(|e| e.errno()) == Some(libc::EBUSY);
    tap.check(
        "the edu's cdev refuses a plain open: it is waiting to be retrieved",
        if cdev_busy {
            Ok(())
        } else {
            Err("open did not fail with EBUSY".into())
        },
    );
    let retrieved = LiveUpdate::open().and_then(|luo| {
        let session = luo.retrieve_session(SESSION)?;
        guest::kmsg::mark("VMM: session retrieved");
        let device = VfioDevice::from_fd(session.retrieve(DEVICE_TOKEN)?);
        let state = session.retrieve(STATE_TOKEN)?;
        Ok((session, device, state))
    });
    let (session, device, state): (Session, VfioDevice, OwnedFd) = match retrieved {
        Ok(r) => r,
        Err(e) => {
            tap.check(
                "retrieve the session, the edu's file and the state",
                Err(err(e)),
            );
            return ExitCode::FAILURE;
        }
    };
    let (_iommufd, _ioas, buffer) = match bind(&device) {
        Ok(b) => b,
        Err(e) => {
            tap.check(
                "bind the edu's retrieved file, attach an IOAS, map a DMA buffer",
                Err(e),
            );
            return ExitCode::FAILURE;
        }
    };
    guest::kmsg::mark("VMM: edu retrieved, bound, IOAS attached");
    tap.check(
        "retrieve the edu's file, bind it, attach an IOAS, map a DMA buffer",
        Ok(()),
    );
    tap.check(
        "the edu: bus mastering back on once the IOAS is attached, memory decoding kept (sysfs)",
        physical_command(DEVICE).and_then(|c| {
            let on = COMMAND_MASTER | COMMAND_MEMORY;
            if c & on == on {
                Ok(())
            } else {
                Err(format!("command register {c:#06x}"))
            }
        }),
    );
    let bar = device.region(0).map_err(err);
    tap.check(
        "the edu's register kept its value",
        bar.as_ref().map_err(Clone::clone).and_then(|bar| {
            match device.read_u32(bar, edu::LIVENESS).map_err(err)? {
                v if v == !LIVENESS_VALUE => Ok(()),
                v => Err(format!(
                    "liveness register {v:#x}, expected {:#x}",
                    !LIVENESS_VALUE
                )),
            }
        }),
    );
    let mut expected = vec![0; PATTERN_LEN];
    let state_file = File::from(state);
    let pattern_ok = (|| {
        state_file
            .read_exact_at(&mut expected, 0)
            .map_err(|e| e.to_string())?;
        dma(&device, true)?;
        guest::kmsg::mark("VMM: first DMA through the kept edu done");
        let mut got = vec![0; PATTERN_LEN];
        buffer.read(0, &mut got).map_err(err)?;
        if got != expected {
            return Err("the device's memory does not hold the pattern".into());
        }
        Ok(())
    })();
    tap.check(
        &format!(
            "the edu's memory still holds the {PATTERN_LEN}-byte pattern, read back by DMA \
             and compared with the kept memfd"
        ),
        pattern_ok,
    );

    // Side by side: the igb kept, and the control, set up the same way but not kept.
    let (kept, kept_time) = igb_usable(|| {
        session
            .retrieve(IGB_TOKEN)
            .map_err(err)
            .map(VfioDevice::from_fd)
    });
    guest::kmsg::mark("VMM: kept igb retrieved, bound, IOAS attached");
    let (control, control_time) = igb_usable(|| VfioDevice::open(CONTROL_IGB).map_err(err));
    guest::kmsg::mark("VMM: control igb opened (reset), bound, IOAS attached");
    for (what, pci, device) in [
        ("retrieve its file", KEPT_IGB, &kept),
        ("open its cdev", CONTROL_IGB, &control),
    ] {
        tap.check(
            &format!("the igb {pci}: {what}, bind it, attach an IOAS"),
            device.as_ref().map(|_| ()).map_err(Clone::clone),
        );
    }
    for (what, pci, device, rlpml, master) in [
        ("kept its state", KEPT_IGB, &kept, igb::RLPML_SET, true),
        ("was reset", CONTROL_IGB, &control, igb::RLPML_RESET, false),
    ] {
        tap.check(
            &format!(
                "the igb {pci} {what}: RLPML {rlpml:#x}, bus mastering {}",
                if master { "on" } else { "off" }
            ),
            device
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|(_, d)| igb_state(d, pci, rlpml, master)),
        );
    }
    let shown = |device: &Result<UsableIgb>, pci: &str| match device {
        Ok((_, d)) => format!(
            "RLPML {}, bus mastering {}",
            rlpml(d).map_or_else(|e| e, |v| format!("{v:#x}")),
            bus_master(pci).map_or_else(|e| e, |m| if m { "on" } else { "off" }.into())
        ),
        Err(e) => format!("not usable: {e}"),
    };
    tap.report(&format!(
        "side by side, both set up with bus mastering on and RLPML {:#x}:",
        igb::RLPML_SET
    ));
    tap.report(&format!(
        "  kept     {KEPT_IGB}: {}; usable {:.1} ms after the VMM's first call \
         (retrieve, bind, attach; guest clock)",
        shown(&kept, KEPT_IGB),
        kept_time.as_secs_f64() * 1e3
    ));
    tap.report(&format!(
        "  not kept {CONTROL_IGB}: {}; usable {:.1} ms after the VMM's first call \
         (open with a function reset and its 100 ms wait, bind, attach; guest clock)",
        shown(&control, CONTROL_IGB),
        control_time.as_secs_f64() * 1e3
    ));
    let finished = session.finish().map_err(err);
    tap.check("finish the session", finished);
    tap.report(&format!(
        "{} of {} checks passed{}",
        tap.n - tap.failed,
        tap.n,
        if [DEVICE, KEPT_IGB].iter().all(|pci| {
            guest::kmsg::last_with(&format!("{pci}: state restored from the previous kernel"))
                .is_some()
        }) {
            "; the kernel restored the kept devices' state instead of resetting them"
        } else {
            ""
        }
    ));
    if tap.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("preserve") => preserve(),
        Some("restore") => restore(),
        _ => {
            eprintln!("usage: lu-demo preserve|restore");
            ExitCode::from(2)
        }
    }
}
