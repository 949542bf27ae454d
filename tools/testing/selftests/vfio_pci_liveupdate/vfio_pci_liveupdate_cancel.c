// SPDX-License-Identifier: GPL-2.0-only
/*
 * One-boot test of the vfio-pci Live Update file handler when a preserve
 * fails half-way or a kexec is cancelled after the device was frozen.
 *
 * The device is QEMU's edu (1234:11e8) bound to vfio-pci, with MSI: writing
 * BAR 0 + 0x60 raises its interrupt, BAR 0 + 0x64 acknowledges it. The test
 * binds the device as a VMM would and routes the interrupt to an eventfd.
 *
 * Rollback: while the PCI core has the device preserved for another file
 * (the Rust test device /dev/rust_luo_test standing for it), preserving the
 * device file fails with -EBUSY; then preserving it works: the failed attempt
 * left nothing behind. (vfio_pci_liveupdate_faults fails each allocation.)
 *
 * Cancel: the device file is preserved, a test file whose freeze fails is
 * preserved in a session created after the device's, and a kexec is
 * started. LUO freezes the device (host interrupt held and masked at the
 * device, state changes refused), fails on the test file, unfreezes the
 * device and returns the error. The config space must then be as before the
 * freeze, the interrupt (MSI) delivered again, and config writes and
 * VFIO_DEVICE_SET_IRQS work again; a second cancelled kexec checks the same
 * with INTx, and with MSI-X on an igb (0000:04:00.0) preserved in the same
 * session. A third kexec starts while a reset of the igb is under way: the
 * freeze must wait for the reset to end, so that the record it writes is the
 * device's last state. Meanwhile the edu is frozen, and a hot reset through
 * its sibling function 0000:01:00.1, which would reset it too, is refused;
 * it works again once the kexec is cancelled. The kexec kernel is loaded from the path given as
 * argument; should the cancel not happen, the machine kexecs into it without
 * an initramfs, and the test run fails loudly.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/reboot.h>
#include <linux/reboot.h>
#include <libliveupdate.h>
#include "edu.h"
#include "igb.h"
#include "kexec.h"

#define DEVICE_PCI		"0000:01:00.0"
#define DEVICE_ADDR		0x000100	/* domain << 16 | bus << 8 | devfn */
#define PCI_INTERRUPT_LINE	0x3c
#define TEST_DMA_SRC		0x0123456789abcdefULL
#define MSI			VFIO_PCI_MSI_IRQ_INDEX
#define INTX			VFIO_PCI_INTX_IRQ_INDEX
#define MSIX			VFIO_PCI_MSIX_IRQ_INDEX

/* The edu's sibling function, on the same bus. */
#define SIBLING_PCI		"0000:01:00.1"

/* An igb (82576), for MSI-X. */
#define MSIX_PCI		"0000:04:00.0"
#define MSIX_TOKEN		0x7f23

#define OTHER_SESSION		"vfio-pci-lu-other"
#define SESSION			"vfio-pci-lu-cancel"
#define LATE_SESSION		"vfio-pci-lu-cancel-late"
#define OTHER_TOKEN		0x7f20
#define DEVICE_TOKEN		0x7f21
#define REFUSING_TOKEN		0x7f22

/*
 * Whether the config space of @pci is @before again, but for the status
 * register, which the device changes by itself: the freeze masked its
 * interrupts at the device, and the cancel must have undone exactly that.
 */
static int config_as_before(const char *pci, const unsigned char *before)
{
	unsigned char now[256];

	return pci_config_read(pci, now, sizeof(now), 0) == sizeof(now) &&
	       !memcmp(now, before, PCI_STATUS) &&
	       !memcmp(now + PCI_STATUS + 2, before + PCI_STATUS + 2, 256 - PCI_STATUS - 2);
}

/* A test file standing for nothing, or for the device when @pci. */
static int test_file(int pci)
{
	int fd = open(TEST_DEVICE, O_RDWR);

	if (fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	if (ioctl(fd, SET_VALUE, 1) ||
	    (pci && ioctl(fd, SET_PCI_DEVICE, DEVICE_ADDR)))
		fail_exit("set up %s", TEST_DEVICE);
	return fd;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A VFIO_DEVICE_RESET run by another thread. */
struct reset_run {
	int fd;
	int ret;
	atomic_int started;
	double ended_ms;
};

static void *reset_device(void *arg)
{
	struct reset_run *run = arg;

	atomic_store(&run->started, 1);
	run->ret = ioctl(run->fd, VFIO_DEVICE_RESET) ? -errno : 0;
	run->ended_ms = now_ms();
	return NULL;
}

/* A reboot(LINUX_REBOOT_CMD_KEXEC) run by another thread. */
struct kexec_run {
	int ret;
	double started_ms;
	double returned_ms;
};

static void *start_kexec_thread(void *arg)
{
	struct kexec_run *run = arg;

	run->started_ms = now_ms();
	run->ret = reboot(LINUX_REBOOT_CMD_KEXEC) ? -errno : 0;
	run->returned_ms = now_ms();
	return NULL;
}

/* VFIO_DEVICE_PCI_HOT_RESET through the device cdev @fd: 0 or -errno. */
static int hot_reset(int fd)
{
	struct vfio_pci_hot_reset reset = { .argsz = sizeof(reset) };

	return ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, &reset) ? -errno : 0;
}

/*
 * Starts a kexec of @kernel 10 ms into a function reset of the igb @igb_fd,
 * which lasts at least the 100 ms the PCIe specification asks to wait after
 * it. The edu is frozen first; the igb's freeze then waits for the reset.
 * 30 ms into the kexec, a hot reset through @sibling_fd, the edu's sibling
 * function, would reset the frozen edu with it: its result goes to
 * @hot_reset_ret. Whether the reset had ended (5 ms allowed for its thread
 * to note it) when the kexec came back, cancelled, in @kexec_ret.
 */
static bool kexec_waits_for_reset(const char *kernel, int igb_fd, int sibling_fd,
				  int *kexec_ret, int *hot_reset_ret)
{
	struct reset_run reset = { .fd = igb_fd };
	struct kexec_run kexec = { 0 };
	pthread_t reset_thread, kexec_thread;

	load_kexec(kernel);
	if (pthread_create(&reset_thread, NULL, reset_device, &reset))
		fail_exit("start the reset thread");
	while (!atomic_load(&reset.started))
		;
	usleep(10000);
	if (pthread_create(&kexec_thread, NULL, start_kexec_thread, &kexec))
		fail_exit("start the kexec thread");
	usleep(30000);
	*hot_reset_ret = hot_reset(sibling_fd);
	pthread_join(kexec_thread, NULL);
	pthread_join(reset_thread, NULL);
	*kexec_ret = kexec.ret;
	ksft_print_msg("the kexec came back after %.1f ms; the reset ended at %.1f ms\n",
		       kexec.returned_ms - kexec.started_ms, reset.ended_ms - kexec.started_ms);
	return reset.ret == 0 && reset.ended_ms <= kexec.returned_ms + 5;
}

int main(int argc, char *argv[])
{
	const char *cdev = device_cdev(DEVICE_PCI);
	unsigned char before[256], igb_before[256];
	__u8 irq_line = 0x4b;
	__u64 dma_src = TEST_DMA_SRC;
	int luo_fd, session_fd, other_fd, late_fd, dev_fd, refusing_fd, igb_fd, ret;
	int efd, msix_efd, kexec_ret, sibling_fd, hot_reset_ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s KERNEL-IMAGE\n", argv[0]);
		return KSFT_FAIL;
	}
	ksft_print_header();
	ksft_set_plan(20);
	if (!cdev)
		fail_exit("no vfio cdev for %s", DEVICE_PCI);
	luo_fd = luo_open_device();
	if (luo_fd < 0)
		fail_exit("open /dev/liveupdate");
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	efd = eventfd(0, EFD_NONBLOCK);
	msix_efd = eventfd(0, EFD_NONBLOCK);
	if (efd < 0 || msix_efd < 0)
		fail_exit("eventfd");

	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && enable_master(dev_fd, DEVICE_PCI) == 0 &&
			 bar0_rw64(dev_fd, 1, &dma_src, EDU_DMA_SRC) == 0,
			 "bind %s, enable it, write a BAR 0 register\n", cdev);
	if (dev_fd < 0)
		fail_exit("no device to go on with");
	ksft_test_result(set_irqs(dev_fd, MSI, VFIO_IRQ_SET_ACTION_TRIGGER, efd) == 0 &&
			 edu_interrupt_arrives(dev_fd, MSI, efd),
			 "its MSI reaches an eventfd\n");

	/*
	 * Sessions freeze in the order they were created: the device's, then
	 * the one of a file that refuses to freeze, preserved first so that
	 * the PCI core's record is live before KHO allocations are made to
	 * fail, and the handler's own allocation is the one that fails.
	 */
	other_fd = luo_create_session(luo_fd, OTHER_SESSION);
	session_fd = luo_create_session(luo_fd, SESSION);
	late_fd = luo_create_session(luo_fd, LATE_SESSION);
	if (other_fd < 0 || session_fd < 0 || late_fd < 0)
		fail_exit("create sessions");
	refusing_fd = test_file(0);
	if (ioctl(refusing_fd, FAIL_FREEZE))
		fail_exit("make the test file refuse to freeze");
	ksft_test_result(luo_session_preserve_fd(late_fd, refusing_fd, REFUSING_TOKEN) == 0,
			 "preserve a file that refuses to freeze, in a later session\n");

	/* Rollback of preserves that fail. */
	if (luo_session_preserve_fd(other_fd, test_file(1), OTHER_TOKEN))
		fail_exit("preserve a test file standing for %s", DEVICE_PCI);
	ret = luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN);
	ksft_test_result(ret == -EBUSY,
			 "preserving it while the PCI core has it for another file is -EBUSY (%d)\n",
			 ret);
	close(other_fd);
	ret = luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN);
	ksft_test_result(ret == 0,
			 "then preserving it works: the failure left nothing (%d)\n", ret);

	/* A kexec cancelled after the device was frozen. */
	if (pci_config_read(DEVICE_PCI, before, sizeof(before), 0) != sizeof(before))
		fail_exit("read the config space of %s", DEVICE_PCI);
	ret = start_kexec(argv[1]);
	ksft_test_result(ret == -ECANCELED,
			 "the kexec is cancelled with the error of that file (%d)\n", ret);
	ksft_test_result(config_as_before(DEVICE_PCI, before),
			 "its config space is as before the freeze (MSI)\n");
	ksft_test_result(kmsg_has(DEVICE_PCI ": kexec cancelled") == 1,
			 "the device was frozen, then unfrozen\n");
	ksft_test_result(edu_interrupt_arrives(dev_fd, MSI, efd),
			 "its MSI reaches the eventfd again\n");
	ksft_test_result(config_rw(dev_fd, 1, &irq_line, 1, PCI_INTERRUPT_LINE) == 0,
			 "config writes work again\n");
	ksft_test_result(set_irqs(dev_fd, MSI, VFIO_IRQ_SET_ACTION_TRIGGER, -1) == 0,
			 "VFIO_DEVICE_SET_IRQS works again\n");

	/*
	 * The same with INTx, which vfio masks at each interrupt, and with
	 * MSI-X on an igb preserved in the same session.
	 */
	ksft_test_result(set_irqs(dev_fd, INTX, VFIO_IRQ_SET_ACTION_TRIGGER, efd) == 0 &&
			 edu_interrupt_arrives(dev_fd, INTX, efd),
			 "its INTx reaches the eventfd\n");
	igb_fd = open_bound(MSIX_PCI);
	ksft_test_result(igb_fd >= 0 && enable_master(igb_fd, MSIX_PCI) == 0 &&
			 set_irqs(igb_fd, MSIX, VFIO_IRQ_SET_ACTION_TRIGGER, msix_efd) == 0 &&
			 igb_msix_arrives(igb_fd, msix_efd) &&
			 luo_session_preserve_fd(session_fd, igb_fd, MSIX_TOKEN) == 0,
			 "an igb's MSI-X reaches an eventfd; preserve it too\n");
	if (pci_config_read(DEVICE_PCI, before, sizeof(before), 0) != sizeof(before) ||
	    pci_config_read(MSIX_PCI, igb_before, sizeof(igb_before), 0) != sizeof(igb_before))
		fail_exit("read the config spaces");
	ret = start_kexec(argv[1]);
	ksft_test_result(ret == -ECANCELED && config_as_before(DEVICE_PCI, before) &&
			 config_as_before(MSIX_PCI, igb_before),
			 "after another cancelled kexec, both config spaces are as before (INTx, MSI-X)\n");
	ksft_test_result(edu_interrupt_arrives(dev_fd, INTX, efd),
			 "the INTx reaches the eventfd again\n");
	ksft_test_result(igb_msix_arrives(igb_fd, msix_efd),
			 "and the igb's MSI-X reaches its eventfd again\n");
	set_irqs(dev_fd, INTX, VFIO_IRQ_SET_ACTION_TRIGGER, -1);

	sibling_fd = open_bound(SIBLING_PCI);
	if (sibling_fd < 0)
		fail_exit("bind %s", SIBLING_PCI);
	ret = kexec_waits_for_reset(argv[1], igb_fd, sibling_fd, &kexec_ret, &hot_reset_ret);
	ksft_test_result(ret && kexec_ret == -ECANCELED,
			 "a kexec started during a reset of the igb waits for the reset (%d)\n",
			 kexec_ret);
	/* vfio's answer for a bus no reset may reach. */
	ksft_test_result(hot_reset_ret == -ENODEV,
			 "meanwhile a hot reset through %s, which would reach the frozen %s, is refused (%d)\n",
			 SIBLING_PCI, DEVICE_PCI, hot_reset_ret);
	ret = hot_reset(sibling_fd);
	ksft_test_result(ret == 0, "once the kexec is cancelled, the same hot reset works (%d)\n",
			 ret);
	close(sibling_fd);

	/* Closing the sessions unpreserves the files; the device file carries on. */
	close(session_fd);
	close(late_fd);
	dma_src = 0;
	ksft_test_result(bar0_rw64(dev_fd, 0, &dma_src, EDU_DMA_SRC) == 0 &&
			 dma_src == TEST_DMA_SRC && bus_master(DEVICE_PCI) == 1,
			 "after the session is closed the device is as it was\n");
	close(refusing_fd);
	close(igb_fd);
	close(dev_fd);
	close(luo_fd);
	ksft_finished();
}
