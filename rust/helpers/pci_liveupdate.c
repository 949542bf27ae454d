// SPDX-License-Identifier: GPL-2.0

#include <linux/pci_liveupdate.h>

#ifdef CONFIG_PCI_LIVEUPDATE
__rust_helper int
rust_helper_pci_liveupdate_register_flb(struct liveupdate_file_handler *fh)
{
	return pci_liveupdate_register_flb(fh);
}

__rust_helper void
rust_helper_pci_liveupdate_unregister_flb(struct liveupdate_file_handler *fh)
{
	pci_liveupdate_unregister_flb(fh);
}
#endif
