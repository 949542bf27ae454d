// SPDX-License-Identifier: GPL-2.0

//! Cross-kexec test of the Rust Live Update abstractions.
//!
//! Files opened on `/dev/rust_luo_test` carry a value set with an ioctl. The file handler
//! preserves that value in KHO memory, and a test FLB, preserved with the first such file,
//! counts the files preserved. After the kexec, retrieving the file gives back the value and
//! the FLB count: `tools/testing/selftests/rust_liveupdate` checks both.
//!
//! LUO's retrieve must produce a `struct file`; since there is no Rust API that creates one,
//! the test device "parks" the file opened last, and retrieve hands that file back. Userspace
//! opens the device right before it retrieves.

use kernel::{
    fs::File,
    ioctl::_IO,
    kho::{Incoming, KhoMem, Outgoing},
    liveupdate::{FileHandler, Flb, FlbOps, Handle, Preservation, Registration, RetrieveStatus},
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex, pci,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex, SetOnce},
};

module! {
    type: RustLiveupdateTest,
    name: "liveupdate_rust_test",
    authors: ["Rust Live Update developers"],
    description: "Cross-kexec test of the Rust Live Update abstractions",
    license: "GPL",
}

/// Sets the value of a test file (argument: the value).
const SET_VALUE: u32 = _IO(b'L' as u32, 0x70);
/// Returns the value of a test file.
const GET_VALUE: u32 = _IO(b'L' as u32, 0x71);
/// Returns how many files the FLB counted when the previous kernel preserved them.
const GET_FLB_FILES: u32 = _IO(b'L' as u32, 0x72);
/// Returns how many files the outgoing FLB counts now; `ENOENT` when it is not preserved.
const GET_FLB_OUTGOING_FILES: u32 = _IO(b'L' as u32, 0x73);
/// Names the PCI device the file stands for (argument: domain << 16 | bus << 8 | devfn).
const SET_PCI_DEVICE: u32 = _IO(b'L' as u32, 0x74);
/// Returns whether the file's PCI device is incoming (1) or not (0); `ENODEV` without one.
const GET_PCI_INCOMING: u32 = _IO(b'L' as u32, 0x75);
/// Makes the handler leave the file's PCI device unfinished when the session finishes.
const LEAVE_UNFINISHED: u32 = _IO(b'L' as u32, 0x76);
/// Makes the handler's freeze of the file fail with `ECANCELED`, which cancels the kexec after
/// the files preserved before it were frozen: how tests reach the unfreeze of other handlers.
const FAIL_FREEZE: u32 = _IO(b'L' as u32, 0x77);
const FILE_MAGIC: u64 = 0x7275_7374_6669_6c65; // "rustfile"
const FLB_MAGIC: u64 = 0x7275_7374_5f66_6c62; // "rust_flb"

/// Preserved memory for `words` u64 words, the first of them `magic`.
fn alloc_tagged(magic: u64, words: usize) -> Result<KhoMem<Outgoing>> {
    let mut mem = KhoMem::alloc_preserve(words * core::mem::size_of::<u64>())?;
    *mem.view_mut::<u64>(0)? = magic;
    Ok(mem)
}

/// The memory the previous kernel handed over at `handle`, if it starts with `magic`.
fn restore_tagged(handle: Handle, magic: u64) -> Result<KhoMem<Incoming>> {
    let mem = handle.restore()?;
    if *mem.view::<u64>(0)? != magic {
        pr_err!(
            "bad magic in the handed-over memory at {:#x}\n",
            handle.raw()
        );
        return Err(EINVAL);
    }
    Ok(mem)
}

/// An open test file.
struct TestFile {
    /// The address of its `struct file`.
    key: usize,
    value: u64,
    pci: Option<ARef<pci::Device>>,
    /// Do not finish `pci` with the session, as a buggy driver would.
    leave_unfinished: bool,
    /// Refuse to freeze.
    fail_freeze: bool,
}

/// The state the device, the handler and the FLB share.
#[pin_data]
struct State {
    #[pin]
    files: Mutex<KVec<TestFile>>,
    /// The file opened last, which retrieve hands back.
    #[pin]
    parked: Mutex<Option<ARef<File>>>,
    /// The FLB's file count as retrieved in this kernel, if any.
    #[pin]
    flb_files: Mutex<Option<u64>>,
}

static STATE: SetOnce<Arc<State>> = SetOnce::new();

fn state() -> Result<&'static Arc<State>> {
    STATE.as_ref().ok_or(ENODEV)
}

fn key(file: &File) -> usize {
    file.as_ptr() as usize
}

/// Runs `f` on the record of `file`.
fn with_file<R>(file: &File, f: impl FnOnce(&mut TestFile) -> R) -> Result<R> {
    let mut files = state()?.files.lock();
    let entry = files
        .iter_mut()
        .find(|t| t.key == key(file))
        .ok_or(ENOENT)?;
    Ok(f(entry))
}

fn value_of(file: &File) -> Option<u64> {
    with_file(file, |t| t.value).ok()
}

fn pci_of(file: &File) -> Option<ARef<pci::Device>> {
    with_file(file, |t| t.pci.clone()).ok().flatten()
}

/// The address the selftest passes: domain << 16 | bus << 8 | devfn.
fn pci_address(dev: &pci::Device) -> u64 {
    u64::from(dev.domain_nr()) << 16 | u64::from(dev.dev_id())
}

fn pci_device_at(address: u64) -> Result<ARef<pci::Device>> {
    let domain = u32::try_from(address >> 16).map_err(|_| EINVAL)?;
    pci::Device::get(domain, (address >> 8) as u8, address as u8).ok_or(ENODEV)
}

struct TestDevice;

#[vtable]
impl MiscDevice for TestDevice {
    type Ptr = ();

    fn open(file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<()> {
        let state = state()?;
        let record = TestFile {
            key: key(file),
            value: 0,
            pci: None,
            leave_unfinished: false,
            fail_freeze: false,
        };
        state.files.lock().push(record, GFP_KERNEL)?;
        *state.parked.lock() = Some(ARef::from(file));
        Ok(())
    }

    fn release(_device: (), file: &File) {
        if let Ok(state) = state() {
            state.files.lock().retain(|t| t.key != key(file));
        }
    }

    fn ioctl(_device: (), file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            SET_VALUE => with_file(file, |t| t.value = arg as u64).map(|()| 0),
            SET_PCI_DEVICE => {
                let dev = pci_device_at(arg as u64)?;
                with_file(file, |t| t.pci = Some(dev)).map(|()| 0)
            }
            LEAVE_UNFINISHED => with_file(file, |t| t.leave_unfinished = true).map(|()| 0),
            FAIL_FREEZE => with_file(file, |t| t.fail_freeze = true).map(|()| 0),
            GET_PCI_INCOMING => {
                let dev = pci_of(file).ok_or(ENODEV)?;
                Ok(isize::from(dev.liveupdate_is_incoming()))
            }
            GET_VALUE => value_of(file).map(|v| v as isize).ok_or(ENOENT),
            GET_FLB_FILES => state()?.flb_files.lock().map(|n| n as isize).ok_or(ENODATA),
            GET_FLB_OUTGOING_FILES => {
                let flb = TEST_FLB.outgoing()?;
                let obj = flb.get();
                let files = *obj.mem.lock().view::<u64>(8)?;
                Ok(files as isize)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The test FLB in the outgoing kernel: its KHO memory holds the magic and the file count.
#[pin_data]
struct FlbOut {
    #[pin]
    mem: Mutex<KhoMem<Outgoing>>,
}

/// The test FLB rebuilt in the incoming kernel.
struct FlbIn {
    files: u64,
    _mem: KhoMem<Incoming>,
}

struct TestFlb;

#[vtable]
impl FlbOps for TestFlb {
    type Outgoing = Pin<KBox<FlbOut>>;
    type Incoming = KBox<FlbIn>;

    fn preserve() -> Result<(Handle, Self::Outgoing)> {
        let mem = alloc_tagged(FLB_MAGIC, 2)?;
        let handle = Handle::of(&mem);
        let obj = KBox::pin_init(pin_init!(FlbOut { mem <- new_mutex!(mem) }), GFP_KERNEL)?;
        Ok((handle, obj))
    }

    fn unpreserve(_handle: Handle, _obj: Self::Outgoing) {}

    fn retrieve(handle: Handle) -> Result<Self::Incoming> {
        let mem = restore_tagged(handle, FLB_MAGIC)?;
        let files = *mem.view::<u64>(8)?;
        Ok(KBox::new(FlbIn { files, _mem: mem }, GFP_KERNEL)?)
    }

    fn finish(obj: Self::Incoming) {
        pr_info!("test FLB: finished ({} files)\n", obj.files);
    }
}

static TEST_FLB: Flb<TestFlb> = Flb::new(c"rust-luo-test-flb-v1");

/// Adds `delta` to the file count kept in the outgoing FLB memory.
fn count_flb_file(delta: i64) -> Result {
    let flb = TEST_FLB.outgoing()?;
    let obj = flb.get();
    let mut mem = obj.mem.lock();
    let files = mem.view_mut::<u64>(8)?;
    *files = files.checked_add_signed(delta).ok_or(EINVAL)?;
    Ok(())
}

struct TestHandler;

#[vtable]
impl FileHandler for TestHandler {
    type Preserved = KBox<KhoMem<Outgoing>>;

    fn can_preserve(file: &File) -> bool {
        value_of(file).is_some()
    }

    fn preserve(file: &File) -> Result<Preservation<Self::Preserved>> {
        let value = value_of(file).ok_or(EINVAL)?;
        let pci = pci_of(file);
        let mut mem = alloc_tagged(FILE_MAGIC, 3)?;
        *mem.view_mut::<u64>(8)? = value;
        // The PCI address, plus one: 0 means no device.
        *mem.view_mut::<u64>(16)? = pci.as_ref().map_or(0, |d| pci_address(d) + 1);
        if let Some(dev) = &pci {
            dev.liveupdate_preserve()?;
        }
        if let Err(e) = count_flb_file(1) {
            if let Some(dev) = &pci {
                let _ = dev.liveupdate_unpreserve();
            }
            return Err(e);
        }
        Ok(Preservation {
            handle: Handle::of(&mem),
            state: KBox::new(mem, GFP_KERNEL)?,
        })
    }

    fn unpreserve(file: &File, _handle: Handle, _state: Self::Preserved) {
        if let Some(dev) = pci_of(file) {
            if dev.liveupdate_unpreserve().is_err() {
                pr_err!("test handler: the PCI core lost a preserved device\n");
            }
        }
        if count_flb_file(-1).is_err() {
            pr_err!("test handler: FLB gone before its last file\n");
        }
    }

    fn freeze(file: &File, _state: &KhoMem<Outgoing>, _handle: &mut Handle) -> Result {
        if with_file(file, |t| t.fail_freeze)? {
            pr_info!("test handler: refusing to freeze, as asked\n");
            return Err(ECANCELED);
        }
        Ok(())
    }

    fn retrieve(handle: Handle) -> Result<ARef<File>> {
        let mem = restore_tagged(handle, FILE_MAGIC)?;
        let value = *mem.view::<u64>(8)?;
        let pci = match *mem.view::<u64>(16)? {
            0 => None,
            address => Some(pci_device_at(address - 1)?),
        };
        // Taken back by this handler: the PCI core must not release it.
        if let Some(dev) = &pci {
            dev.liveupdate_claim()?;
        }
        let flb = TEST_FLB.incoming()?;
        let state = state()?;
        *state.flb_files.lock() = Some(flb.get().files);
        let file = state.parked.lock().take().ok_or(ENOENT)?;
        with_file(&file, |t| {
            t.value = value;
            t.pci = pci;
        })?;
        Ok(file)
    }

    fn finish(file: Option<&File>, handle: Handle, status: RetrieveStatus) {
        // Never retrieved: the memory is still ours to free.
        if status == RetrieveStatus::NotAttempted {
            drop(handle.restore());
        }
        let leave = file.and_then(|f| with_file(f, |t| t.leave_unfinished).ok());
        if leave == Some(true) {
            return;
        }
        if let Some(dev) = file.and_then(pci_of) {
            if let Err(e) = dev.liveupdate_finish() {
                pr_err!("test handler: finishing the PCI device: {:?}\n", e);
            }
        }
    }
}

#[pin_data]
struct RustLiveupdateTest {
    #[pin]
    device: MiscDeviceRegistration<TestDevice>,
    #[pin]
    handler: Registration<TestHandler>,
}

impl kernel::InPlaceModule for RustLiveupdateTest {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            device <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"rust_luo_test",
            }),
            handler <- Registration::new(c"rust-luo-test-v1"),
        })
        .pin_chain(|this| {
            let state = Arc::pin_init(
                pin_init!(State {
                    files <- new_mutex!(KVec::new()),
                    parked <- new_mutex!(None),
                    flb_files <- new_mutex!(None),
                }),
                GFP_KERNEL,
            )?;
            if !STATE.populate(state) {
                return Err(EBUSY);
            }
            this.handler.add_flb(&TEST_FLB)?;
            pci::liveupdate::register_flb(&this.handler)
        })
    }
}
