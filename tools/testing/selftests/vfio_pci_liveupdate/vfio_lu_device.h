/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the vfio-pci Live Update selftests do with a device as a VMM would:
 * find its vfio cdev (or group), bind it to iommufd with an IOAS attached,
 * and reach its config space and BAR 0 through the device file.
 */
#ifndef VFIO_LU_DEVICE_H
#define VFIO_LU_DEVICE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <lu_pci_sysfs.h>

static int iommufd = -1;
static __u32 ioas_id;

/* The cdev of PCI device @pci: /dev/vfio/devices/vfioN, or NULL. */
static inline const char *device_cdev(const char *pci)
{
	static char path[300];
	struct dirent *ent;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", pci);
	dir = opendir(path);
	if (!dir)
		return NULL;
	while ((ent = readdir(dir))) {
		if (!strncmp(ent->d_name, "vfio", 4)) {
			snprintf(path, sizeof(path), "/dev/vfio/devices/%s",
				 ent->d_name);
			closedir(dir);
			return path;
		}
	}
	closedir(dir);
	return NULL;
}

/* Opens the vfio group file of PCI device @pci (/dev/vfio/N); the fd or -1. */
static inline int open_group(const char *pci)
{
	char link[256], path[300], *group;
	ssize_t len;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", pci);
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return -1;
	link[len] = 0;
	group = strrchr(link, '/');
	snprintf(path, sizeof(path), "/dev/vfio/%s", group ? group + 1 : link);
	return open(path, O_RDWR);
}

static inline int open_iommufd_ioas(void)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };

	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		return -errno;
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return -errno;
	ioas_id = alloc.out_ioas_id;
	return 0;
}

/*
 * Binds @fd to iommufd, with the VF token @vf_token (16 bytes) unless NULL,
 * and attaches the IOAS; 0 or -errno.
 */
static inline int bind_device_token(int fd, const __u8 *vf_token)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.flags = vf_token ? VFIO_DEVICE_BIND_FLAG_TOKEN : 0,
		.iommufd = iommufd,
		.token_uuid_ptr = (uintptr_t)vf_token,
	};
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = ioas_id,
	};

	if (ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	if (ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return -errno;
	return 0;
}

static inline int bind_device(int fd)
{
	return bind_device_token(fd, NULL);
}

/* Offset of region @index in the device file, or -1. */
static inline off_t region_offset(int fd, __u32 index)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -1;
	return info.offset;
}

/* Reads or writes @len bytes of region @index at @at; 0 or -1. */
static inline int region_rw(int fd, __u32 index, int write, void *buf, size_t len, off_t at)
{
	off_t base = region_offset(fd, index);
	ssize_t done;

	if (base < 0)
		return -1;
	done = write ? pwrite(fd, buf, len, base + at) :
		       pread(fd, buf, len, base + at);
	return done == (ssize_t)len ? 0 : -1;
}

static inline int config_rw(int fd, int write, void *buf, size_t len, off_t at)
{
	return region_rw(fd, VFIO_PCI_CONFIG_REGION_INDEX, write, buf, len, at);
}

/* Reads or writes the 64-bit register of BAR 0 at @at. */
static inline int bar0_rw64(int fd, int write, __u64 *val, off_t at)
{
	return region_rw(fd, VFIO_PCI_BAR0_REGION_INDEX, write, val, sizeof(*val), at);
}

/* Reads or writes the 32-bit register of BAR 0 at @at. */
static inline int bar0_rw32(int fd, int write, __u32 *val, off_t at)
{
	return region_rw(fd, VFIO_PCI_BAR0_REGION_INDEX, write, val, sizeof(*val), at);
}

/* Opens the cdev of @pci and binds it; the fd, or -1. */
static inline int open_bound(const char *pci)
{
	const char *cdev = device_cdev(pci);
	int fd = cdev ? open(cdev, O_RDWR) : -1;

	if (fd >= 0 && bind_device(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Turns memory decoding and bus mastering on through vfio, and checks in
 * sysfs that the device at @pci has bus mastering on; 0 or -1.
 */
static inline int enable_master(int fd, const char *pci)
{
	__u16 cmd;

	if (config_rw(fd, 0, &cmd, sizeof(cmd), PCI_COMMAND))
		return -1;
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (config_rw(fd, 1, &cmd, sizeof(cmd), PCI_COMMAND))
		return -1;
	return bus_master(pci) == 1 ? 0 : -1;
}

/*
 * The igb (Intel 82576) register whose reset shows: a function reset sets
 * the Receive Long Packet Maximum Length back to 0x2600.
 */
#define IGB_RLPML		0x5004
#define IGB_RLPML_RESET		0x2600

/* RLPML of the igb behind @fd, or 0 when unreadable. */
static inline __u32 igb_rlpml(int fd)
{
	__u32 val = 0;

	bar0_rw32(fd, 0, &val, IGB_RLPML);
	return val;
}

#endif /* VFIO_LU_DEVICE_H */
