/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PCI core support for Live Update: the C API of drivers/pci/liveupdate/.
 *
 * A driver whose Live Update file handler preserves PCI devices registers
 * the handler with pci_liveupdate_register_flb(), calls
 * pci_liveupdate_preserve() from its preserve callback (and
 * pci_liveupdate_unpreserve() from unpreserve), and in the next kernel asks
 * pci_liveupdate_is_incoming() and calls pci_liveupdate_finish() once it
 * has taken the device back. Every function returns 0 or a negative errno,
 * unless it returns bool.
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
bool pci_liveupdate_keep_bus_master(struct pci_dev *dev);
bool pci_liveupdate_is_incoming(struct pci_dev *dev);
int pci_liveupdate_finish(struct pci_dev *dev);

/* For the PCI core: enumeration found @dev. */
void pci_liveupdate_setup_device(struct pci_dev *dev);
/* For the PCI core: keep the bus numbers @bridge comes up with. */
bool pci_liveupdate_keep_bus_numbers(struct pci_dev *bridge);

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

static inline bool pci_liveupdate_keep_bus_master(struct pci_dev *dev)
{
	return false;
}

static inline bool pci_liveupdate_is_incoming(struct pci_dev *dev)
{
	return false;
}

static inline int pci_liveupdate_finish(struct pci_dev *dev)
{
	return -EOPNOTSUPP;
}

static inline void pci_liveupdate_setup_device(struct pci_dev *dev)
{
}

static inline bool pci_liveupdate_keep_bus_numbers(struct pci_dev *bridge)
{
	return false;
}

#endif /* CONFIG_PCI_LIVEUPDATE */
#endif /* _LINUX_PCI_LIVEUPDATE_H */
