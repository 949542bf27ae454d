// SPDX-License-Identifier: GPL-2.0

#include <linux/vfio.h>

/* Only the vfio-pci Live Update support uses these. */
#ifdef CONFIG_VFIO_PCI_LIVEUPDATE
__rust_helper int rust_helper_vfio_check_feature(u32 flags, size_t argsz, u32 supported_ops,
						 size_t minsz)
{
	return vfio_check_feature(flags, argsz, supported_ops, minsz);
}
#endif
