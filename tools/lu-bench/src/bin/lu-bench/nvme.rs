// SPDX-License-Identifier: GPL-2.0
//! Just enough of an NVMe controller's admin queue to have it complete a DMA: Identify
//! Controller, whose data the controller writes into memory by DMA and whose completion it posts
//! there too.
//!
//! The queues and the data page live in one [`DmaBuffer`] at a fixed IOVA, with the VMM's own
//! bookkeeping (queue positions) in its last page: kept in a memfd across a Live Update, the
//! queues the controller still points at and the positions go on where they were.

use std::time::{Duration, Instant};

use liveupdate::{DmaBuffer, Region, VfioDevice};

use crate::Result;

/// Controller registers, in BAR 0 (NVMe base specification, "Controller Registers").
const CAP: u64 = 0x00;
const CC: u64 = 0x14;
const CSTS: u64 = 0x1c;
const AQA: u64 = 0x24;
const ASQ: u64 = 0x28;
const ACQ: u64 = 0x30;
const DOORBELLS: u64 = 0x1000;

const CC_ENABLE: u32 = 1;
/// 64-byte submission and 16-byte completion entries.
const CC_ENTRY_SIZES: u32 = (6 << 16) | (4 << 20);
const CSTS_READY: u32 = 1;

const PAGE: usize = 4096;
/// Bytes of queue memory: submission queue, completion queue, data, bookkeeping.
pub const MEMORY: usize = 4 * PAGE;
const SQ: usize = 0;
const CQ: usize = PAGE;
const DATA: usize = 2 * PAGE;
const STATE: usize = 3 * PAGE;
/// Entries of each admin queue.
const ENTRIES: u16 = 16;
const IDENTIFY: u8 = 0x06;
const CNS_CONTROLLER: u32 = 1;

const TIMEOUT: Duration = Duration::from_secs(5);

/// The admin queue of one controller, in `memory` mapped at `iova`.
pub struct AdminQueue<'a> {
    pub device: &'a VfioDevice,
    pub bar: Region,
    pub memory: &'a DmaBuffer,
    pub iova: u64,
}

impl AdminQueue<'_> {
    fn wait_ready(&self, ready: bool) -> Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        while (self.device.read_u32(&self.bar, CSTS).map_err(err)? & CSTS_READY != 0) != ready {
            if Instant::now() > deadline {
                return Err(format!("CSTS.RDY not {} within {TIMEOUT:?}", ready as u8));
            }
        }
        Ok(())
    }

    /// Whether the controller is enabled and ready: true of a kept one.
    pub fn is_ready(&self) -> Result<bool> {
        let csts = self.device.read_u32(&self.bar, CSTS).map_err(err)?;
        if csts == u32::MAX {
            return Err("the controller does not answer (CSTS all ones)".into());
        }
        Ok(csts & CSTS_READY != 0)
    }

    /// Sets the controller up from scratch, as a driver does after a reset: disabled, the admin
    /// queues pointed at the queue memory, enabled.
    pub fn enable(&self) -> Result<()> {
        self.device.write_u32(&self.bar, CC, 0).map_err(err)?;
        self.wait_ready(false)?;
        let size = u32::from(ENTRIES - 1);
        self.device
            .write_u32(&self.bar, AQA, (size << 16) | size)
            .map_err(err)?;
        self.device
            .write_u64(&self.bar, ASQ, self.iova + SQ as u64)
            .map_err(err)?;
        self.device
            .write_u64(&self.bar, ACQ, self.iova + CQ as u64)
            .map_err(err)?;
        self.memory.write(CQ, &[0; PAGE]).map_err(err)?;
        self.save(0, 0, true)?;
        self.device
            .write_u32(&self.bar, CC, CC_ENTRY_SIZES | CC_ENABLE)
            .map_err(err)?;
        self.wait_ready(true)
    }

    fn save(&self, sq_tail: u16, cq_head: u16, phase: bool) -> Result<()> {
        let mut state = [0; 5];
        state[..2].copy_from_slice(&sq_tail.to_le_bytes());
        state[2..4].copy_from_slice(&cq_head.to_le_bytes());
        state[4] = phase as u8;
        self.memory.write(STATE, &state).map_err(err)
    }

    fn load(&self) -> Result<(u16, u16, bool)> {
        let mut state = [0; 5];
        self.memory.read(STATE, &mut state).map_err(err)?;
        let sq_tail = u16::from_le_bytes([state[0], state[1]]);
        let cq_head = u16::from_le_bytes([state[2], state[3]]);
        if sq_tail >= ENTRIES || cq_head >= ENTRIES || state[4] > 1 {
            return Err("the queue bookkeeping is not what this program writes".into());
        }
        Ok((sq_tail, cq_head, state[4] == 1))
    }

    /// Has the controller identify itself: one command, its data and its completion written by
    /// the controller by DMA. Returns the PCI vendor ID the data holds.
    pub fn identify(&self) -> Result<u16> {
        let (sq_tail, cq_head, phase) = self.load()?;
        let stride = 4 << ((self.device.read_u64(&self.bar, CAP).map_err(err)? >> 32) & 0xf);
        self.memory.write(DATA, &[0xff; 2]).map_err(err)?;
        let mut command = [0u8; 64];
        command[0] = IDENTIFY;
        command[2..4].copy_from_slice(&sq_tail.to_le_bytes());
        command[24..32].copy_from_slice(&(self.iova + DATA as u64).to_le_bytes());
        command[40..44].copy_from_slice(&CNS_CONTROLLER.to_le_bytes());
        self.memory
            .write(SQ + usize::from(sq_tail) * 64, &command)
            .map_err(err)?;
        let sq_tail = (sq_tail + 1) % ENTRIES;
        self.device
            .write_u32(&self.bar, DOORBELLS, sq_tail.into())
            .map_err(err)?;
        let entry = CQ + usize::from(cq_head) * 16;
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            let mut dw3 = [0; 4];
            self.memory.read(entry + 12, &mut dw3).map_err(err)?;
            let dw3 = u32::from_le_bytes(dw3);
            if (dw3 >> 16) & 1 == phase as u32 {
                break dw3 >> 17;
            }
            if Instant::now() > deadline {
                return Err(format!("no completion within {TIMEOUT:?}"));
            }
        };
        let (cq_head, phase) = match cq_head + 1 {
            ENTRIES => (0, !phase),
            next => (next, phase),
        };
        self.device
            .write_u32(&self.bar, DOORBELLS + stride, cq_head.into())
            .map_err(err)?;
        self.save(sq_tail, cq_head, phase)?;
        if status != 0 {
            return Err(format!("Identify failed with status {status:#x}"));
        }
        let mut vendor = [0; 2];
        self.memory.read(DATA, &mut vendor).map_err(err)?;
        Ok(u16::from_le_bytes(vendor))
    }
}

fn err(e: liveupdate::Error) -> String {
    e.to_string()
}
