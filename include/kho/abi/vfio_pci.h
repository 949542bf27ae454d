/* SPDX-License-Identifier: GPL-2.0 */

/**
 * DOC: vfio-pci Live Update ABI
 *
 * What the vfio-pci Live Update file handler of one kernel hands to the next
 * about one preserved device file: a single KHO allocation whose physical
 * address is the file's LUO handle, holding a struct vfio_pci_lu_ser header,
 * then the first cfg_stored bytes of the device's virtual config space (the
 * rest of its cfg_size bytes are zero), then its PCI saved state
 * (saved_state_size bytes).
 *
 * The PCI saved state has a format of its own, not the kernel's in-memory
 * struct pci_saved_state: the 16 dwords of the standard config header, then
 * capability records (struct vfio_pci_lu_cap followed by size bytes of data,
 * the registers as the PCI core saved them, 16 or 32 bits each),
 * ended by a record whose size is 0, which is the last thing in the section.
 *
 * All fields are little-endian, except the capability data, which is in the
 * byte order of the CPU that wrote it, as VFIO_PCI_LU_BIG_ENDIAN says: a
 * kernel of the other byte order rejects the record. Nothing may move, change size or change
 * meaning without a new VFIO_PCI_LU_VERSION; a kernel rejects any other
 * version, and any record that fails validation, as a whole: the device then
 * takes the normal path (reset on open). The compatible string differs from
 * upstream's "vfio-pci-v1", which hands over only the domain and BDF, so that
 * neither kernel takes the other's data for its own.
 *
 * The Rust codec and validator of this layout are
 * drivers/vfio/pci/liveupdate/abi.rs.
 */

#ifndef _LINUX_KHO_ABI_VFIO_PCI_H
#define _LINUX_KHO_ABI_VFIO_PCI_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <linux/types.h>

#define VFIO_PCI_LU_COMPATIBLE	"vfio-pci-state-v1"
#define VFIO_PCI_LU_VERSION	2

/* Bus mastering was enabled in the physical command register. */
#define VFIO_PCI_LU_BUS_MASTER	BIT(0)
/* vfio-pci could reset the device (vdev->reset_works). */
#define VFIO_PCI_LU_RESET_WORKS	BIT(1)
/* The capability data is big-endian, as the CPU that wrote it. */
#define VFIO_PCI_LU_BIG_ENDIAN	BIT(2)

/**
 * struct vfio_pci_lu_ser - The header of one preserved vfio-pci device.
 * @version:          VFIO_PCI_LU_VERSION of the kernel that wrote it.
 * @domain:           PCI domain (segment) of the device.
 * @bdf:              Bus, device and function of the device.
 * @flags:            VFIO_PCI_LU_* flags; unknown bits are rejected.
 * @vendor:           Vendor ID, checked against the device found there.
 * @device:           Device ID, checked likewise.
 * @class:            Class code (24 bits), checked likewise.
 * @cfg_size:         Bytes of virtual config space of the device: 256 or 4096.
 * @cfg_stored:       Bytes of it that follow, whole dwords from 64 (the standard
 *                    header) to cfg_size; the rest is zero. (Version 1 stored
 *                    all of it, and had a zero reserved field here.)
 * @saved_state_size: Bytes of PCI saved state after the config space.
 */
struct vfio_pci_lu_ser {
	__le32 version;
	__le32 domain;
	__le16 bdf;
	__le16 flags;
	__le16 vendor;
	__le16 device;
	__le32 class;
	__le16 cfg_size;
	__le16 cfg_stored;
	__le32 saved_state_size;
} __packed;

/**
 * struct vfio_pci_lu_cap - One saved capability of the PCI saved state.
 * @cap_nr:   Capability ID (PCI_CAP_ID_* or PCI_EXT_CAP_ID_*).
 * @extended: 1 for an extended capability, else 0.
 * @reserved: Zero.
 * @size:     Bytes of data that follow; 0 ends the list.
 */
struct vfio_pci_lu_cap {
	__le16 cap_nr;
	__u8 extended;
	__u8 reserved;
	__le32 size;
} __packed;

static_assert(sizeof(struct vfio_pci_lu_ser) == 28);
static_assert(offsetof(struct vfio_pci_lu_ser, cfg_size) == 20);
static_assert(offsetof(struct vfio_pci_lu_ser, cfg_stored) == 22);
static_assert(offsetof(struct vfio_pci_lu_ser, saved_state_size) == 24);
static_assert(sizeof(struct vfio_pci_lu_cap) == 8);

#endif /* _LINUX_KHO_ABI_VFIO_PCI_H */
