// SPDX-License-Identifier: GPL-2.0-only
/*
 * A device kept across a kexec into a kernel that never takes it back.
 *
 * Stage 1 opens an igb through vfio, turns on bus mastering, writes RLPML
 * (BAR 0 + 0x5004, 0x2600 after a reset) and preserves the device file. The
 * kernel of stage 2 is built without the vfio-pci Live Update handler
 * (scripts/configs/no-vfio-handler.config), like a kernel whose handler
 * failed to start: nothing can claim the device. It boots with
 * pci_liveupdate.claim_timeout=20, long enough for a debug kernel under TCG
 * to reach userspace before it.
 *
 * Stage 2 checks, reading the device through sysfs rather than a driver,
 * that the device is incoming at first (vfio refuses to open it, RLPML kept,
 * bus mastering off since the kexec), that the PCI core releases it once
 * the claim timeout has passed and not before, with one message, and that
 * the release reset it (RLPML 0x2600) and left bus mastering off, after
 * which vfio-pci opens it like any device.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-unclaimed.toml.
 */

#include <time.h>
#include "igb.h"

#define DEVICE_PCI		"0000:01:00.0"
#define SESSION			"vfio-pci-lu-unclaimed"
#define DEVICE_TOKEN		0x7f30
#define TEST_RLPML		0x1234
#define CLAIM_TIMEOUT_S		20
#define RELEASED		DEVICE_PCI ": no driver claimed it within"

static void run_stage_1(void)
{
	__u32 rlpml = TEST_RLPML;
	int luo_fd, session_fd, dev_fd;

	ksft_print_header();
	ksft_set_plan(3);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	luo_fd = open_luo();
	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && enable_master(dev_fd, DEVICE_PCI) == 0,
			 "bind %s, bus mastering on\n", DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && bar0_rw32(dev_fd, 1, &rlpml, IGB_RLPML) == 0 &&
			 igb_rlpml(dev_fd) == TEST_RLPML,
			 "write RLPML %#x\n", TEST_RLPML);
	session_fd = luo_create_session(luo_fd, SESSION);
	ksft_test_result(session_fd >= 0 && dev_fd >= 0 &&
			 luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN) == 0,
			 "preserve the device file\n");
	close(luo_fd);
	hold_sessions_for_kexec();
}

/* Seconds since boot. */
static double uptime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_stage_2(void)
{
	const char *cdev = device_cdev(DEVICE_PCI);
	double released_at = 0;
	int luo_fd, fd;

	ksft_print_header();
	ksft_set_plan(6);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");

	/* The premise: this kernel cannot take the device file back. */
	luo_fd = luo_open_device();
	ksft_test_result(luo_fd < 0,
			 "no handler for vfio files: LUO cannot restore the session (%d)\n",
			 luo_fd);
	if (luo_fd >= 0)
		close(luo_fd);

	fd = cdev ? open(cdev, O_RDWR) : -1;
	ksft_test_result(uptime() < CLAIM_TIMEOUT_S && fd < 0 && errno == EBUSY,
			 "before the claim timeout %s is incoming: vfio refuses it\n",
			 DEVICE_PCI);
	if (fd >= 0)
		close(fd);
	ksft_test_result(pci_bar0_read32(DEVICE_PCI, IGB_RLPML) == TEST_RLPML &&
			 bus_master(DEVICE_PCI) == 0,
			 "RLPML kept (%#x), bus mastering off since the kexec\n",
			 pci_bar0_read32(DEVICE_PCI, IGB_RLPML));

	while (uptime() < 60) {
		if (kmsg_has(RELEASED) == 1) {
			released_at = uptime();
			break;
		}
		usleep(100 * 1000);
	}
	ksft_test_result(released_at >= CLAIM_TIMEOUT_S,
			 "released once the claim timeout passed, at %.1f s after boot\n",
			 released_at);
	ksft_test_result(pci_bar0_read32(DEVICE_PCI, IGB_RLPML) == IGB_RLPML_RESET &&
			 bus_master(DEVICE_PCI) == 0,
			 "the release reset it: RLPML %#x, bus mastering off\n",
			 pci_bar0_read32(DEVICE_PCI, IGB_RLPML));
	fd = open_bound(DEVICE_PCI);
	ksft_test_result(fd >= 0 && igb_rlpml(fd) == IGB_RLPML_RESET,
			 "vfio-pci opens it like any device\n");
	if (fd >= 0)
		close(fd);
	ksft_finished();
}

int main(int argc, char *argv[])
{
	/* Stage 2 runs without LUO: this kernel cannot restore the session. */
	if (stage_arg(argc, argv, 2) == 1)
		run_stage_1();
	run_stage_2();
}
