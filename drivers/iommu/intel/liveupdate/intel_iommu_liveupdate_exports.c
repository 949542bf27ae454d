// SPDX-License-Identifier: GPL-2.0
/*
 * Exports of the VT-d Live Update API, whose functions are written in Rust
 * (intel_iommu_liveupdate.rs), to modules: vfio-pci-core, which links the
 * vfio-pci Live Update file handler in, is one in distribution kernels.
 * Each comment names what intel_iommu_liveupdate.rs defines under the
 * exported name.
 */
#include <linux/export.h>
#include <linux/intel_iommu_liveupdate.h>
#include <linux/liveupdate.h>

/* INTEL_FLB: the File-Lifecycle-Bound object of the VT-d record */
extern struct liveupdate_flb intel_iommu_liveupdate_flb;

/*
 * Makes the files of @fh depend on the VT-d record, which LUO then preserves
 * with the first of them.
 */
int intel_iommu_liveupdate_register_flb(struct liveupdate_file_handler *fh)
{
	return liveupdate_register_flb(fh, &intel_iommu_liveupdate_flb);
}
EXPORT_SYMBOL_GPL(intel_iommu_liveupdate_register_flb);

/* freeze() */
EXPORT_SYMBOL_GPL(intel_iommu_liveupdate_freeze);
/* unfreeze() */
EXPORT_SYMBOL_GPL(intel_iommu_liveupdate_unfreeze);
/* adopted() */
EXPORT_SYMBOL_GPL(intel_iommu_liveupdate_adopted);
/* check() */
EXPORT_SYMBOL_GPL(intel_iommu_liveupdate_check);
