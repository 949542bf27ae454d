/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PCI core support for Live Update: the C API of drivers/pci/liveupdate/.
 *
 * A driver whose Live Update file handler preserves PCI devices registers
 * the handler with pci_liveupdate_register_flb(), calls
 * pci_liveupdate_preserve() from its preserve callback (and
 * pci_liveupdate_unpreserve() from unpreserve). In the next kernel it claims
 * each device it takes back with pci_liveupdate_claim(), which the PCI core
 * otherwise releases (resets) once pci_liveupdate.claim_timeout seconds have
 * passed, and calls pci_liveupdate_finish() once it is done with it, or
 * pci_liveupdate_release() to give it to the normal path instead. Every
 * function returns 0 or a negative errno, unless it returns bool.
 */
#ifndef _LINUX_PCI_LIVEUPDATE_H
#define _LINUX_PCI_LIVEUPDATE_H

#include <linux/errno.h>
#include <linux/liveupdate.h>
#include <linux/types.h>

struct pci_dev;

#ifdef CONFIG_PCI_LIVEUPDATE

extern struct liveupdate_flb pci_liveupdate_flb;

static inline int pci_liveupdate_register_flb(struct liveupdate_file_handler *fh)
{
	return liveupdate_register_flb(fh, &pci_liveupdate_flb);
}

static inline void pci_liveupdate_unregister_flb(struct liveupdate_file_handler *fh)
{
	liveupdate_unregister_flb(fh, &pci_liveupdate_flb);
}

int pci_liveupdate_preserve(struct pci_dev *dev);
int pci_liveupdate_unpreserve(struct pci_dev *dev);
int pci_liveupdate_freeze(struct pci_dev *dev);
void pci_liveupdate_unfreeze(struct pci_dev *dev);
bool pci_liveupdate_is_incoming(struct pci_dev *dev);
int pci_liveupdate_claim(struct pci_dev *dev);
int pci_liveupdate_finish(struct pci_dev *dev);
int pci_liveupdate_release(struct pci_dev *dev);

/* For the PCI core: enumeration found @dev. */
void pci_liveupdate_setup_device(struct pci_dev *dev);
/*
 * For the PCI core: 0 when a driver may bind to @dev now, -EBUSY while @dev
 * is incoming and the driver is not one that leaves its DMA to userspace.
 */
int pci_liveupdate_check_probe(struct pci_dev *dev, bool driver_managed_dma);
/* For the PCI core: keep the bus numbers @bridge comes up with. */
bool pci_liveupdate_keep_bus_numbers(struct pci_dev *bridge);
/*
 * For the PCI core: no bus or slot reset may reach @dev, which keeps its
 * state for a Live Update (frozen for the kexec, or incoming).
 */
bool pci_liveupdate_blocks_reset(struct pci_dev *dev);

#else /* CONFIG_PCI_LIVEUPDATE */

static inline int pci_liveupdate_register_flb(struct liveupdate_file_handler *fh)
{
	return -EOPNOTSUPP;
}

static inline void pci_liveupdate_unregister_flb(struct liveupdate_file_handler *fh)
{
}

static inline int pci_liveupdate_preserve(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline int pci_liveupdate_unpreserve(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline int pci_liveupdate_freeze(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline void pci_liveupdate_unfreeze(struct pci_dev *dev)
{
}

static inline bool pci_liveupdate_is_incoming(struct pci_dev *dev)
{
	return false;
}

static inline int pci_liveupdate_claim(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline int pci_liveupdate_finish(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline int pci_liveupdate_release(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline void pci_liveupdate_setup_device(struct pci_dev *dev)
{
}

static inline int pci_liveupdate_check_probe(struct pci_dev *dev,
					     bool driver_managed_dma)
{
	return 0;
}

static inline bool pci_liveupdate_keep_bus_numbers(struct pci_dev *bridge)
{
	return false;
}

static inline bool pci_liveupdate_blocks_reset(struct pci_dev *dev)
{
	return false;
}

#endif /* CONFIG_PCI_LIVEUPDATE */

#ifdef CONFIG_INTEL_IOMMU_LIVEUPDATE
/* In <linux/intel_iommu_liveupdate.h>, which is not needed otherwise. */
bool intel_iommu_liveupdate_translates(struct pci_dev *dev);
#endif

/**
 * pci_liveupdate_translation_continues - Whether @dev's DMA stays translated by
 *					  the IOMMU across the kexec
 * @dev: a device the kexec shuts down
 *
 * The kexec switches IOMMU translation off, and the next kernel boots with it
 * off until its IOMMU driver starts: a device that masters the bus meanwhile
 * reaches any host memory. So the kexec shutdown clears bus mastering of
 * every device, except one whose translation provably continues into the
 * next kernel: a device kept across a Live Update whose VT-d translation is
 * handed over (CONFIG_INTEL_IOMMU_LIVEUPDATE), and the bridges above it. Any
 * other preserved device is quiesced, not reset, and gets bus mastering back
 * in the next kernel once its user has an IOMMU domain for it again.
 *
 * Return: whether the kexec leaves bus mastering on.
 */
static inline bool pci_liveupdate_translation_continues(struct pci_dev *dev)
{
#ifdef CONFIG_INTEL_IOMMU_LIVEUPDATE
	return intel_iommu_liveupdate_translates(dev);
#else
	return false;
#endif
}

#endif /* _LINUX_PCI_LIVEUPDATE_H */
