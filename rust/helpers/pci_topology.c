// SPDX-License-Identifier: GPL-2.0

#include <linux/pci.h>

/* Only the PCI core's Live Update support and what builds on it use these. */
#ifdef CONFIG_PCI_LIVEUPDATE
__rust_helper int rust_helper_pci_dev_domain_nr(struct pci_dev *dev)
{
	return pci_domain_nr(dev->bus);
}

__rust_helper bool rust_helper_pci_is_bridge(struct pci_dev *dev)
{
	return pci_is_bridge(dev);
}

__rust_helper bool rust_helper_pci_dev_is_virtfn(struct pci_dev *dev)
{
	return dev->is_virtfn;
}

__rust_helper struct pci_dev *rust_helper_pci_upstream_bridge(struct pci_dev *dev)
{
	return pci_upstream_bridge(dev);
}
#endif
