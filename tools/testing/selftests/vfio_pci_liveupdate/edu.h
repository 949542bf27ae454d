/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The registers of QEMU's edu device (1234:11e8) the vfio-pci Live Update
 * selftests use through BAR 0 of a bound device file: one that keeps what is
 * written to it, and its interrupt, raised on request and held until
 * acknowledged (INTx, or MSI once enabled).
 */
#ifndef VFIO_LU_EDU_H
#define VFIO_LU_EDU_H

#include "vfio_lu_device.h"

#define EDU_RAISE_IRQ		0x60
#define EDU_ACK_IRQ		0x64
#define EDU_DMA_SRC		0x80

/* Raises the interrupt of the edu behind @fd; 0 or -1. */
static inline int edu_raise(int fd)
{
	__u32 status = 1;

	return bar0_rw32(fd, 1, &status, EDU_RAISE_IRQ);
}

/* Acknowledges the interrupt of the edu behind @fd; 0 or -1. */
static inline int edu_ack(int fd)
{
	__u32 status = 1;

	return bar0_rw32(fd, 1, &status, EDU_ACK_IRQ);
}

/*
 * Makes the device raise its interrupt, which vfio delivers as @index; 1 if
 * it reaches @efd within 2 s. INTx is acknowledged in the device and
 * unmasked in vfio for the next one.
 */
static inline int edu_interrupt_arrives(int fd, __u32 index, int efd)
{
	int got;

	if (edu_raise(fd))
		return 0;
	got = eventfd_fired(efd, 2000);
	edu_ack(fd);
	if (index == VFIO_PCI_INTX_IRQ_INDEX &&
	    set_irqs(fd, index, VFIO_IRQ_SET_ACTION_UNMASK, -1))
		return 0;
	return got;
}

#endif /* VFIO_LU_EDU_H */
