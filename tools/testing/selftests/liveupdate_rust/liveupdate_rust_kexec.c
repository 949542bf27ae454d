// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-stage test of the Rust Live Update abstractions (lib/tests/liveupdate_rust.rs).
 *
 * Stage 1 sets a value on a /dev/rust_luo_test file, makes it stand for the
 * PCI device 0000:02:00.0 and preserves the file; the test device's FLB
 * counts the preserved files and the PCI core records the device. Both
 * functions of the test device get bus mastering turned on. After the kexec,
 * stage 2 retrieves the file and checks that the value, the FLB count and the
 * PCI device came across, and that the kexec cleared bus mastering of the
 * preserved function as of the other one: no IOMMU translates a device's DMA
 * across the kexec, so no device may master the bus then. Stage 2 boots with bus
 * numbers assigned anew (see the scenario), so finding the device at the same
 * BDF shows that its bus numbers were kept. Finishing the session finishes
 * the FLB and the device.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <libliveupdate.h>
#include <lu_pci_sysfs.h>
#include <lu_stage.h>

#define TEST_DEVICE		"/dev/rust_luo_test"
#define SET_VALUE		_IO('L', 0x70)
#define GET_VALUE		_IO('L', 0x71)
#define GET_FLB_FILES		_IO('L', 0x72)
#define GET_FLB_OUTGOING	_IO('L', 0x73)
#define SET_PCI_DEVICE		_IO('L', 0x74)
#define GET_PCI_INCOMING	_IO('L', 0x75)
#define LEAVE_UNFINISHED	_IO('L', 0x76)

/* Two functions of one device behind a root port (tools/vmtest scenario). */
#define PRESERVED_PCI		"0000:02:00.0"
#define PRESERVED_ADDR		0x000200	/* domain << 16 | bus << 8 | devfn */
#define CONTROL_PCI		"0000:02:00.1"
/* Preserved too, and left unfinished in stage 2, as by a buggy driver. */
#define UNFINISHED_PCI		"0000:01:00.0"
#define UNFINISHED_ADDR		0x000100
#define UNFINISHED_TOKEN	(TEST_TOKEN + 2)
/* An SR-IOV physical function (QEMU igb) behind a third root port. */
#define SRIOV_PF		"0000:03:00.0"

#define TEST_SESSION		"rust-luo-test"
#define TEST_TOKEN		0x5275
#define TEST_VALUE		0x1badcafeL

#define STATE_SESSION		"rust_luo_test_state"
#define STATE_TOKEN		997

/* ioctl() result, or -errno */
static long dev_ioctl(int fd, unsigned long cmd, unsigned long arg)
{
	long ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* Enables the device (power state D0) and turns bus mastering on. */
static int pci_enable_master(const char *bdf)
{
	unsigned short cmd;
	int fd, ok;

	fd = pci_sysfs_open(bdf, "enable", O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, "1", 1) == 1;
	close(fd);
	if (!ok || pci_command(bdf) < 0)
		return -1;
	cmd = pci_command(bdf) | PCI_COMMAND_MASTER;
	fd = pci_sysfs_open(bdf, "config", O_WRONLY);
	if (fd < 0)
		return -1;
	ok = pwrite(fd, &cmd, sizeof(cmd), PCI_COMMAND) == sizeof(cmd);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Binds the PF to pci-pf-stub, enables one VF and returns its
 * domain << 16 | bus << 8 | devfn, or -1.
 */
static long enable_vf(void)
{
	char link[256], *bdf;
	unsigned int domain, bus, dev, fn;
	ssize_t len;
	int fd;

	if (pci_sysfs_write(SRIOV_PF, "driver_override", "pci-pf-stub"))
		return -1;
	fd = open("/sys/bus/pci/drivers_probe", O_WRONLY);
	if (fd < 0)
		return -1;
	len = write(fd, SRIOV_PF, strlen(SRIOV_PF));
	close(fd);
	if (len < 0 || pci_sysfs_write(SRIOV_PF, "sriov_numvfs", "1"))
		return -1;
	len = readlink("/sys/bus/pci/devices/" SRIOV_PF "/virtfn0", link,
		       sizeof(link) - 1);
	if (len < 0)
		return -1;
	link[len] = 0;
	bdf = strrchr(link, '/');
	if (!bdf || sscanf(bdf + 1, "%x:%x:%x.%x", &domain, &bus, &dev, &fn) != 4)
		return -1;
	return (long)domain << 16 | bus << 8 | dev << 3 | fn;
}

static void run_stage_1(int luo_fd)
{
	int session_fd, tmp_fd, dev_fd, vf_fd, unf_fd;
	long vf;

	ksft_print_header();
	ksft_set_plan(13);
	create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, 2);

	ksft_test_result(pci_enable_master(PRESERVED_PCI) == 0 &&
			 pci_enable_master(CONTROL_PCI) == 0 &&
			 bus_master(PRESERVED_PCI) == 1 &&
			 bus_master(CONTROL_PCI) == 1,
			 "bus mastering on for both functions\n");

	dev_fd = open(TEST_DEVICE, O_RDWR);
	if (dev_fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	ksft_test_result(dev_ioctl(dev_fd, SET_PCI_DEVICE, PRESERVED_ADDR) == 0,
			 "the file stands for %s\n", PRESERVED_PCI);
	ksft_test_result(dev_ioctl(dev_fd, SET_VALUE, TEST_VALUE) == 0,
			 "set the file's value\n");
	ksft_test_result(dev_ioctl(dev_fd, GET_VALUE, 0) == TEST_VALUE,
			 "read the value back\n");
	ksft_test_result(dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == -ENOENT,
			 "no outgoing FLB before any preserve\n");

	/* Closing a session unpreserves its files, and the FLB with the last. */
	tmp_fd = luo_create_session(luo_fd, "rust-luo-test-tmp");
	if (tmp_fd < 0)
		fail_exit("create the temporary session");
	ksft_test_result(luo_session_preserve_fd(tmp_fd, dev_fd, TEST_TOKEN) == 0 &&
			 dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == 1,
			 "preserving the file preserves the FLB\n");
	close(tmp_fd);
	ksft_test_result(dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == -ENOENT,
			 "closing the session unpreserves file and FLB\n");

	/* A VF's BDF is not stable across a kexec: the PCI core refuses it. */
	vf = enable_vf();
	ksft_test_result(vf >= 0, "a VF of %s to try\n", SRIOV_PF);
	vf_fd = open(TEST_DEVICE, O_RDWR);
	tmp_fd = luo_create_session(luo_fd, "rust-luo-test-vf");
	if (vf_fd < 0 || tmp_fd < 0)
		fail_exit("open a file and a session for the VF");
	ksft_test_result(vf >= 0 && dev_ioctl(vf_fd, SET_PCI_DEVICE, vf) == 0 &&
			 luo_session_preserve_fd(tmp_fd, vf_fd, TEST_TOKEN) == -EINVAL &&
			 dev_ioctl(vf_fd, GET_FLB_OUTGOING, 0) == -ENOENT,
			 "preserving a VF is -EINVAL and leaves nothing behind\n");
	close(tmp_fd);
	close(vf_fd);
	pci_sysfs_write(SRIOV_PF, "sriov_numvfs", "0");

	session_fd = luo_create_session(luo_fd, TEST_SESSION);
	if (session_fd < 0)
		fail_exit("create session %s", TEST_SESSION);
	ksft_test_result(luo_session_preserve_fd(session_fd, dev_fd,
						 TEST_TOKEN) == 0,
			 "preserve the file\n");
	ksft_test_result(luo_session_preserve_fd(session_fd, dev_fd,
						 TEST_TOKEN + 1) == -EBUSY,
			 "preserving it twice is -EBUSY\n");
	unf_fd = open(TEST_DEVICE, O_RDWR);
	if (unf_fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	ksft_test_result(dev_ioctl(unf_fd, SET_PCI_DEVICE, UNFINISHED_ADDR) == 0 &&
			 luo_session_preserve_fd(session_fd, unf_fd,
						 UNFINISHED_TOKEN) == 0,
			 "preserve a second file, standing for %s\n",
			 UNFINISHED_PCI);
	ksft_test_result(dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == 2,
			 "the FLB counts two files\n");
	close(unf_fd);
	close(dev_fd);

	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	int session_fd, dev_fd, fd, park_fd, unf_fd, stage;

	ksft_print_header();
	ksft_set_plan(11);
	restore_and_read_stage(state_session_fd, STATE_TOKEN, &stage);
	if (stage != 2)
		fail_exit("expected stage 2, state says %d", stage);

	ksft_test_result(pci_command(PRESERVED_PCI) >= 0,
			 "%s kept its BDF\n", PRESERVED_PCI);

	session_fd = luo_retrieve_session(luo_fd, TEST_SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", TEST_SESSION);

	/* The test device hands back the file opened last (see the driver). */
	dev_fd = open(TEST_DEVICE, O_RDWR);
	if (dev_fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	fd = luo_session_retrieve_fd(session_fd, TEST_TOKEN);
	ksft_test_result(fd >= 0, "retrieve the file\n");
	ksft_test_result(fd >= 0 && ioctl(fd, GET_VALUE, 0) == TEST_VALUE,
			 "the value crossed the kexec\n");
	ksft_test_result(fd >= 0 && ioctl(fd, GET_FLB_FILES, 0) == 2,
			 "the FLB counted two preserved files\n");
	ksft_test_result(fd >= 0 && dev_ioctl(fd, GET_PCI_INCOMING, 0) == 1,
			 "%s came in preserved\n", PRESERVED_PCI);
	ksft_test_result(bus_master(PRESERVED_PCI) == 0 && bus_master(CONTROL_PCI) == 0,
			 "the kexec cleared bus mastering of %s, preserved, as of %s\n",
			 PRESERVED_PCI, CONTROL_PCI);
	ksft_test_result(luo_session_retrieve_fd(session_fd, 0xdead) == -ENOENT,
			 "an unknown token is -ENOENT\n");
	/* The test device hands back the file opened last, as above. */
	park_fd = open(TEST_DEVICE, O_RDWR);
	if (park_fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	unf_fd = luo_session_retrieve_fd(session_fd, UNFINISHED_TOKEN);
	ksft_test_result(unf_fd >= 0 && dev_ioctl(unf_fd, LEAVE_UNFINISHED, 0) == 0,
			 "retrieve the second file and leave %s unfinished\n",
			 UNFINISHED_PCI);
	ksft_test_result(luo_session_finish(session_fd) == 0,
			 "finish the session\n");
	ksft_test_result(kmsg_has(UNFINISHED_PCI " was preserved but never finished") == 1 &&
			 kmsg_has(PRESERVED_PCI " was preserved but never finished") == 0,
			 "the unfinished device is reported, the finished one is not\n");
	ksft_test_result(fd >= 0 && dev_ioctl(fd, GET_PCI_INCOMING, 0) == 0,
			 "finishing the session finished the device\n");
	close(unf_fd);
	close(park_fd);
	close(fd);
	close(dev_fd);

	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish state session");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	return luo_test(argc, argv, STATE_SESSION, run_stage_1, run_stage_2);
}
