// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-stage test: a kept device that has an interrupt to raise while the
 * host is between two kernels.
 *
 * Stage 1 makes an edu raise its interrupt and leaves it pending: the VMM
 * set up no interrupt for it, so the device asserts its INTx line and
 * nothing in the host handles it, which is harmless while nothing else uses
 * the line. Then it preserves the device. Without more, the device would
 * still assert the line in the next kernel, and as soon as another device's
 * driver requested that (shared) line, the interrupts nobody handles would
 * come in a storm until the kernel disabled the line ("nobody cared"),
 * taking the other device's interrupts with it.
 *
 * Stage 2 checks that the device arrived with INTx masked in its command
 * register and its interrupt still pending; that a control edu on the same
 * line, set up by another user, gets its interrupts and the line sees no
 * storm, both before and after the kept device is retrieved and bound; and
 * that the VMM's VFIO_DEVICE_SET_IRQS on the kept device brings it the
 * interrupt pending since stage 1, and the next ones, as on a fresh device.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-safety.toml for the
 * machine.
 */

#include <stdlib.h>
#include <sys/eventfd.h>
#include <libliveupdate.h>
#include "edu.h"

#define DEVICE_PCI		"0000:04:00.0"
#define CONTROL_PCI		"0000:05:00.0"
#define INTX			VFIO_PCI_INTX_IRQ_INDEX
/* Unhandled interrupts a line may see in a second: a storm brings thousands. */
#define STORM			100

#define SESSION			"vfio-pci-lu-intx"
#define DEVICE_TOKEN		0x7f60
#define STATE_SESSION		"vfio_pci_lu_intx_state"
#define STATE_TOKEN		995

/* The interrupt line the kernel assigned to @pci; -1 on error. */
static int pci_irq(const char *pci)
{
	char buf[16] = "";
	int fd = pci_sysfs_open(pci, "irq", O_RDONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = read(fd, buf, sizeof(buf) - 1) > 0;
	close(fd);
	return ok ? atoi(buf) : -1;
}

/* Interrupts of line @irq no handler took, from /proc/irq/N/spurious; -1 on error. */
static long nobody_took(int irq)
{
	static const char field[] = "unhandled ";
	char path[64], buf[256], *at;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/irq/%d/spurious", irq);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	at = strstr(buf, field);
	return at ? atol(at + strlen(field)) : -1;
}

/*
 * Whether line @irq stays quiet for a second: fewer than STORM interrupts
 * nobody handled, and no line disabled for good.
 */
static int no_storm(int irq)
{
	long before = nobody_took(irq), after;

	sleep(1);
	after = nobody_took(irq);
	if (before < 0 || after < 0)
		return 0;
	if (after - before >= STORM)
		ksft_print_msg("IRQ %d: %ld interrupts nobody handled in a second\n",
			       irq, after - before);
	return after - before < STORM && kmsg_has("nobody cared") == 0;
}

static void run_stage_1(int luo_fd)
{
	int session_fd, dev_fd;

	start_stage_1(luo_fd, STATE_SESSION, STATE_TOKEN, 3);

	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && edu_raise(dev_fd) == 0,
			 "bind %s, no interrupt set up, raise its interrupt\n", DEVICE_PCI);
	ksft_test_result((pci_config_word(DEVICE_PCI, PCI_STATUS) & PCI_STATUS_INTERRUPT) &&
			 !(pci_command(DEVICE_PCI) & PCI_COMMAND_INTX_DISABLE),
			 "it asserts INTx, which nothing handles\n");
	session_fd = luo_create_session(luo_fd, SESSION);
	ksft_test_result(session_fd >= 0 &&
			 luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN) == 0,
			 "preserve the device file\n");
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	int session_fd, dev_fd, control_fd, efd, control_efd, irq;

	start_stage_2(state_session_fd, STATE_TOKEN, 8);
	efd = eventfd(0, EFD_NONBLOCK);
	control_efd = eventfd(0, EFD_NONBLOCK);
	if (efd < 0 || control_efd < 0)
		fail_exit("eventfd");

	ksft_test_result((pci_command(DEVICE_PCI) & PCI_COMMAND_INTX_DISABLE) &&
			 (pci_config_word(DEVICE_PCI, PCI_STATUS) & PCI_STATUS_INTERRUPT),
			 "%s came in with INTx masked, its interrupt pending\n", DEVICE_PCI);

	/* Another user of the line: its driver requests it. */
	control_fd = open_bound(CONTROL_PCI);
	irq = pci_irq(CONTROL_PCI);
	ksft_test_result(control_fd >= 0 &&
			 !set_irqs(control_fd, INTX, VFIO_IRQ_SET_ACTION_TRIGGER, control_efd) &&
			 edu_interrupt_arrives(control_fd, INTX, control_efd),
			 "the INTx of control %s reaches its eventfd, IRQ %d\n", CONTROL_PCI, irq);
	ksft_test_result(no_storm(irq), "no interrupt storm on IRQ %d\n", irq);

	session_fd = luo_retrieve_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", SESSION);
	dev_fd = luo_session_retrieve_fd(session_fd, DEVICE_TOKEN);
	ksft_test_result(dev_fd >= 0 && bind_device(dev_fd) == 0 &&
			 (pci_command(DEVICE_PCI) & PCI_COMMAND_INTX_DISABLE) &&
			 pci_irq(DEVICE_PCI) == irq,
			 "retrieve and bind the kept device: INTx still masked, on IRQ %d too\n",
			 pci_irq(DEVICE_PCI));
	ksft_test_result(no_storm(irq) && edu_interrupt_arrives(control_fd, INTX, control_efd),
			 "still no storm, and the control's INTx still arrives\n");
	ksft_test_result(set_irqs(dev_fd, INTX, VFIO_IRQ_SET_ACTION_TRIGGER, efd) == 0 &&
			 eventfd_fired(efd, 2000),
			 "VFIO_DEVICE_SET_IRQS delivers the interrupt pending since stage 1\n");
	ksft_test_result(edu_ack(dev_fd) == 0 &&
			 set_irqs(dev_fd, INTX, VFIO_IRQ_SET_ACTION_UNMASK, -1) == 0 &&
			 edu_interrupt_arrives(dev_fd, INTX, efd) &&
			 edu_interrupt_arrives(control_fd, INTX, control_efd),
			 "its next ones reach the VMM, the control's their user\n");
	ksft_test_result(luo_session_finish(session_fd) == 0, "finish the session\n");

	close(dev_fd);
	close(control_fd);
	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish state session");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	return luo_test(argc, argv, STATE_SESSION, run_stage_1, run_stage_2);
}
