/* SPDX-License-Identifier: GPL-2.0 */

/**
 * DOC: Intel VT-d Live Update ABI
 *
 * What the VT-d driver of one kernel hands to the next so that the DMA of
 * devices kept across a Live Update stays translated through the kexec.
 *
 * For each unit with kept devices, the outgoing kernel builds handover
 * tables in legacy (non-scalable) mode: a root table, one context table per
 * bus with a kept device, holding the context entries of the kept devices
 * only, and a copy of each kept domain's second-level page tables, whose
 * every mapping points at memory preserved through KHO. At the kexec the
 * unit switches to its handover root table and keeps translating. Every
 * table page is preserved through KHO, and listed.
 *
 * The record is one page: a struct intel_iommu_lu_ser, then nr_units
 * struct intel_iommu_lu_unit, then nr_devices struct intel_iommu_lu_dev,
 * unit by unit in the units' order, then zeros. tables is the physical
 * address of the first block of a KHO block set (see
 * <linux/kho/abi/block.h>) of __le64 physical addresses, one per table
 * page, in ascending order. Devices of one domain share its page tables.
 *
 * All fields are little-endian. No field may move, change size or change
 * meaning without a new INTEL_IOMMU_LU_VERSION; a kernel rejects a record
 * of any version but its own, as a whole, and then never adopts the
 * translation: the kept devices are quiesced and reset.
 *
 * The Rust codec and validators of this layout are in
 * drivers/iommu/intel/liveupdate/.
 */

#ifndef _LINUX_KHO_ABI_INTEL_IOMMU_H
#define _LINUX_KHO_ABI_INTEL_IOMMU_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <linux/types.h>

#define INTEL_IOMMU_LU_COMPATIBLE	"intel-iommu-v1"
#define INTEL_IOMMU_LU_VERSION		1

/* intel_iommu_lu_dev.flags: the context entry's translation type is device-TLB. */
#define INTEL_IOMMU_LU_DEV_TLB		BIT(0)

/**
 * struct intel_iommu_lu_ser - The header of the record.
 * @version:    INTEL_IOMMU_LU_VERSION of the kernel that wrote it.
 * @nr_units:   Units whose translation continues; 0 when none does.
 * @nr_devices: Kept devices over all units.
 * @tables:     Physical address of the list of handed-over table pages.
 */
struct intel_iommu_lu_ser {
	__le32 version;
	__le16 nr_units;
	__le16 nr_devices;
	__le64 tables;
} __packed;

/**
 * struct intel_iommu_lu_unit - One unit whose translation continues.
 * @reg_base:   Physical address of its registers (the DRHD's), which names
 *              it in both kernels.
 * @root_table: Physical address of its handover root table, in its root
 *              table address register from the kexec on.
 * @segment:    PCI segment of its devices.
 * @nr_devices: Its kept devices, the next ones in the record.
 * @reserved:   Zero.
 */
struct intel_iommu_lu_unit {
	__le64 reg_base;
	__le64 root_table;
	__le16 segment;
	__le16 nr_devices;
	__le32 reserved;
} __packed;

/**
 * struct intel_iommu_lu_dev - One kept device.
 * @bdf:       Bus number in bits 15:8, device in 7:3, function in 2:0.
 * @domain_id: The domain id of its context entry.
 * @levels:    Page table levels: 3, 4 or 5.
 * @flags:     INTEL_IOMMU_LU_DEV_TLB or zero.
 * @reserved:  Zero.
 * @pgtable:   Physical address of the top page of its page tables.
 */
struct intel_iommu_lu_dev {
	__le16 bdf;
	__le16 domain_id;
	__u8 levels;
	__u8 flags;
	__le16 reserved;
	__le64 pgtable;
} __packed;

static_assert(sizeof(struct intel_iommu_lu_ser) == 16);
static_assert(offsetof(struct intel_iommu_lu_ser, tables) == 8);
static_assert(sizeof(struct intel_iommu_lu_unit) == 24);
static_assert(offsetof(struct intel_iommu_lu_unit, nr_devices) == 18);
static_assert(sizeof(struct intel_iommu_lu_dev) == 16);
static_assert(offsetof(struct intel_iommu_lu_dev, pgtable) == 8);

#endif /* _LINUX_KHO_ABI_INTEL_IOMMU_H */
