/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The registers of QEMU's igb (Intel 82576) the vfio-pci Live Update
 * selftests use through BAR 0 of a bound device file: one whose reset shows,
 * MSI-X raising, and receive DMA; and the size of its Live Update record.
 */
#ifndef VFIO_LU_IGB_H
#define VFIO_LU_IGB_H

#include <time.h>
#include "vfio_lu_device.h"

/*
 * A function reset sets the Receive Long Packet Maximum Length back to
 * 0x2600; the receive path ignores it unless long packets are enabled.
 */
#define IGB_RLPML		0x5004
#define IGB_RLPML_RESET		0x2600

/*
 * The KHO memory of an igb's vfio-pci Live Update record: its config space up
 * to the last non-zero dword (of 4096 bytes) and its PCI state fit one page.
 */
#define IGB_RECORD_KIB		4

/* In MSI-X mode, setting a bit of EICS raises that vector. */
#define IGB_GPIE		0x1514
#define IGB_GPIE_MSIX_MODE	0x10
#define IGB_EICS		0x1520
#define IGB_EIMS		0x1524
#define IGB_EICR		0x1580

/* The link comes up once the PHY (reached through MDIC) autonegotiated. */
#define IGB_STATUS		0x0008
#define IGB_STATUS_LU		0x2
#define IGB_MDIC		0x0020
#define IGB_MDIC_PHY1_WRITE	0x04200000	/* PHY address 1, write */
#define MII_BMCR_ANRESTART_1G	0x1340	/* autoneg on and restarted, 1000 full */

/* Receive queue 0: a ring of advanced descriptors of one buffer each. */
#define IGB_RCTL		0x0100
#define IGB_RCTL_EN		0x00000002
#define IGB_RCTL_BAM		0x00008000	/* accept broadcasts */
#define IGB_RCTL_SECRC		0x04000000	/* strip the Ethernet CRC */
#define IGB_RDBAL0		0xc000
#define IGB_RDBAH0		0xc004
#define IGB_RDLEN0		0xc008
#define IGB_SRRCTL0		0xc00c
#define IGB_SRRCTL_2K		2		/* buffers of 2 KiB */
#define IGB_RDH0		0xc010
#define IGB_RDT0		0xc018
#define IGB_RXDCTL0		0xc028
#define IGB_RXDCTL_ENABLE	0x02000000
#define IGB_RX_BUF		2048

/*
 * A receive descriptor: the device reads the buffer's address and writes
 * the outcome back over the second half, whose bit 0 is Descriptor Done.
 */
struct igb_rx_desc {
	__u64 buffer;
	__u64 status;
};

#define IGB_RXD_DD		1

/* RLPML of the igb behind @fd, or 0 when unreadable. */
static inline __u32 igb_rlpml(int fd)
{
	__u32 val = 0;

	bar0_rw32(fd, 0, &val, IGB_RLPML);
	return val;
}

/* Makes the igb raise MSI-X vector 0; 1 if it reaches @efd within 2 s. */
static inline int igb_msix_arrives(int fd, int efd)
{
	__u32 gpie = IGB_GPIE_MSIX_MODE, vector0 = 1;
	int got;

	if (bar0_rw32(fd, 1, &gpie, IGB_GPIE) || bar0_rw32(fd, 1, &vector0, IGB_EIMS) ||
	    bar0_rw32(fd, 1, &vector0, IGB_EICS))
		return 0;
	got = eventfd_fired(efd, 2000);
	bar0_rw32(fd, 1, &vector0, IGB_EICR);
	return got;
}

/* Brings the link up (autonegotiation takes the model 0.5 s); 0 or -1. */
static inline int igb_link_up(int fd)
{
	__u32 mdic = MII_BMCR_ANRESTART_1G | IGB_MDIC_PHY1_WRITE, status = 0;
	struct timespec tick = { .tv_nsec = 50 * 1000 * 1000 };
	int i;

	if (bar0_rw32(fd, 0, &status, IGB_STATUS))
		return -1;
	if (!(status & IGB_STATUS_LU) && bar0_rw32(fd, 1, &mdic, IGB_MDIC))
		return -1;
	for (i = 0; i < 60 && !(status & IGB_STATUS_LU); i++) {
		nanosleep(&tick, NULL);
		if (bar0_rw32(fd, 0, &status, IGB_STATUS))
			return -1;
	}
	return status & IGB_STATUS_LU ? 0 : -1;
}

/*
 * Points receive queue 0 at the ring of @count descriptors at @ring_iova,
 * hands all but one to the device and turns reception of broadcasts on;
 * 0 or -1.
 */
static inline int igb_rx_start(int fd, __u64 ring_iova, __u32 count)
{
	__u32 lo = ring_iova, hi = ring_iova >> 32, len = count * sizeof(struct igb_rx_desc);
	__u32 srrctl = IGB_SRRCTL_2K, head = 0, tail = count - 1, rxdctl = 0;
	__u32 rctl = IGB_RCTL_EN | IGB_RCTL_BAM | IGB_RCTL_SECRC;

	if (bar0_rw32(fd, 1, &lo, IGB_RDBAL0) || bar0_rw32(fd, 1, &hi, IGB_RDBAH0) ||
	    bar0_rw32(fd, 1, &len, IGB_RDLEN0) || bar0_rw32(fd, 1, &srrctl, IGB_SRRCTL0) ||
	    bar0_rw32(fd, 1, &head, IGB_RDH0) || bar0_rw32(fd, 1, &tail, IGB_RDT0) ||
	    bar0_rw32(fd, 0, &rxdctl, IGB_RXDCTL0))
		return -1;
	rxdctl |= IGB_RXDCTL_ENABLE;
	if (bar0_rw32(fd, 1, &rxdctl, IGB_RXDCTL0))
		return -1;
	return bar0_rw32(fd, 1, &rctl, IGB_RCTL);
}

/*
 * Hands every descriptor of the @count-descriptor @ring back to the device,
 * from its head on: the first names @base, the next @base + IGB_RX_BUF, and
 * so on, @nbufs buffers round; but when @every is not 0, every @every-th
 * names @aimed instead, as a hostile guest would aim it; 0 or -1.
 */
static inline int igb_rx_refill_aimed(int fd, struct igb_rx_desc *ring, __u32 count,
				      __u64 base, __u32 nbufs, __u64 aimed, __u32 every)
{
	__u32 head, tail, i;

	if (bar0_rw32(fd, 0, &head, IGB_RDH0) || head >= count)
		return -1;
	for (i = 0; i < count; i++)
		ring[(head + i) % count] = (struct igb_rx_desc){
			.buffer = every && i % every == every - 1 ?
				  aimed : base + i % nbufs * IGB_RX_BUF,
		};
	tail = (head + count - 1) % count;
	return bar0_rw32(fd, 1, &tail, IGB_RDT0);
}

/* igb_rx_refill_aimed() with every descriptor naming a buffer. */
static inline int igb_rx_refill(int fd, struct igb_rx_desc *ring, __u32 count,
				__u64 base, __u32 nbufs)
{
	return igb_rx_refill_aimed(fd, ring, count, base, nbufs, 0, 0);
}

#endif /* VFIO_LU_IGB_H */
