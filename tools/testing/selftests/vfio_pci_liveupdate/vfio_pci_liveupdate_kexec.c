// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-stage test of the vfio-pci Live Update file handler, as a VMM uses it.
 *
 * Stage 1 opens the vfio cdev of a PCI device bound to vfio-pci, binds it to
 * iommufd and attaches an IOAS, turns on memory decoding and bus mastering
 * through the vfio config region, writes a value into a virtualized config
 * register (Interrupt Line) and into a device register in BAR 0, then
 * preserves the device file. The config space as vfio shows it is kept in a
 * memfd preserved alongside, for comparison.
 *
 * After the kexec, stage 2 checks that a plain open of the cdev is refused
 * while the device is incoming, retrieves the file, binds it, and checks that
 * bus mastering is still on in the physical command register (read through
 * sysfs, not vfio), that the config space vfio shows is the one of stage 1 and
 * that the BAR register kept its value; then finishes the session, after
 * which the cdev opens again.
 *
 * The device is QEMU's edu (1234:11e8), bound to vfio-pci with vfio_pci.ids
 * (see tools/vmtest/scenarios/vfio-pci-liveupdate.toml). Its DMA source
 * address register (BAR 0 + 0x80) holds any value written to it.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <libliveupdate.h>
#include <lu_pci_sysfs.h>

#define DEVICE_PCI		"0000:01:00.0"
#define PCI_INTERRUPT_LINE	0x3c
#define TEST_IRQ_LINE		0x5a
#define EDU_DMA_SRC		0x80
#define TEST_DMA_SRC		0x1234567089abcdefULL

#define SESSION			"vfio-pci-lu-test"
#define DEVICE_TOKEN		0x7f10
#define SNAPSHOT_TOKEN		0x7f11
#define UNUSED_TOKEN		0x7f12
#define STATE_SESSION		"vfio_pci_lu_test_state"
#define STATE_TOKEN		998

#define CONFIG_SIZE		256

static int iommufd = -1;
static __u32 ioas_id;

/* The cdev of the device: /dev/vfio/devices/vfioN, or NULL. */
static const char *device_cdev(void)
{
	static char path[300];
	struct dirent *ent;
	DIR *dir;

	dir = opendir("/sys/bus/pci/devices/" DEVICE_PCI "/vfio-dev");
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

static int open_iommufd_ioas(void)
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

/* Binds @fd to iommufd and attaches the IOAS; 0 or -errno. */
static int bind_device(int fd)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
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

/* Offset of region @index in the device file, or -1. */
static off_t region_offset(int fd, __u32 index)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -1;
	return info.offset;
}

static int config_rw(int fd, int write, void *buf, size_t len, off_t at)
{
	off_t base = region_offset(fd, VFIO_PCI_CONFIG_REGION_INDEX);
	ssize_t done;

	if (base < 0)
		return -1;
	done = write ? pwrite(fd, buf, len, base + at) :
		       pread(fd, buf, len, base + at);
	return done == (ssize_t)len ? 0 : -1;
}

static int bar0_rw(int fd, int write, __u64 *val, off_t at)
{
	off_t base = region_offset(fd, VFIO_PCI_BAR0_REGION_INDEX);
	ssize_t done;

	if (base < 0)
		return -1;
	done = write ? pwrite(fd, val, sizeof(*val), base + at) :
		       pread(fd, val, sizeof(*val), base + at);
	return done == sizeof(*val) ? 0 : -1;
}

/* The config space as vfio shows it, in hex, into @hex (2 * CONFIG_SIZE + 1). */
static int config_hex(int fd, char *hex)
{
	unsigned char cfg[CONFIG_SIZE];
	int i;

	if (config_rw(fd, 0, cfg, sizeof(cfg), 0))
		return -1;
	for (i = 0; i < CONFIG_SIZE; i++)
		sprintf(hex + 2 * i, "%02x", cfg[i]);
	return 0;
}

static void run_stage_1(int luo_fd)
{
	char hex[2 * CONFIG_SIZE + 1];
	const char *cdev = device_cdev();
	__u64 dma_src = TEST_DMA_SRC;
	__u8 irq_line = TEST_IRQ_LINE;
	int session_fd, dev_fd, ret;
	__u16 cmd;

	ksft_print_header();
	ksft_set_plan(6);
	create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, 2);

	if (!cdev)
		fail_exit("no vfio cdev for %s", DEVICE_PCI);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	dev_fd = open(cdev, O_RDWR);
	if (dev_fd < 0)
		fail_exit("open %s", cdev);
	ksft_test_result(bind_device(dev_fd) == 0,
			 "bind %s to iommufd and attach an IOAS\n", cdev);

	ksft_test_result(config_rw(dev_fd, 0, &cmd, sizeof(cmd), PCI_COMMAND) == 0 &&
			 (cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER) &&
			 config_rw(dev_fd, 1, &cmd, sizeof(cmd), PCI_COMMAND) == 0 &&
			 bus_master(DEVICE_PCI) == 1,
			 "memory decoding and bus mastering on\n");
	ksft_test_result(config_rw(dev_fd, 1, &irq_line, 1, PCI_INTERRUPT_LINE) == 0 &&
			 bar0_rw(dev_fd, 1, &dma_src, EDU_DMA_SRC) == 0,
			 "write the Interrupt Line and a BAR 0 register\n");

	session_fd = luo_create_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("create session %s", SESSION);
	ksft_test_result(config_hex(dev_fd, hex) == 0 &&
			 create_and_preserve_memfd(session_fd, SNAPSHOT_TOKEN, hex) == 0,
			 "keep the config space vfio shows\n");
	ksft_test_result(luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN) == 0,
			 "preserve the device file\n");
	ret = luo_session_preserve_fd(session_fd, dev_fd, UNUSED_TOKEN);
	ksft_test_result(ret == -EBUSY, "preserving it twice is -EBUSY (%d)\n", ret);

	close(luo_fd);
	daemonize_and_wait();
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	char hex[2 * CONFIG_SIZE + 1];
	const char *cdev = device_cdev();
	int session_fd, dev_fd, fd, snap_fd, stage;
	__u64 dma_src = 0;

	ksft_print_header();
	ksft_set_plan(9);
	restore_and_read_stage(state_session_fd, STATE_TOKEN, &stage);
	if (stage != 2)
		fail_exit("expected stage 2, state says %d", stage);
	if (!cdev)
		fail_exit("no vfio cdev for %s", DEVICE_PCI);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");

	fd = open(cdev, O_RDWR);
	ksft_test_result(fd < 0 && errno == EBUSY,
			 "opening %s while incoming is -EBUSY\n", cdev);
	if (fd >= 0)
		close(fd);

	session_fd = luo_retrieve_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", SESSION);
	dev_fd = luo_session_retrieve_fd(session_fd, DEVICE_TOKEN);
	ksft_test_result(dev_fd >= 0, "retrieve the device file\n");
	ksft_test_result(dev_fd >= 0 && bind_device(dev_fd) == 0,
			 "bind it to iommufd and attach an IOAS\n");
	ksft_test_result(bus_master(DEVICE_PCI) == 1,
			 "bus mastering still on in the device\n");
	snap_fd = -1;
	if (dev_fd >= 0 && config_hex(dev_fd, hex) == 0)
		snap_fd = restore_and_verify_memfd(session_fd, SNAPSHOT_TOKEN, hex);
	ksft_test_result(snap_fd >= 0, "vfio shows the config space of stage 1\n");
	ksft_test_result(dev_fd >= 0 && bar0_rw(dev_fd, 0, &dma_src, EDU_DMA_SRC) == 0 &&
			 dma_src == TEST_DMA_SRC,
			 "the BAR 0 register kept its value\n");
	ksft_test_result(kmsg_has(DEVICE_PCI ": state restored from the previous kernel") == 1,
			 "the kernel restored the preserved state, without a reset\n");
	ksft_test_result(luo_session_finish(session_fd) == 0,
			 "finish the session\n");
	fd = open(cdev, O_RDWR);
	ksft_test_result(fd >= 0, "after finish the cdev opens again\n");
	if (fd >= 0)
		close(fd);
	if (snap_fd >= 0)
		close(snap_fd);
	if (dev_fd >= 0)
		close(dev_fd);

	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish state session");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	return luo_test(argc, argv, STATE_SESSION, run_stage_1, run_stage_2);
}
