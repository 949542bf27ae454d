/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the vfio-pci Live Update selftests do with a device as a VMM would:
 * find its vfio cdev (or group), bind it to iommufd, map memory into an IOAS
 * and attach it, reach its config space and BAR 0 through the device file,
 * and route its interrupts to eventfds.
 */
#ifndef VFIO_LU_DEVICE_H
#define VFIO_LU_DEVICE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <libliveupdate.h>
#include <lu_pci_sysfs.h>
#include <lu_stage.h>

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
	char group[32], path[64];

	if (pci_sysfs_link(pci, "iommu_group", group, sizeof(group)))
		return -1;
	snprintf(path, sizeof(path), "/dev/vfio/%s", group);
	return open(path, O_RDWR);
}

/* A new IOAS of the iommufd; its id, or 0 with errno set. */
static inline __u32 alloc_ioas(void)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };

	return ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) ? 0 : alloc.out_ioas_id;
}

static inline int open_iommufd_ioas(void)
{
	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		return -errno;
	ioas_id = alloc_ioas();
	return ioas_id ? 0 : -errno;
}

/* Maps @len bytes at @va into @ioas at exactly @iova, readable and writable; 0 or -errno. */
static inline int ioas_map(__u32 ioas, void *va, size_t len, __u64 iova)
{
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP, &map) ? -errno : 0;
}

/* Binds @fd to iommufd, with the VF token @vf_token (16 bytes) unless NULL; 0 or -errno. */
static inline int bind_iommufd(int fd, const __u8 *vf_token)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.flags = vf_token ? VFIO_DEVICE_BIND_FLAG_TOKEN : 0,
		.iommufd = iommufd,
		.token_uuid_ptr = (uintptr_t)vf_token,
	};

	return ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) ? -errno : 0;
}

/* Unmaps the @len bytes mapped at @iova in @ioas; 0 or -errno. */
static inline int ioas_unmap(__u32 ioas, __u64 iova, size_t len)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = ioas,
		.iova = iova,
		.length = len,
	};

	return ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap) ? -errno : 0;
}

/* Attaches the bound @fd to @ioas, whose mappings its DMA then goes through; 0 or -errno. */
static inline int attach_ioas(int fd, __u32 ioas)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = ioas,
	};

	return ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) ? -errno : 0;
}

/*
 * VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA on the device file @fd, @op being
 * VFIO_DEVICE_FEATURE_GET, _SET or _PROBE (with GET and SET): @arg goes in,
 * and comes back for a GET; 0 or -errno.
 */
static inline int liveupdate_dma(int fd, __u32 op, struct vfio_device_feature_liveupdate_dma *arg)
{
	__u64 buf[(sizeof(struct vfio_device_feature) + sizeof(*arg) + 7) / 8];
	struct vfio_device_feature *feature = (struct vfio_device_feature *)buf;

	feature->argsz = sizeof(*feature) + sizeof(*arg);
	feature->flags = op | VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA;
	memcpy(feature->data, arg, sizeof(*arg));
	if (ioctl(fd, VFIO_DEVICE_FEATURE, feature))
		return -errno;
	memcpy(arg, feature->data, sizeof(*arg));
	return 0;
}

/* Sets VFIO_LIVEUPDATE_DMA_REQUIRED on the device file @fd, or lifts it; 0 or -errno. */
static inline int require_dma(int fd, int required)
{
	struct vfio_device_feature_liveupdate_dma arg = {
		.flags = required ? VFIO_LIVEUPDATE_DMA_REQUIRED : 0,
	};

	return liveupdate_dma(fd, VFIO_DEVICE_FEATURE_SET, &arg);
}

/*
 * Binds @fd to iommufd, with the VF token @vf_token (16 bytes) unless NULL,
 * and attaches the IOAS; 0 or -errno.
 */
static inline int bind_device_token(int fd, const __u8 *vf_token)
{
	return bind_iommufd(fd, vf_token) ?: attach_ioas(fd, ioas_id);
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
 * VFIO_DEVICE_SET_IRQS on interrupt @index: routes it to @efd, or turns it
 * off (@efd -1), or unmasks INTx (@action VFIO_IRQ_SET_ACTION_UNMASK).
 */
static inline int set_irqs(int dev_fd, __u32 index, __u32 action, int efd)
{
	struct {
		struct vfio_irq_set set;
		__s32 fd;
	} irq = {
		.set = {
			.argsz = sizeof(irq),
			.index = index,
			.flags = action | (efd < 0 ? VFIO_IRQ_SET_DATA_NONE :
						     VFIO_IRQ_SET_DATA_EVENTFD),
			.count = efd < 0 && action == VFIO_IRQ_SET_ACTION_TRIGGER ? 0 : 1,
		},
		.fd = efd,
	};

	return ioctl(dev_fd, VFIO_DEVICE_SET_IRQS, &irq) ? -errno : 0;
}

/* 1 when the eventfd @efd is signalled within @ms milliseconds; it is read. */
static inline int eventfd_fired(int efd, int ms)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	uint64_t count;

	return poll(&pfd, 1, ms) == 1 && read(efd, &count, sizeof(count)) == sizeof(count);
}

/*
 * Starts stage 1 of a two-stage test: its KTAP header and @plan, the state
 * file of session @state_session (token @token) that says stage 2 comes
 * next, iommufd and an IOAS.
 */
static inline void start_stage_1(int luo_fd, const char *state_session, int token, int plan)
{
	ksft_print_header();
	ksft_set_plan(plan);
	create_state_file(luo_fd, state_session, token, 2);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
}

/*
 * Starts stage 2, after the kexec: its KTAP header and @plan, the check that
 * the state file (token @token of @state_session_fd) says stage 2, iommufd
 * and an IOAS.
 */
static inline void start_stage_2(int state_session_fd, int token, int plan)
{
	int stage;

	ksft_print_header();
	ksft_set_plan(plan);
	restore_and_read_stage(state_session_fd, token, &stage);
	if (stage != 2)
		fail_exit("expected stage 2, state says %d", stage);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
}

/*
 * Enters the stage -s names of a test of more than two stages, after
 * checking that the state file (token @token of session @state_session, in
 * every stage after the first) names it too; exits otherwise. LUO's fd in
 * @luo_fd, the state session's in @state_fd (-1 in stage 1). Returns the
 * stage.
 */
static inline int enter_stage(int argc, char *argv[], const char *state_session, int token,
			      int *luo_fd, int *state_fd)
{
	int stage = 0, detected = 1, opt;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	*luo_fd = luo_open_device();
	if (*luo_fd < 0)
		ksft_exit_skip("no %s\n", LUO_DEVICE);
	*state_fd = luo_retrieve_session(*luo_fd, state_session);
	if (*state_fd >= 0)
		restore_and_read_stage(*state_fd, token, &detected);
	if (stage != detected)
		ksft_exit_fail_msg("asked for stage %d, the state says %d\n", stage, detected);
	return stage;
}

#endif /* VFIO_LU_DEVICE_H */
