// SPDX-License-Identifier: GPL-2.0-only
/*
 * Corrupted handovers through real kexecs: what the next kernel does with a
 * record it must not trust. The kernel corrupts what it hands over on
 * request (CONFIG_PCI_LIVEUPDATE_CORRUPT_TEST and
 * CONFIG_VFIO_PCI_LIVEUPDATE_CORRUPT_TEST, debugfs knobs armed by stage 1
 * of each update).
 *
 * Stage 1 sets up ten igbs the same way (bus mastering on, RLPML at BAR 0
 * + 0x5004 written), preserves them all, and arms a different corruption
 * of the vfio-pci record of each but the first, the control; the last
 * record names the control instead of its own device. Stage 2 checks that
 * each corrupted record is refused with its own message while its device
 * goes down the normal path: reset (RLPML back to 0x2600), bus mastering
 * off, vfio-pci opens it like any device; that the control, retrieved
 * last, is taken back as kept: the record naming it left it alone; and that
 * the KHO memory of all ten records went back to the kernel by the finish
 * (MemTotal grows by what is restored).
 *
 * Then, one update each, the PCI core's record is corrupted in seven ways:
 * the next kernel must reject it whole with one message, keep the device
 * out of the incoming state (the vfio file cannot be taken back, vfio-pci
 * opens the device and resets it), and boot on. The runner fails any
 * panic, oops or warning.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-corrupt.toml.
 */

#include "igb.h"
#include "leaks.h"

#define DEVICES			10
#define CONTROL			0
#define TEST_RLPML		0x1234
#define SESSION			"vfio-pci-lu-corrupt"
#define TOKEN			0x7f40
#define PCI_KNOB		"/sys/kernel/debug/pci_liveupdate/corrupt_handover"
#define VFIO_KNOB		"/sys/kernel/debug/vfio_pci_liveupdate/corrupt_records"
/* LUO's own record of a session's files: one page. */
#define SESSION_KIB		4

/* Device i is the igb behind the i-th root port, on bus i + 1. */
static const char *pci(int i)
{
	static char name[DEVICES][16];

	snprintf(name[i], sizeof(name[i]), "0000:%02x:00.0", i + 1);
	return name[i];
}

/* What the next kernel says about the vfio-pci record of device i (kind i). */
static const char *const vfio_rejected[DEVICES] = {
	[1] = "record rejected: ABI version 3, this kernel reads 2",
	[2] = "rejecting the preserved vfio-pci state: written by a CPU of the other byte order",
	[3] = "rejecting the preserved vfio-pci state: reserved field not zero",
	[4] = "rejecting the preserved vfio-pci state: config space of 512 bytes",
	[5] = "rejecting a vfio-pci record naming this device: record of another device",
	[6] = "rejecting the preserved vfio-pci state: record shorter than its sizes say",
	[7] = "rejecting the preserved vfio-pci state: capability record 0 has a bad size",
	[8] = "rejecting the preserved vfio-pci state: capability list not ended",
	[9] = "0000:01:00.0: rejecting a vfio-pci record naming this device: BAR 0",
};

#define PCI_KINDS		7
#define PCI_REJECTED		"rejecting the handed-over state: "

/* What the next kernel says about the PCI record corrupted in kind k (1-7). */
static const char *const pci_rejected[PCI_KINDS + 1] = {
	[1] = PCI_REJECTED "ABI version 3, this kernel reads 2",
	[2] = PCI_REJECTED "ABI version 33554432, this kernel reads 2",
	[3] = PCI_REJECTED "entry blocks: block 0 is not in memory KHO handed over",
	[4] = PCI_REJECTED "entry blocks: block 0 is not in memory KHO handed over",
	[5] = PCI_REJECTED "header counts 3 devices, the entries hold 2",
	[6] = PCI_REJECTED "device 0000:00:01.0 appears twice",
	[7] = PCI_REJECTED "header counts 2 devices, the entries hold 1",
};

/* Bus mastering on and RLPML written, through the bound device file @fd. */
static int set_up(int fd, const char *name)
{
	__u32 rlpml = TEST_RLPML;

	if (fd < 0 || enable_master(fd, name))
		return -1;
	if (bar0_rw32(fd, 1, &rlpml, IGB_RLPML))
		return -1;
	return igb_rlpml(fd) == TEST_RLPML ? 0 : -1;
}

/*
 * Preserves the control's device file @fd in a session of its own for
 * stage @stage, and arms PCI corruption @kind; 0 or -1.
 */
static int preserve_for_pci_kind(int luo_fd, int fd, int stage, int kind)
{
	char session[32], number[8];
	int session_fd;

	snprintf(session, sizeof(session), "%s-%d", SESSION, stage);
	snprintf(number, sizeof(number), "%d", kind);
	session_fd = luo_create_session(luo_fd, session);
	if (session_fd < 0 || luo_session_preserve_fd(session_fd, fd, TOKEN))
		return -1;
	return write_file(PCI_KNOB, number);
}

static void run_stage_1(int luo_fd)
{
	char armed[128] = "";
	int fd[DEVICES], i, ok = 1, session_fd;

	ksft_print_header();
	ksft_set_plan(3);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	for (i = 0; i < DEVICES; i++) {
		fd[i] = open_bound(pci(i));
		ok &= set_up(fd[i], pci(i)) == 0;
	}
	ksft_test_result(ok, "set up %d igbs: bus mastering on, RLPML %#x\n",
			 DEVICES, TEST_RLPML);
	session_fd = luo_create_session(luo_fd, SESSION);
	ok = session_fd >= 0;
	for (i = 0; ok && i < DEVICES; i++)
		ok = luo_session_preserve_fd(session_fd, fd[i], TOKEN + i) == 0;
	ksft_test_result(ok, "preserve them in one session\n");
	for (i = 1; i < DEVICES; i++)
		snprintf(armed + strlen(armed), sizeof(armed) - strlen(armed),
			 "%02x:00.0=%d ", i + 1, i);
	ksft_test_result(write_file(VFIO_KNOB, armed) == 0,
			 "corrupt the records of all but %s: %s\n", pci(CONTROL), armed);
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_2(int luo_fd)
{
	int session_fd, fd, control_fd, i;
	long before_kib, after_kib;

	ksft_print_header();
	ksft_set_plan(2 * (DEVICES - 1) + 4);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	session_fd = luo_retrieve_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", SESSION);
	before_kib = mem_total_kib();

	for (i = 1; i < DEVICES; i++) {
		fd = luo_session_retrieve_fd(session_fd, TOKEN + i);
		ksft_test_result(fd < 0 && kmsg_has(vfio_rejected[i]) == 1,
				 "record kind %d of %s refused (%d): \"%s\"\n",
				 i, pci(i), fd, vfio_rejected[i]);
		if (fd >= 0)
			close(fd);
	}
	control_fd = luo_session_retrieve_fd(session_fd, TOKEN + CONTROL);
	ksft_test_result(control_fd >= 0 && bind_iommufd(control_fd, NULL) == 0 &&
			 attach_ioas(control_fd, ioas_id) == 0 &&
			 igb_rlpml(control_fd) == TEST_RLPML && bus_master(pci(CONTROL)) == 1,
			 "control %s: taken back as kept, RLPML %#x\n", pci(CONTROL), TEST_RLPML);
	ksft_test_result(luo_session_finish(session_fd) == 0, "finish the session\n");
	after_kib = mem_total_kib();
	ksft_test_result(before_kib > 0 &&
			 after_kib - before_kib >= DEVICES * IGB_RECORD_KIB + SESSION_KIB,
			 "the KHO memory of the %d records, refused or taken, was restored (MemTotal +%ld KiB)\n",
			 DEVICES, after_kib - before_kib);

	/* Every corrupted device went down the normal path. */
	for (i = 1; i < DEVICES; i++) {
		__u32 rlpml = pci_bar0_read32(pci(i), IGB_RLPML);

		fd = open_bound(pci(i));
		ksft_test_result(rlpml == IGB_RLPML_RESET && bus_master(pci(i)) == 0 && fd >= 0,
				 "%s: reset (RLPML %#x), bus mastering off, opens as any device\n",
				 pci(i), rlpml);
		if (fd >= 0)
			close(fd);
	}
	ksft_test_result(preserve_for_pci_kind(luo_fd, control_fd, 2, 1) == 0,
			 "preserve %s again, corrupt the PCI record (kind 1)\n", pci(CONTROL));
	close(luo_fd);
	hold_sessions_for_kexec();
}

/* Stages 3 to 9: the PCI record of the update before was corrupted in kind stage - 2. */
static void run_pci_stage(int luo_fd, int stage)
{
	int kind = stage - 2, last = kind == PCI_KINDS;
	int session_fd, file_fd, fd;
	char session[32];

	ksft_print_header();
	ksft_set_plan(last ? 3 : 4);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");

	ksft_test_result(kmsg_has(pci_rejected[kind]) == 1,
			 "PCI record kind %d rejected: \"%s\"\n", kind, pci_rejected[kind]);

	snprintf(session, sizeof(session), "%s-%d", SESSION, stage - 1);
	session_fd = luo_retrieve_session(luo_fd, session);
	file_fd = session_fd < 0 ? -1 : luo_session_retrieve_fd(session_fd, TOKEN);
	ksft_test_result(session_fd >= 0 && file_fd < 0 && luo_session_finish(session_fd) == 0,
			 "%s is not incoming: its file is not taken back (%d)\n",
			 pci(CONTROL), file_fd);

	fd = open_bound(pci(CONTROL));
	ksft_test_result(fd >= 0 && igb_rlpml(fd) == IGB_RLPML_RESET &&
			 bus_master(pci(CONTROL)) == 0,
			 "%s: opened as any device, reset (RLPML %#x)\n",
			 pci(CONTROL), fd >= 0 ? igb_rlpml(fd) : 0);
	if (last)
		ksft_finished();
	ksft_test_result(set_up(fd, pci(CONTROL)) == 0 &&
			 preserve_for_pci_kind(luo_fd, fd, stage, kind + 1) == 0,
			 "preserve it again, corrupt the PCI record (kind %d)\n", kind + 1);
	close(luo_fd);
	hold_sessions_for_kexec();
}

int main(int argc, char *argv[])
{
	int stage = stage_arg(argc, argv, PCI_KINDS + 2);
	int luo_fd = open_luo();

	if (stage == 1)
		run_stage_1(luo_fd);
	else if (stage == 2)
		run_stage_2(luo_fd);
	else
		run_pci_stage(luo_fd, stage);
	return KSFT_FAIL;
}
