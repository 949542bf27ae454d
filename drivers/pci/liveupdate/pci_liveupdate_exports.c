// SPDX-License-Identifier: GPL-2.0
/*
 * Exports of the PCI core's Live Update API, whose functions are written in
 * Rust (pci_liveupdate.rs), to modules: vfio-pci-core, which links the
 * vfio-pci Live Update file handler in, is one in distribution kernels.
 * Each comment names what pci_liveupdate.rs defines under the exported name.
 */
#include <linux/export.h>
#include <linux/pci_liveupdate.h>

/* PCI_FLB: the File-Lifecycle-Bound object of the PCI record */
EXPORT_SYMBOL_GPL(pci_liveupdate_flb);
/* preserve() */
EXPORT_SYMBOL_GPL(pci_liveupdate_preserve);
/* unpreserve() */
EXPORT_SYMBOL_GPL(pci_liveupdate_unpreserve);
/* freeze() */
EXPORT_SYMBOL_GPL(pci_liveupdate_freeze);
/* unfreeze() */
EXPORT_SYMBOL_GPL(pci_liveupdate_unfreeze);
/* is_incoming() */
EXPORT_SYMBOL_GPL(pci_liveupdate_is_incoming);
/* claim() */
EXPORT_SYMBOL_GPL(pci_liveupdate_claim);
/* finish() */
EXPORT_SYMBOL_GPL(pci_liveupdate_finish);
/* release() */
EXPORT_SYMBOL_GPL(pci_liveupdate_release);
