// SPDX-License-Identifier: GPL-2.0
/*
 * What the Rust side of the VT-d Live Update hand-over needs of the
 * hardware and of the VT-d driver's private state, in legacy mode.
 */
#include <linux/intel_iommu_liveupdate.h>
#include <linux/memory_hotplug.h>
#include <linux/pci.h>

#include "../../iommu-pages.h"
#include "../iommu.h"

u64 intel_iommu_lu_reg_base(struct intel_iommu *iommu)
{
	return iommu->reg_phys;
}

u16 intel_iommu_lu_segment(struct intel_iommu *iommu)
{
	return iommu->segment;
}

/* The root table the unit translates through, as its register has it. */
u64 intel_iommu_lu_root_table(struct intel_iommu *iommu)
{
	return readq(iommu->reg + DMAR_RTADDR_REG);
}

/*
 * Points the unit at another root table, with translation left as it is,
 * and drops everything it cached from the previous one. Used at the kexec
 * (switch to the handover tables) and when the next kernel rejects them
 * (switch to an empty table: everything blocked). Runs with interrupts off
 * at the kexec, so it only polls.
 */
void intel_iommu_lu_set_root_table(struct intel_iommu *iommu, u64 phys)
{
	unsigned long flags;
	u32 sts;

	raw_spin_lock_irqsave(&iommu->register_lock, flags);
	writeq(phys, iommu->reg + DMAR_RTADDR_REG);
	writel(iommu->gcmd | DMA_GCMD_SRTP, iommu->reg + DMAR_GCMD_REG);
	IOMMU_WAIT_OP(iommu, DMAR_GSTS_REG, readl, (sts & DMA_GSTS_RTPS), sts);
	raw_spin_unlock_irqrestore(&iommu->register_lock, flags);

	iommu->flush.flush_context(iommu, 0, 0, 0, DMA_CCMD_GLOBAL_INVL);
	iommu->flush.flush_iotlb(iommu, 0, 0, 0, DMA_TLB_GLOBAL_FLUSH);
}

/*
 * The context entry translating @dev's DMA, and its unit and BDF there:
 * -ENODEV when no VT-d unit translates @dev, -EOPNOTSUPP in scalable mode,
 * where context entries point at PASID tables, which are not handed over.
 */
int intel_iommu_lu_context(struct device *dev, struct intel_iommu **iommu,
			   u16 *bdf, u64 *lo, u64 *hi)
{
	struct device_domain_info *info = dev_iommu_priv_get(dev);
	struct context_entry *context;

	if (!dev_is_pci(dev) || !info || !info->iommu)
		return -ENODEV;
	if (sm_supported(info->iommu))
		return -EOPNOTSUPP;

	spin_lock(&info->iommu->lock);
	context = iommu_context_addr(info->iommu, info->bus, info->devfn, 0);
	if (context) {
		*lo = context->lo;
		*hi = context->hi;
	} else {
		*lo = 0;
		*hi = 0;
	}
	spin_unlock(&info->iommu->lock);

	*iommu = info->iommu;
	*bdf = PCI_DEVID(info->bus, info->devfn);
	return 0;
}

/* Whether @bdf still translates through the tables the previous kernel left. */
bool intel_iommu_lu_context_copied(struct intel_iommu *iommu, u16 bdf)
{
	bool copied;

	spin_lock(&iommu->lock);
	copied = iommu->copied_tables &&
		 test_bit(bdf, iommu->copied_tables);
	spin_unlock(&iommu->lock);
	return copied;
}

/*
 * Entry @index of the page-table page at @page, a page of online memory;
 * false for any other address. Page tables are in the direct map.
 */
bool intel_iommu_lu_read_table(u64 page, unsigned int index, u64 *entry)
{
	struct page *p = pfn_to_online_page(PHYS_PFN(page));

	if (!p || offset_in_page(page) || index >= VTD_PAGE_SIZE / sizeof(u64))
		return false;
	*entry = READ_ONCE(((u64 *)page_address(p))[index]);
	return true;
}

/*
 * Blocks all DMA the unit translates, translation left on: points it at an
 * empty root table. The next kernel does so when it rejects the tables the
 * previous one handed over, until the driver sets its own root table a few
 * steps later. The page is not freed: the unit may cache it until then.
 */
int intel_iommu_lu_block(struct intel_iommu *iommu)
{
	void *empty = iommu_alloc_pages_node_sz(iommu->node, GFP_KERNEL, SZ_4K);

	if (!empty)
		return -ENOMEM;
	__iommu_flush_cache(iommu, empty, SZ_4K);
	intel_iommu_lu_set_root_table(iommu, virt_to_phys(empty));
	return 0;
}

/* Writes a handover table page back to memory the unit reads without snooping. */
void intel_iommu_lu_flush_table(struct intel_iommu *iommu, u64 page)
{
	__iommu_flush_cache(iommu, phys_to_virt(page), VTD_PAGE_SIZE);
}
