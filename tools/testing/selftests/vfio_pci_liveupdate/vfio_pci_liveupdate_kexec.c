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
 * A second device, preserved in a session of its own, is never retrieved:
 * stage 2 finishes that session first, and the device must then be given
 * back to vfio-pci, with bus mastering off, as any device that was not kept.
 *
 * The device is QEMU's edu (1234:11e8), bound to vfio-pci with vfio_pci.ids
 * (see tools/vmtest/scenarios/vfio-pci-liveupdate.toml). Its DMA source
 * address register (BAR 0 + 0x80) holds any value written to it.
 */

#include <stdlib.h>
#include <libliveupdate.h>
#include <lu_pci_sysfs.h>
#include "vfio_lu_device.h"

#define DEVICE_PCI		"0000:01:00.0"
#define UNUSED_PCI		"0000:02:00.0"
#define PCI_INTERRUPT_LINE	0x3c
#define TEST_IRQ_LINE		0x5a
#define EDU_DMA_SRC		0x80
#define TEST_DMA_SRC		0x1234567089abcdefULL

#define SESSION			"vfio-pci-lu-test"
#define DEVICE_TOKEN		0x7f10
#define SNAPSHOT_TOKEN		0x7f11
#define UNUSED_TOKEN		0x7f12
#define UNUSED_SESSION		"vfio-pci-lu-unused"
#define UNUSED_DEVICE_TOKEN	0x7f13
#define STATE_SESSION		"vfio_pci_lu_test_state"
#define STATE_TOKEN		998

#define CONFIG_SIZE		256

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

/* Binds the device at @pci, turns bus mastering on and preserves it alone. */
static int preserve_unused_device(int luo_fd, const char *pci)
{
	const char *cdev = device_cdev(pci);
	int fd = cdev ? open(cdev, O_RDWR) : -1;
	int session_fd;
	__u16 cmd;

	if (fd < 0 || bind_device(fd) ||
	    config_rw(fd, 0, &cmd, sizeof(cmd), PCI_COMMAND))
		return -1;
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	session_fd = luo_create_session(luo_fd, UNUSED_SESSION);
	if (config_rw(fd, 1, &cmd, sizeof(cmd), PCI_COMMAND) || session_fd < 0 ||
	    bus_master(pci) != 1)
		return -1;
	return luo_session_preserve_fd(session_fd, fd, UNUSED_DEVICE_TOKEN);
}

static void run_stage_1(int luo_fd)
{
	char hex[2 * CONFIG_SIZE + 1];
	const char *cdev = device_cdev(DEVICE_PCI);
	__u64 dma_src = TEST_DMA_SRC;
	__u8 irq_line = TEST_IRQ_LINE;
	int session_fd, dev_fd, ret;
	__u16 cmd;

	ksft_print_header();
	ksft_set_plan(7);
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
			 bar0_rw64(dev_fd, 1, &dma_src, EDU_DMA_SRC) == 0,
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
	ksft_test_result(preserve_unused_device(luo_fd, UNUSED_PCI) == 0,
			 "preserve %s, bus master, alone in a session\n", UNUSED_PCI);

	close(luo_fd);
	daemonize_and_wait();
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	char hex[2 * CONFIG_SIZE + 1];
	const char *cdev = device_cdev(DEVICE_PCI);
	int session_fd, dev_fd, fd, snap_fd, stage;
	__u64 dma_src = 0;

	ksft_print_header();
	ksft_set_plan(12);
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

	session_fd = luo_retrieve_session(luo_fd, UNUSED_SESSION);
	ksft_test_result(session_fd >= 0 && luo_session_finish(session_fd) == 0,
			 "finish the session of %s without retrieving it\n", UNUSED_PCI);
	ksft_test_result(kmsg_has(UNUSED_PCI ": never taken back") == 1 &&
			 bus_master(UNUSED_PCI) == 0,
			 "%s was reset, bus mastering off\n", UNUSED_PCI);
	fd = device_cdev(UNUSED_PCI) ? open(device_cdev(UNUSED_PCI), O_RDWR) : -1;
	ksft_test_result(fd >= 0 && bind_device(fd) == 0,
			 "and is a vfio-pci device like any other again\n");
	if (fd >= 0)
		close(fd);
	if (session_fd >= 0)
		close(session_fd);

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
	ksft_test_result(dev_fd >= 0 && bar0_rw64(dev_fd, 0, &dma_src, EDU_DMA_SRC) == 0 &&
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
