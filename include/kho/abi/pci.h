/* SPDX-License-Identifier: GPL-2.0 */

/**
 * DOC: PCI Live Update ABI
 *
 * What the PCI core of one kernel hands to the next about the PCI devices
 * preserved across a Live Update, through the File-Lifecycle-Bound object
 * named PCI_LUO_FLB_COMPATIBLE. The FLB's u64 handle is the physical
 * address of a struct pci_ser in KHO memory; pci_ser.devices is the physical
 * address of the first block of a KHO block set (see
 * <linux/kho/abi/block.h>) of struct pci_dev_ser entries.
 *
 * The layout is the one proposed upstream for the C PCI core, on purpose:
 * a kernel with that core and a kernel with this one read each other's
 * state. All fields are little-endian. No field may move, change size or
 * change meaning without a new PCI_LUO_FLB_VERSION; a kernel rejects state
 * of any version but its own, as a whole. The header's version and devices
 * fields keep their place and meaning in every version, so that a kernel
 * rejecting a version still frees the entry blocks.
 *
 * The Rust codec of this layout is drivers/pci/liveupdate/abi.rs; the kernel
 * build asserts its sizes and offsets against the ones asserted below.
 */

#ifndef _LINUX_KHO_ABI_PCI_H
#define _LINUX_KHO_ABI_PCI_H

#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <linux/types.h>

#define PCI_LUO_FLB_COMPATIBLE	"pci"
#define PCI_LUO_FLB_VERSION	2

/**
 * struct pci_ser - The header of the preserved PCI state.
 * @version:    PCI_LUO_FLB_VERSION of the kernel that wrote it.
 * @nr_devices: Number of entries in use (non-zero refcount).
 * @devices:    Physical address of the first block of entries, 0 if none.
 */
struct pci_ser {
	__le32 version;
	__le32 nr_devices;
	__le64 devices;
} __packed;

/**
 * struct pci_dev_ser - One preserved device or bridge.
 * @domain:   PCI domain (segment); 32 bits because VMD domains start at
 *            0x10000. Linux never uses more than 31.
 * @bdf:      Bus number in bits 15:8, device in 7:3, function in 2:0.
 * @refcount: Preserved devices at or below this one: 1 for an endpoint,
 *            the number of preserved devices below for a bridge. 0 marks a
 *            free slot, which readers skip.
 */
struct pci_dev_ser {
	__le32 domain;
	__le16 bdf;
	__le16 refcount;
} __packed;

static_assert(sizeof(struct pci_ser) == 16);
static_assert(offsetof(struct pci_ser, devices) == 8);
static_assert(sizeof(struct pci_dev_ser) == 8);
static_assert(offsetof(struct pci_dev_ser, refcount) == 6);

#endif /* _LINUX_KHO_ABI_PCI_H */
