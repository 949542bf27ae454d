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
 * After the kexec, stage 2 checks that a plain open of the cdev, and of the
 * device through its group, are refused while the device is incoming,
 * retrieves the file and binds it, and checks in the physical command
 * register (read through sysfs, not vfio) that bus mastering, which the
 * kexec cleared, is off until the device is attached to an IOAS and on
 * after; that the config space vfio shows is the one of stage 1 and that
 * the BAR register kept its value; then finishes the session, after which
 * the cdev opens again.
 *
 * The device is an igb (Intel 82576, 8086:10c9), because its reset shows in
 * its registers: a function reset (FLR) sets every register back to its
 * reset value, the Receive Long Packet Maximum Length register (RLPML, BAR 0
 * + 0x5004) to 0x2600. QEMU's edu would not do: its registers survive a
 * reset. The control is a second igb set up the same way in stage 1 but not
 * preserved: in stage 2 it must show the reset (RLPML 0x2600, bus mastering
 * off) where the preserved one shows none; without that, "kept its value"
 * would prove nothing.
 *
 * Two more devices (edus), each preserved in a session of its own, are not
 * taken back: stage 2 finishes the session of one without retrieving its
 * file, and of the other after retrieving the file but never binding it;
 * either device must then be given back to vfio-pci, with bus mastering off,
 * as any device that was not kept.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate.toml for the machine.
 */

#include <stdlib.h>
#include <libliveupdate.h>
#include "igb.h"

#define DEVICE_PCI		"0000:03:00.0"
#define CONTROL_PCI		"0000:04:00.0"
#define UNUSED_PCI		"0000:02:00.0"
#define UNBOUND_PCI		"0000:06:00.0"
#define PCI_INTERRUPT_LINE	0x3c
#define TEST_IRQ_LINE		0x5a
#define TEST_RLPML		0x1234

#define SESSION			"vfio-pci-lu-test"
#define DEVICE_TOKEN		0x7f10
#define SNAPSHOT_TOKEN		0x7f11
#define UNUSED_TOKEN		0x7f12
#define UNUSED_SESSION		"vfio-pci-lu-unused"
#define UNBOUND_SESSION		"vfio-pci-lu-unbound"
#define UNUSED_DEVICE_TOKEN	0x7f13
#define UNKNOWN_TOKEN		0x7f1f
#define STATE_SESSION		"vfio_pci_lu_test_state"
#define STATE_TOKEN		998

#define CONFIG_SIZE		256

/* Writes the test values into Interrupt Line and RLPML; 0 or -1. */
static int write_test_values(int fd)
{
	__u8 irq_line = TEST_IRQ_LINE;
	__u32 rlpml = TEST_RLPML;

	if (config_rw(fd, 1, &irq_line, 1, PCI_INTERRUPT_LINE))
		return -1;
	return bar0_rw32(fd, 1, &rlpml, IGB_RLPML);
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

/* Binds the device at @pci, turns bus mastering on, preserves it in @session. */
static int preserve_unused_device(int luo_fd, const char *pci, const char *session)
{
	int fd = open_bound(pci);
	int session_fd;

	if (fd < 0 || enable_master(fd, pci))
		return -1;
	session_fd = luo_create_session(luo_fd, session);
	if (session_fd < 0)
		return -1;
	return luo_session_preserve_fd(session_fd, fd, UNUSED_DEVICE_TOKEN);
}

static void run_stage_1(int luo_fd)
{
	char hex[2 * CONFIG_SIZE + 1];
	int session_fd, dev_fd, control_fd, ret;

	start_stage_1(luo_fd, STATE_SESSION, STATE_TOKEN, 9);

	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0, "bind %s to iommufd and attach an IOAS\n", DEVICE_PCI);
	if (dev_fd < 0)
		fail_exit("no device to go on with");
	ksft_test_result(enable_master(dev_fd, DEVICE_PCI) == 0,
			 "memory decoding and bus mastering on\n");
	ksft_test_result(write_test_values(dev_fd) == 0 && igb_rlpml(dev_fd) == TEST_RLPML,
			 "write the Interrupt Line and RLPML (BAR 0) registers\n");

	/* The control: the same, but not preserved; kept open up to the kexec. */
	control_fd = open_bound(CONTROL_PCI);
	ksft_test_result(control_fd >= 0 && enable_master(control_fd, CONTROL_PCI) == 0 &&
			 write_test_values(control_fd) == 0 &&
			 igb_rlpml(control_fd) == TEST_RLPML,
			 "set up the control %s the same way, not preserved\n", CONTROL_PCI);

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
	ksft_test_result(preserve_unused_device(luo_fd, UNUSED_PCI, UNUSED_SESSION) == 0,
			 "preserve %s, bus master, alone in a session\n", UNUSED_PCI);
	ksft_test_result(preserve_unused_device(luo_fd, UNBOUND_PCI, UNBOUND_SESSION) == 0,
			 "preserve %s, bus master, alone in a session\n", UNBOUND_PCI);

	close(luo_fd);
	hold_sessions_for_kexec();
}

/*
 * Stage 2 for a device not taken back: its file never retrieved, or retrieved
 * but never bound (@retrieve). Finishing the session gives the device back.
 */
static void check_given_back(int luo_fd, const char *pci, const char *session,
			     int retrieve)
{
	int session_fd = luo_retrieve_session(luo_fd, session);
	int file_fd = -1, fd;
	char logged[64];

	if (retrieve && session_fd >= 0)
		file_fd = luo_session_retrieve_fd(session_fd, UNUSED_DEVICE_TOKEN);
	ksft_test_result(session_fd >= 0 && (!retrieve || file_fd >= 0) &&
			 luo_session_finish(session_fd) == 0,
			 "finish the session of %s, %s\n", pci,
			 retrieve ? "its file retrieved but not bound" : "its file not retrieved");
	snprintf(logged, sizeof(logged), "%s: never taken back", pci);
	ksft_test_result(kmsg_has(logged) == 1 && bus_master(pci) == 0,
			 "%s was reset, bus mastering off\n", pci);
	fd = open_bound(pci);
	ksft_test_result(fd >= 0, "%s is a vfio-pci device like any other again\n", pci);
	if (fd >= 0)
		close(fd);
	if (file_fd >= 0)
		close(file_fd);
	if (session_fd >= 0)
		close(session_fd);
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	char hex[2 * CONFIG_SIZE + 1];
	const char *cdev = device_cdev(DEVICE_PCI);
	int session_fd, dev_fd, control_fd, group_fd, fd, snap_fd;

	start_stage_2(state_session_fd, STATE_TOKEN, 19);
	if (!cdev)
		fail_exit("no vfio cdev for %s", DEVICE_PCI);

	fd = open(cdev, O_RDWR);
	ksft_test_result(fd < 0 && errno == EBUSY,
			 "opening %s while incoming is -EBUSY\n", cdev);
	if (fd >= 0)
		close(fd);
	group_fd = open_group(DEVICE_PCI);
	fd = group_fd < 0 ? -1 : ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, DEVICE_PCI);
	ksft_test_result(group_fd >= 0 && fd < 0 && errno == EBUSY,
			 "VFIO_GROUP_GET_DEVICE_FD while incoming is -EBUSY\n");
	if (fd >= 0)
		close(fd);
	if (group_fd >= 0)
		close(group_fd);

	check_given_back(luo_fd, UNUSED_PCI, UNUSED_SESSION, 0);
	check_given_back(luo_fd, UNBOUND_PCI, UNBOUND_SESSION, 1);

	session_fd = luo_retrieve_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", SESSION);
	fd = luo_session_retrieve_fd(session_fd, UNKNOWN_TOKEN);
	ksft_test_result(fd == -ENOENT, "retrieving an unknown token is -ENOENT (%d)\n", fd);
	dev_fd = luo_session_retrieve_fd(session_fd, DEVICE_TOKEN);
	ksft_test_result(dev_fd >= 0, "retrieve the device file\n");
	ksft_test_result(dev_fd >= 0 && bind_iommufd(dev_fd, NULL) == 0 &&
			 bus_master(DEVICE_PCI) == 0,
			 "bind it to iommufd: bus mastering off, as the kexec left it\n");
	ksft_test_result(dev_fd >= 0 && attach_ioas(dev_fd, ioas_id) == 0 &&
			 bus_master(DEVICE_PCI) == 1,
			 "attach an IOAS: bus mastering back on, as in stage 1\n");
	snap_fd = -1;
	if (dev_fd >= 0 && config_hex(dev_fd, hex) == 0)
		snap_fd = restore_and_verify_memfd(session_fd, SNAPSHOT_TOKEN, hex);
	ksft_test_result(snap_fd >= 0, "vfio shows the config space of stage 1\n");
	ksft_test_result(dev_fd >= 0 && igb_rlpml(dev_fd) == TEST_RLPML,
			 "RLPML kept its value: the device was not reset\n");
	ksft_test_result(kmsg_has(DEVICE_PCI ": state restored from the previous kernel") == 1,
			 "the kernel restored the preserved state, without a reset\n");

	/* The control took the normal path: the open reset it. */
	control_fd = open_bound(CONTROL_PCI);
	ksft_test_result(control_fd >= 0 && bus_master(CONTROL_PCI) == 0,
			 "control %s: opens, bus mastering off\n", CONTROL_PCI);
	ksft_test_result(control_fd >= 0 && igb_rlpml(control_fd) == IGB_RLPML_RESET,
			 "control %s: RLPML back to its reset value %#x (%#x)\n",
			 CONTROL_PCI, IGB_RLPML_RESET, control_fd >= 0 ? igb_rlpml(control_fd) : 0);
	if (control_fd >= 0)
		close(control_fd);

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
