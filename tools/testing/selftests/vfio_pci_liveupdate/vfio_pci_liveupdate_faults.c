// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every allocation of a preserve, a freeze and a retrieve of a vfio-pci
 * device file fails once in turn, through the kernel's fault injection
 * (failslab and fail_page_alloc, aimed by /proc/thread-self/fail-nth at the
 * n-th allocation of the next system call), and each failure is rolled back.
 *
 * Stage 1 sets up the igb 01:00.0 as a VMM would: bus mastering, MSI-X to an
 * eventfd, RLPML written.
 * - Preserve: for n = 1, 2, ..., the n-th allocation of PRESERVE_FD fails,
 *   in a session of its own, closed afterwards. Each time the preserve
 *   fails (or does without that allocation) and the device works as before.
 *   The first n the preserve completes without reaching ends the loop, and
 *   that preserve must succeed: a failed attempt that left the device
 *   preserved in the PCI core would make it -EBUSY.
 * - Freeze: a test file that refuses to freeze, in a later session, cancels
 *   every kexec. For n = 1, 2, ..., the n-th allocation of
 *   reboot(LINUX_REBOOT_CMD_KEXEC) fails; the kexec fails, and the device is
 *   as before: its config space, its MSI-X delivered, config writes and
 *   VFIO_DEVICE_SET_IRQS allowed. The first n the kexec completes without
 *   reaching ends the loop, cancelled by the test file.
 * Then the igbs 02:00.0 to 0b:00.0 are set up the same way and preserved,
 * and the machine kexecs.
 *
 * Stage 2: the retrieve of device i fails at its (i + 1)-th allocation, for
 * every device but the last. A retrieve the handler failed leaves the
 * device given back: bus mastering off, and vfio-pci opens and resets it
 * (RLPML back to its reset value). One LUO failed before the handler ran
 * can be tried again, and a retrieve that does without the allocation, or
 * completes before reaching it, keeps the device. Some retrieve must
 * complete before the devices run out, or some allocation of a retrieve was
 * never failed. Then the session is finished with its n-th allocation
 * failing, for n = 1, 2, ... until it goes through (a failed finish may be
 * tried again), and no device is left incoming. The last device, in a
 * session of its own, is never retrieved: the finish of that session, with
 * each allocation failing the same way, gives the device back. By then the
 * KHO memory of every record was restored, whatever failed.
 *
 * On the debug kernel, each stage ends with a kmemleak scan. Allocating
 * about twice as often there, a retrieve has more allocations than there
 * are devices: the first ten fail in turn, and the test kernel's run covers
 * the rest.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-faults.toml and
 * tools/vmtest/scenarios/debug/vfio-pci-liveupdate-faults.toml.
 */

#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/reboot.h>
#include <linux/reboot.h>
#include "igb.h"
#include "kexec.h"
#include "leaks.h"

#define DEVICES			11
#define SESSION			"vfio-pci-lu-faults"
#define LATE_SESSION		"vfio-pci-lu-faults-late"
#define UNRETRIEVED_SESSION	"vfio-pci-lu-faults-unretrieved"
#define TOKEN			0x7f90
#define REFUSING_TOKEN		0x7f8f
#define TEST_RLPML		0x1234
#define PCI_INTERRUPT_LINE	0x3c
#define MSIX			VFIO_PCI_MSIX_IRQ_INDEX
/* LUO's own record of a session's files: one page. */
#define SESSION_KIB		4
/* Beyond this many allocations a loop is taken to never end. */
#define MAX_FAULTS		400

static int fail_nth_fd = -1;

static const char *device_pci(int i)
{
	static char pci[16];

	snprintf(pci, sizeof(pci), "0000:%02x:00.0", i + 1);
	return pci;
}

/* Every allocation may fail, kmalloc and alloc_pages of any order, quietly. */
static void setup_fault_injection(void)
{
	static const char *const settings[][2] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/failslab/verbose", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(settings); i++)
		if (write_file(settings[i][0], settings[i][1]))
			fail_exit("write %s", settings[i][0]);
	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fail_nth_fd < 0)
		fail_exit("open /proc/thread-self/fail-nth");
}

/* The @n-th allocation of this thread's next system calls fails. */
static void fail_nth(int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	if (pwrite(fail_nth_fd, buf, len, 0) != len)
		fail_exit("write fail-nth");
}

/* Whether the allocation fail_nth() aimed at was reached; disarms it if not. */
static bool fault_injected(void)
{
	char buf[16] = "";

	if (pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		fail_exit("read fail-nth");
	if (atoi(buf) == 0)
		return true;
	fail_nth(0);
	return false;
}

/* On the debug kernel: no failure leaked memory. */
static void check_leaks(void)
{
	int leaks;

	if (!has_kmemleak())
		return;
	leaks = kmemleak_reports();
	ksft_test_result(leaks == 0, "kmemleak: %d leaks\n", leaks);
}

/* Binds and sets up the device @i as a VMM would: its fd, or -1. */
static int set_up(int i, int efd)
{
	__u32 rlpml = TEST_RLPML;
	int fd = open_bound(device_pci(i));

	if (fd < 0 || enable_master(fd, device_pci(i)) ||
	    bar0_rw32(fd, 1, &rlpml, IGB_RLPML) ||
	    (efd >= 0 && (set_irqs(fd, MSIX, VFIO_IRQ_SET_ACTION_TRIGGER, efd) ||
			  !igb_msix_arrives(fd, efd))))
		return -1;
	return fd;
}

static const char *session_name(int n)
{
	static char name[48];

	snprintf(name, sizeof(name), SESSION "-%d", n);
	return name;
}

/*
 * Preserve with its n-th allocation failing, for each n in turn, each in a
 * session of its own, closed afterwards: whether each failure left the
 * device @fd as it was, and the preserve came through in the end.
 */
static bool preserve_through_faults(int luo_fd, int fd)
{
	int n, ret, session_fd, refused = 0, absorbed = 0;
	bool ok = true;

	for (n = 1; n <= MAX_FAULTS; n++) {
		session_fd = luo_create_session(luo_fd, session_name(n));
		if (session_fd < 0)
			fail_exit("create session %s", session_name(n));
		fail_nth(n);
		ret = luo_session_preserve_fd(session_fd, fd, TOKEN);
		if (!fault_injected())
			break;
		if (ret)
			refused++;
		else
			absorbed++;
		if (ret && ret != -ENOMEM) {
			ksft_print_msg("allocation %d failing: preserve is %d\n", n, ret);
			ok = false;
		}
		close(session_fd);
		if (bus_master(device_pci(0)) != 1) {
			ksft_print_msg("allocation %d failing: bus mastering lost\n", n);
			ok = false;
		}
	}
	ksft_print_msg("preserve: %d allocations; %d failing refused it (-ENOMEM), %d not\n",
		       n - 1, refused, absorbed);
	close(session_fd);
	return ok && n <= MAX_FAULTS && ret == 0;
}

/*
 * Whether the device @fd, whose config space was @before, was left as it
 * was: config space but for the status register, MSI-X delivered through
 * interrupts set up again, config writes taken.
 */
static bool left_as_before(int fd, int efd, const unsigned char *before)
{
	unsigned char now[256];
	__u8 irq_line = before[PCI_INTERRUPT_LINE];

	return pci_config_read(device_pci(0), now, sizeof(now), 0) == sizeof(now) &&
	       !memcmp(now, before, PCI_STATUS) &&
	       !memcmp(now + PCI_STATUS + 2, before + PCI_STATUS + 2, 256 - PCI_STATUS - 2) &&
	       config_rw(fd, 1, &irq_line, 1, PCI_INTERRUPT_LINE) == 0 &&
	       set_irqs(fd, MSIX, VFIO_IRQ_SET_ACTION_TRIGGER, efd) == 0 &&
	       igb_msix_arrives(fd, efd);
}

/*
 * A kexec with its n-th allocation failing, for each n in turn, cancelled
 * in the end by a file that refuses to freeze: whether each left the
 * preserved device @fd as it was.
 */
static bool freeze_through_faults(int luo_fd, int fd, int efd, const char *kernel)
{
	int n, ret, late_fd, failed = 0;
	unsigned char before[256];
	bool ok = true;

	late_fd = preserve_refusing_file(luo_fd, LATE_SESSION, REFUSING_TOKEN);
	if (pci_config_read(device_pci(0), before, sizeof(before), 0) != sizeof(before))
		fail_exit("read the config space of %s", device_pci(0));
	load_kexec(kernel);
	for (n = 1; n <= MAX_FAULTS; n++) {
		fail_nth(n);
		ret = reboot(LINUX_REBOOT_CMD_KEXEC) ? -errno : 0;
		if (!fault_injected())
			break;
		failed++;
		if (!left_as_before(fd, efd, before)) {
			ksft_print_msg("allocation %d failing (kexec %d): the device changed\n",
				       n, ret);
			ok = false;
		}
	}
	ksft_print_msg("freeze: %d allocations, each failing cancelled the kexec\n", failed);
	ok = ok && n <= MAX_FAULTS && ret == -ECANCELED && left_as_before(fd, efd, before);
	close(late_fd);
	return ok;
}

static void run_stage_1(int luo_fd, const char *kernel)
{
	int i, fd, session_fd, unretrieved_fd, efd = eventfd(0, EFD_NONBLOCK);
	bool ok;

	ksft_print_header();
	ksft_set_plan(4 + has_kmemleak());
	if (efd < 0 || open_iommufd_ioas())
		fail_exit("eventfd, iommufd and IOAS");
	if (has_kmemleak() && kmemleak_clear())
		fail_exit("clear %s", KMEMLEAK);
	setup_fault_injection();
	fd = set_up(0, efd);
	ksft_test_result(fd >= 0, "set up %s: bus mastering, MSI-X, RLPML %#x\n",
			 device_pci(0), TEST_RLPML);
	if (fd < 0)
		fail_exit("no device to go on with");

	ok = preserve_through_faults(luo_fd, fd);
	ksft_test_result(ok && igb_msix_arrives(fd, efd) && igb_rlpml(fd) == TEST_RLPML,
			 "each failing allocation of a preserve was rolled back\n");

	session_fd = luo_create_session(luo_fd, SESSION);
	if (session_fd < 0 || luo_session_preserve_fd(session_fd, fd, TOKEN))
		fail_exit("preserve %s", device_pci(0));
	ksft_test_result(freeze_through_faults(luo_fd, fd, efd, kernel),
			 "each failing allocation of a kexec's freeze was rolled back\n");

	/* The last device, in a session of its own, is never retrieved. */
	unretrieved_fd = luo_create_session(luo_fd, UNRETRIEVED_SESSION);
	ok = unretrieved_fd >= 0;
	for (i = 1; i < DEVICES; i++) {
		int other = set_up(i, -1);

		ok = ok && other >= 0 &&
		     luo_session_preserve_fd(i < DEVICES - 1 ? session_fd : unretrieved_fd,
					     other, TOKEN + i) == 0;
	}
	ksft_test_result(ok, "set up and preserve %d more igbs\n", DEVICES - 1);
	check_leaks();
	close(luo_fd);
	hold_sessions_for_kexec();
}

/* Whether the retrieved device @i, file @fd, was kept: bound, as it was. */
static bool kept(int i, int fd)
{
	return bind_iommufd(fd, NULL) == 0 && attach_ioas(fd, ioas_id) == 0 &&
	       igb_rlpml(fd) == TEST_RLPML && bus_master(device_pci(i)) == 1;
}

/*
 * Whether device @i was given back to normal use: bus mastering off, and
 * vfio-pci opens it as any device, resetting it.
 */
static bool given_back(int i)
{
	int fd;
	bool ok;

	if (bus_master(device_pci(i)) != 0)
		return false;
	fd = open_bound(device_pci(i));
	ok = fd >= 0 && igb_rlpml(fd) == IGB_RLPML_RESET;
	close(fd);
	return ok;
}

/*
 * The retrieve of device i with its (i + 1)-th allocation failing, for each
 * device but the last, which is left to the finish: whether each failure
 * gave the device back or kept it, and some retrieve needed fewer
 * allocations than there were devices. Kept devices' files go into @fds.
 */
static bool retrieve_through_faults(int session_fd, int *fds)
{
	int i, fd, points = -1, refused = 0, absorbed = 0;
	bool ok = true;

	for (i = 0; i < DEVICES - 1; i++) {
		fds[i] = -1;
		if (points < 0)
			fail_nth(i + 1);
		fd = luo_session_retrieve_fd(session_fd, TOKEN + i);
		if (points < 0 && !fault_injected())
			points = i;
		if (fd < 0 && points < 0) {
			refused++;
			/* Refused before the handler: a second retrieve takes it back. */
			fd = luo_session_retrieve_fd(session_fd, TOKEN + i);
			if (fd < 0 && !given_back(i)) {
				ksft_print_msg("allocation %d failing: %s not given back\n",
					       i + 1, device_pci(i));
				ok = false;
			}
			if (fd < 0)
				continue;
		} else if (points < 0) {
			absorbed++;
		}
		fds[i] = fd;
		if (fd < 0 || !kept(i, fd)) {
			ksft_print_msg("%s: retrieve %d, not kept\n", device_pci(i), fd);
			ok = false;
		}
	}
	if (points < 0 && has_kmemleak()) {
		/*
		 * The debug kernel allocates about twice as often (kmemleak's
		 * own objects, which it does without): there, the devices
		 * cover the first allocations only, and the test kernel's run
		 * covers them all.
		 */
		ksft_print_msg("retrieve: more allocations than devices (debug kernel)\n");
		ksft_print_msg("retrieve: the first %d failed in turn; %d refused it, %d not\n",
			       DEVICES - 1, refused, absorbed);
		return ok;
	}
	ksft_print_msg("retrieve: %d allocations; %d failing refused it, %d not\n",
		       points, refused, absorbed);
	return ok && points >= 0;
}

/*
 * Finish with its n-th allocation failing, for each n in turn until it
 * goes through: a finish that fails may be tried again. Whether it went
 * through.
 */
static bool finish_through_faults(int session_fd)
{
	int n, ret, refused = 0, absorbed = 0;

	for (n = 1; n <= MAX_FAULTS; n++) {
		fail_nth(n);
		ret = luo_session_finish(session_fd);
		if (!fault_injected())
			break;
		if (ret == 0) {
			absorbed++;
			break;
		}
		refused++;
	}
	ksft_print_msg("finish: %d allocations; %d failing refused it, %d not\n",
		       absorbed ? n : n - 1, refused, absorbed);
	return ret == 0 && !absorbed;
}

static void run_stage_2(int luo_fd)
{
	int i, fd, session_fd, unretrieved_fd, fds[DEVICES];
	long before_kib, after_kib;
	bool ok;

	ksft_print_header();
	ksft_set_plan(5 + has_kmemleak());
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	setup_fault_injection();
	session_fd = luo_retrieve_session(luo_fd, SESSION);
	unretrieved_fd = luo_retrieve_session(luo_fd, UNRETRIEVED_SESSION);
	if (session_fd < 0 || unretrieved_fd < 0)
		fail_exit("retrieve the sessions");
	before_kib = mem_total_kib();
	ksft_test_result(retrieve_through_faults(session_fd, fds),
			 "each failing allocation of a retrieve gave the device back, or kept it\n");
	ksft_test_result(finish_through_faults(session_fd),
			 "each failing allocation of a finish refused it; then it went through\n");

	ksft_test_result(finish_through_faults(unretrieved_fd) && given_back(DEVICES - 1),
			 "the same for a session whose device was never retrieved: given back\n");

	/* Nothing is left incoming: vfio-pci opens every device, kept ones once closed. */
	ok = true;
	for (i = 0; i < DEVICES - 1; i++) {
		close(fds[i]);
		fd = open_bound(device_pci(i));
		if (fd < 0) {
			ksft_print_msg("%s: still incoming after the finish\n", device_pci(i));
			ok = false;
		}
		close(fd);
	}
	ksft_test_result(ok, "after the finish vfio-pci opens every device\n");
	after_kib = mem_total_kib();
	/* Two sessions. */
	ksft_test_result(before_kib > 0 &&
			 after_kib - before_kib >= DEVICES * IGB_RECORD_KIB + 2 * SESSION_KIB,
			 "the KHO memory of the %d records was restored (MemTotal +%ld KiB)\n",
			 DEVICES, after_kib - before_kib);
	check_leaks();
	ksft_finished();
}

int main(int argc, char *argv[])
{
	int stage = stage_arg(argc, argv, 2);
	int luo_fd = open_luo();

	if (stage == 1) {
		if (optind != argc - 1)
			ksft_exit_fail_msg("usage: %s -s 1 KERNEL-IMAGE\n", argv[0]);
		run_stage_1(luo_fd, argv[optind]);
	}
	run_stage_2(luo_fd);
}
