/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The calls vfio-pci-core makes into the vfio-pci Live Update file handler
 * (drivers/vfio/pci/liveupdate/), which is linked into vfio-pci-core: at
 * module init and exit, and on devices that are open or being opened.
 */
#ifndef _LINUX_VFIO_PCI_LIVEUPDATE_H
#define _LINUX_VFIO_PCI_LIVEUPDATE_H

#include <linux/errno.h>
#include <linux/pci_liveupdate.h>
#include <linux/types.h>

struct vfio_pci_core_device;

#ifdef CONFIG_VFIO_PCI_LIVEUPDATE
/*
 * Registration of the handler with LUO, from vfio-pci-core's module init and
 * exit: the handler is part of vfio-pci-core.
 */
int vfio_pci_liveupdate_init(void);
void vfio_pci_liveupdate_exit(void);
/*
 * True while the device is being opened through a file retrieved from a Live
 * Update session and its preserved state, validated against the device when
 * it was retrieved, has not been restored yet: the open then neither resets
 * the device nor unmasks its INTx.
 */
bool vfio_pci_liveupdate_incoming(struct vfio_pci_core_device *vdev);
/*
 * Once the virtual config space is set up: replaces it, the saved PCI state and
 * reset_works with what the previous kernel preserved. On failure the device
 * keeps the state derived at open, with a warning.
 */
void vfio_pci_liveupdate_restore(struct vfio_pci_core_device *vdev);
/*
 * The device was attached to an IOAS or HWPT: its DMA is translated again. A
 * device restored from the previous kernel gets bus mastering back then, if
 * it had it.
 */
void vfio_pci_liveupdate_attached(struct vfio_pci_core_device *vdev);
/*
 * A state-changing ioctl (reset, SET_IRQS) or config space write starts; it
 * ends with the matching _end() call once it is done. -EBUSY while the device
 * is frozen for a kexec, and a freeze waits for those under way, so that the
 * record written at freeze is the device's last state.
 */
int vfio_pci_liveupdate_ioctl_begin(struct vfio_pci_core_device *vdev,
				    unsigned int cmd);
void vfio_pci_liveupdate_ioctl_end(struct vfio_pci_core_device *vdev,
				   unsigned int cmd);
int vfio_pci_liveupdate_write_begin(struct vfio_pci_core_device *vdev,
				    unsigned int index);
void vfio_pci_liveupdate_write_end(struct vfio_pci_core_device *vdev,
				   unsigned int index);
/*
 * VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA: whether the device's DMA goes on
 * through a Live Update, and the requirement that it does.
 */
int vfio_pci_liveupdate_feature_dma(struct vfio_pci_core_device *vdev,
				    u32 flags, void __user *arg, size_t argsz);
#else
static inline int vfio_pci_liveupdate_init(void)
{
	return 0;
}

static inline void vfio_pci_liveupdate_exit(void)
{
}

static inline bool
vfio_pci_liveupdate_incoming(struct vfio_pci_core_device *vdev)
{
	return false;
}

static inline void
vfio_pci_liveupdate_restore(struct vfio_pci_core_device *vdev)
{
}

static inline void
vfio_pci_liveupdate_attached(struct vfio_pci_core_device *vdev)
{
}

static inline int
vfio_pci_liveupdate_ioctl_begin(struct vfio_pci_core_device *vdev,
				unsigned int cmd)
{
	return 0;
}

static inline void
vfio_pci_liveupdate_ioctl_end(struct vfio_pci_core_device *vdev,
			      unsigned int cmd)
{
}

static inline int
vfio_pci_liveupdate_write_begin(struct vfio_pci_core_device *vdev,
				unsigned int index)
{
	return 0;
}

static inline void
vfio_pci_liveupdate_write_end(struct vfio_pci_core_device *vdev,
			      unsigned int index)
{
}

static inline int
vfio_pci_liveupdate_feature_dma(struct vfio_pci_core_device *vdev, u32 flags,
				void __user *arg, size_t argsz)
{
	return -ENOTTY;
}
#endif

#endif /* _LINUX_VFIO_PCI_LIVEUPDATE_H */
