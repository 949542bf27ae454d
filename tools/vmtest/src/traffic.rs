// SPDX-License-Identifier: GPL-2.0
//! Frames from the host to a guest NIC, all the time: the network that keeps sending to a VM
//! while its host is updated.
//!
//! A scenario device with `traffic = true` gets a QEMU `dgram` netdev fed by a [`Source`]: a
//! thread of the runner that sends one Ethernet broadcast frame every [`INTERVAL`] until the
//! run ends, across every kexec of the guest. A NIC the guest set up to receive takes each
//! frame in by DMA, with no CPU involved, which is what a device does while its host is
//! between two kernels. Frames are [`FRAME_LEN`] bytes: broadcast destination, source
//! 02:4c:55:00:00:01, EtherType 0x88b5 (local experimental), [`MAGIC`], a big-endian
//! sequence number, zero padding.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What every frame carries after its Ethernet header, for the guest to recognise.
pub const MAGIC: &[u8; 10] = b"LU-TRAFFIC";

/// Bytes of a frame.
pub const FRAME_LEN: usize = 128;

/// Time between two frames.
pub const INTERVAL: Duration = Duration::from_millis(20);

const ETH_HEADER: [u8; 14] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x4c, 0x55, 0x00, 0x00, 0x01, 0x88, 0xb5,
];

/// Frame number `seq`.
pub fn frame(seq: u32) -> [u8; FRAME_LEN] {
    let mut f = [0; FRAME_LEN];
    f[..14].copy_from_slice(&ETH_HEADER);
    f[14..24].copy_from_slice(MAGIC);
    f[24..28].copy_from_slice(&seq.to_be_bytes());
    f
}

/// A thread sending frames to one QEMU netdev; stopped when dropped.
pub struct Source {
    id: String,
    qemu_port: u16,
    own_port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Source {
    /// Starts sending to a netdev named `id`, which QEMU must create with [`Source::netdev`].
    /// Frames sent before QEMU listens are lost, as on a real network.
    pub fn start(id: &str) -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        // A port free a moment ago, for QEMU to bind.
        let qemu_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let own_port = socket.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seq = 0u32;
            while !stopped.load(Ordering::Relaxed) {
                // Refused while QEMU is not listening yet: the frame is lost, as on a wire.
                let _ = socket.send_to(&frame(seq), ("127.0.0.1", qemu_port));
                seq = seq.wrapping_add(1);
                std::thread::sleep(INTERVAL);
            }
        });
        Ok(Self {
            id: id.to_string(),
            qemu_port,
            own_port,
            stop,
            thread: Some(thread),
        })
    }

    /// The `-netdev` argument: frames arrive at QEMU's port; what the guest sends goes to ours
    /// and is dropped.
    pub fn netdev(&self) -> String {
        format!(
            "dgram,id={},local.type=inet,local.host=127.0.0.1,local.port={},\
             remote.type=inet,remote.host=127.0.0.1,remote.port={}",
            self.id, self.qemu_port, self.own_port
        )
    }

    /// The netdev's name, for the device's `netdev=` property.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_of(netdev: &str, key: &str) -> u16 {
        let at = netdev.find(key).unwrap() + key.len();
        netdev[at..].split(',').next().unwrap().parse().unwrap()
    }

    #[test]
    fn frames_keep_arriving_in_order_where_qemu_listens() {
        let source = Source::start("t0").unwrap();
        let netdev = source.netdev();
        assert!(netdev.starts_with("dgram,id=t0,"));
        // Stand in for QEMU on the port the netdev names.
        let qemu = UdpSocket::bind(("127.0.0.1", port_of(&netdev, "local.port="))).unwrap();
        qemu.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 2048];
        let mut seqs = Vec::new();
        while seqs.len() < 3 {
            let (len, from) = qemu.recv_from(&mut buf).unwrap();
            assert_eq!(from.port(), port_of(&netdev, "remote.port="));
            assert_eq!(len, FRAME_LEN);
            assert_eq!(&buf[..6], &[0xff; 6]);
            assert_eq!(&buf[14..24], MAGIC);
            seqs.push(u32::from_be_bytes(buf[24..28].try_into().unwrap()));
        }
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        drop(source);
    }

    #[test]
    fn frames_are_broadcasts_of_the_documented_layout() {
        let f = frame(0x0102_0304);
        assert_eq!(&f[12..14], &[0x88, 0xb5]);
        assert_eq!(&f[24..28], &[1, 2, 3, 4]);
        assert!(f[28..].iter().all(|&b| b == 0));
    }
}
