/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Handing the VT-d translation of devices kept across a Live Update over
 * to the next kernel, so that their DMA stays translated through the kexec.
 * The logic is in Rust (drivers/iommu/intel/liveupdate/); the VT-d driver
 * calls it from two places, and it reaches the hardware through the
 * intel_iommu_lu_*() helpers of drivers/iommu/intel/liveupdate/vtd_hw.c.
 */
#ifndef _LINUX_INTEL_IOMMU_LIVEUPDATE_H
#define _LINUX_INTEL_IOMMU_LIVEUPDATE_H

#include <linux/types.h>

struct device;
struct intel_iommu;
struct liveupdate_file_handler;
struct pci_dev;

/* Hardware access for the Rust code; legacy (non-scalable) mode only. */
u64 intel_iommu_lu_reg_base(struct intel_iommu *iommu);
u16 intel_iommu_lu_segment(struct intel_iommu *iommu);
u64 intel_iommu_lu_root_table(struct intel_iommu *iommu);
void intel_iommu_lu_set_root_table(struct intel_iommu *iommu, u64 phys);
int intel_iommu_lu_context(struct device *dev, struct intel_iommu **iommu,
			   u16 *bdf, u64 *lo, u64 *hi);
bool intel_iommu_lu_context_copied(struct intel_iommu *iommu, u16 bdf);
bool intel_iommu_lu_read_table(u64 page, unsigned int index, u64 *entry);
int intel_iommu_lu_block(struct intel_iommu *iommu);
void intel_iommu_lu_flush_table(struct intel_iommu *iommu, u64 page);

/* Why a kept device's DMA would stop at a kexec (intel_iommu_liveupdate_check()). */
#define INTEL_IOMMU_LU_STOPS_UNSUPPORTED	1	/* no unit in legacy mode */
#define INTEL_IOMMU_LU_STOPS_NOT_KEPT		2	/* maps memory not kept */
#define INTEL_IOMMU_LU_STOPS_NOTHING_MAPPED	3	/* its domain maps nothing */
#define INTEL_IOMMU_LU_STOPS_TABLES		4	/* other translation structures */

#ifdef CONFIG_INTEL_IOMMU_LIVEUPDATE

int intel_iommu_liveupdate_register_flb(struct liveupdate_file_handler *fh);
/* Hands @dev's translation over: 1 if it did, 0 if its DMA stops, or -errno. */
int intel_iommu_liveupdate_freeze(struct pci_dev *dev);
void intel_iommu_liveupdate_unfreeze(struct pci_dev *dev);
bool intel_iommu_liveupdate_translates(struct pci_dev *dev);
bool intel_iommu_liveupdate_adopted(struct pci_dev *dev);
/* 0 if a kexec now could hand @dev's translation over, else a STOPS_ code. */
int intel_iommu_liveupdate_check(struct pci_dev *dev);
bool intel_iommu_liveupdate_shutdown(struct intel_iommu *iommu);
bool intel_iommu_liveupdate_adopt(struct intel_iommu *iommu);

#else

static inline int
intel_iommu_liveupdate_register_flb(struct liveupdate_file_handler *fh)
{
	return 0;
}

static inline int intel_iommu_liveupdate_freeze(struct pci_dev *dev)
{
	return 0;
}

static inline void intel_iommu_liveupdate_unfreeze(struct pci_dev *dev)
{
}

static inline bool intel_iommu_liveupdate_translates(struct pci_dev *dev)
{
	return false;
}

static inline bool intel_iommu_liveupdate_adopted(struct pci_dev *dev)
{
	return false;
}

static inline int intel_iommu_liveupdate_check(struct pci_dev *dev)
{
	return INTEL_IOMMU_LU_STOPS_UNSUPPORTED;
}

static inline bool intel_iommu_liveupdate_shutdown(struct intel_iommu *iommu)
{
	return false;
}

static inline bool intel_iommu_liveupdate_adopt(struct intel_iommu *iommu)
{
	return false;
}

#endif /* CONFIG_INTEL_IOMMU_LIVEUPDATE */

#endif /* _LINUX_INTEL_IOMMU_LIVEUPDATE_H */
