// SPDX-License-Identifier: GPL-2.0-only
/*
 * Updates between two different kernels and back: stage 1 runs the test
 * kernel, stage 2 a "next" kernel, stage 3 the test kernel again.
 *
 * -k none: next has the same record versions (another release, other
 * options). Stages 1 and 2 set up three igbs the same way (bus mastering
 * on, RLPML written, a value of the stage's own) and preserve the first two
 * in two sessions; the third is the control. Stages 2 and 3 take the two
 * back: bound, they have the RLPML of the stage before and bus mastering
 * on, not reset, while vfio-pci resets the control when it opens it.
 *
 * -k vfio, -k pci: next writes and reads one record one version on (the
 * vfio-pci records, CONFIG_VFIO_PCI_LIVEUPDATE_NEXT_VERSION_TEST; the PCI
 * core's, CONFIG_PCI_LIVEUPDATE_NEXT_VERSION_TEST): what each kernel does
 * with a record of a version it does not read. Stages 1 and 2 set up an
 * igb (bus mastering on, RLPML written) and preserve it next to a memfd;
 * stages 2 and 3 check what came through:
 *
 * - the memfd, LUO's own, always;
 * - -k vfio: the PCI record was read, so the igb is incoming (its cdev
 *   refuses a plain open); its record is refused with one message naming
 *   both versions; finishing the session releases the device, which
 *   vfio-pci then opens and resets;
 * - -k pci: the PCI record is rejected whole at boot, with one message
 *   naming both versions, so the igb is not incoming and its retrieve is
 *   refused as such; vfio-pci opens and resets it.
 *
 * See tools/vmtest/scenarios/skew/.
 */

#include <stdbool.h>
#include <string.h>
#include "igb.h"

#define DEVICE_PCI		"0000:01:00.0"
#define DEVICE_TOKEN		0x7fa0
#define MEMFD_TOKEN		0x7fa1
#define MEMFD_DATA		"kept across kernels of two record versions"
#define TEST_RLPML		0x1234

/* The version each kernel of the scenario writes and reads, per record. */
#define VFIO_VERSION		2
#define PCI_VERSION		2

static bool pci_kind;

/* -k none: the kept igbs, the control, and the RLPML stage @stage writes into igb @i. */
#define KEPT			2
#define CONTROL_PCI		"0000:03:00.0"

static const char *kept_pci(int i)
{
	return i ? "0000:02:00.0" : DEVICE_PCI;
}

static __u32 stage_rlpml(int stage, int i)
{
	return 0x1000 + 0x1000 * i + 0x100 * stage;
}

static const char *kept_session(int stage, int i)
{
	static char name[40];

	snprintf(name, sizeof(name), "vfio-pci-lu-skew-%d-%d", stage, i);
	return name;
}

/* Binds @pci, turns bus mastering on and writes @rlpml: the fd, or -1. */
static int set_up(const char *pci, __u32 rlpml)
{
	int fd = open_bound(pci);

	if (fd < 0 || enable_master(fd, pci) || bar0_rw32(fd, 1, &rlpml, IGB_RLPML)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* -k none, stages 1 and 2: the two igbs kept in two sessions, the control not. */
static void preserve_two(int luo_fd, int stage)
{
	int i, fd, session_fd, control_fd;
	bool ok = true;

	for (i = 0; i < KEPT; i++) {
		fd = set_up(kept_pci(i), stage_rlpml(stage, i));
		session_fd = luo_create_session(luo_fd, kept_session(stage, i));
		ok = ok && fd >= 0 && session_fd >= 0 &&
		     luo_session_preserve_fd(session_fd, fd, DEVICE_TOKEN) == 0;
	}
	control_fd = set_up(CONTROL_PCI, stage_rlpml(stage, 0));
	ksft_test_result(control_fd >= 0, "set up the control %s the same way\n", CONTROL_PCI);
	ksft_test_result(ok, "set up %s and %s (RLPML %#x, %#x), preserve them in two sessions\n",
			 kept_pci(0), kept_pci(1), stage_rlpml(stage, 0), stage_rlpml(stage, 1));
}

/* -k none, stages 2 and 3: the two igbs kept as the stage before left them, the control reset. */
static void check_two(int luo_fd, int stage)
{
	int i, fd, session_fd[KEPT];
	bool finished = true;

	for (i = 0; i < KEPT; i++) {
		__u32 want = stage_rlpml(stage - 1, i), got = 0;

		session_fd[i] = luo_retrieve_session(luo_fd, kept_session(stage - 1, i));
		fd = session_fd[i] < 0 ? -1 : luo_session_retrieve_fd(session_fd[i], DEVICE_TOKEN);
		if (fd >= 0 && bind_iommufd(fd, NULL) == 0 && attach_ioas(fd, ioas_id) == 0)
			got = igb_rlpml(fd);
		ksft_test_result(got == want && bus_master(kept_pci(i)) == 1,
				 "%s kept from the kernel before: RLPML %#x (want %#x), bus mastering on\n",
				 kept_pci(i), got, want);
		if (fd >= 0)
			close(fd);
	}
	fd = open_bound(CONTROL_PCI);
	ksft_test_result(fd >= 0 && igb_rlpml(fd) == IGB_RLPML_RESET,
			 "the control %s is reset when vfio-pci opens it (RLPML %#x)\n",
			 CONTROL_PCI, fd >= 0 ? igb_rlpml(fd) : 0);
	if (fd >= 0)
		close(fd);
	for (i = 0; i < KEPT; i++)
		finished = finished && session_fd[i] >= 0 && luo_session_finish(session_fd[i]) == 0;
	ksft_test_result(finished, "finish both sessions\n");
	for (i = 0; i < KEPT; i++)
		if (session_fd[i] >= 0)
			close(session_fd[i]);
}

static const char *session_name(int stage)
{
	static char name[32];

	snprintf(name, sizeof(name), "vfio-pci-lu-skew-%d", stage);
	return name;
}

/* Sets the igb up and preserves it next to a memfd, for stage @stage + 1. */
static void set_up_and_preserve(int luo_fd, int stage)
{
	__u32 rlpml = TEST_RLPML;
	int fd, session_fd;

	fd = open_bound(DEVICE_PCI);
	ksft_test_result(fd >= 0 && enable_master(fd, DEVICE_PCI) == 0 &&
			 bar0_rw32(fd, 1, &rlpml, IGB_RLPML) == 0,
			 "set up %s: bus mastering on, RLPML %#x\n", DEVICE_PCI, TEST_RLPML);
	session_fd = luo_create_session(luo_fd, session_name(stage));
	ksft_test_result(session_fd >= 0 && fd >= 0 &&
			 luo_session_preserve_fd(session_fd, fd, DEVICE_TOKEN) == 0 &&
			 create_and_preserve_memfd(session_fd, MEMFD_TOKEN, MEMFD_DATA) >= 0,
			 "preserve it and a memfd\n");
}

/*
 * What came through the update into stage @stage, whose kernel reads
 * version @reads of the skewed record, from a kernel that wrote @wrote.
 */
static void check_update(int luo_fd, int stage, int wrote, int reads)
{
	char message[128];
	int session_fd, fd;

	session_fd = luo_retrieve_session(luo_fd, session_name(stage - 1));
	if (session_fd < 0)
		fail_exit("retrieve session %s", session_name(stage - 1));
	fd = restore_and_verify_memfd(session_fd, MEMFD_TOKEN, MEMFD_DATA);
	ksft_test_result(fd >= 0, "the memfd came through\n");
	if (fd >= 0)
		close(fd);
	if (pci_kind) {
		snprintf(message, sizeof(message),
			 "rejecting the handed-over state: ABI version %d, this kernel reads %d",
			 wrote, reads);
		ksft_test_result(kmsg_has(message) == 1, "the PCI record is rejected: \"%s\"\n",
				 message);
	} else {
		fd = open_bound(DEVICE_PCI);
		ksft_test_result(fd < 0, "the PCI record was read: %s is incoming\n",
				 DEVICE_PCI);
		if (fd >= 0)
			close(fd);
		snprintf(message, sizeof(message),
			 "record rejected: ABI version %d, this kernel reads %d", wrote, reads);
	}
	fd = luo_session_retrieve_fd(session_fd, DEVICE_TOKEN);
	if (pci_kind)
		snprintf(message, sizeof(message), "%s: retrieved, but not incoming", DEVICE_PCI);
	ksft_test_result(fd < 0 && kmsg_has(message) == 1, "its retrieve is refused (%d): \"%s\"\n",
			 fd, message);
	if (fd >= 0)
		close(fd);
	ksft_test_result(luo_session_finish(session_fd) == 0, "finish the session\n");
	fd = open_bound(DEVICE_PCI);
	ksft_test_result(fd >= 0 && igb_rlpml(fd) == IGB_RLPML_RESET && bus_master(DEVICE_PCI) == 0,
			 "vfio-pci opens %s and resets it (RLPML %#x)\n", DEVICE_PCI,
			 fd >= 0 ? igb_rlpml(fd) : 0);
	if (fd >= 0)
		close(fd);
	close(session_fd);
}

int main(int argc, char *argv[])
{
	const char *kind = "";
	int opt, stage = 0, luo_fd, test, next;

	while ((opt = getopt(argc, argv, "s:k:")) != -1) {
		if (opt == 's')
			stage = atoi(optarg);
		else if (opt == 'k')
			kind = optarg;
	}
	if (stage < 1 || stage > 3 ||
	    (strcmp(kind, "none") && strcmp(kind, "vfio") && strcmp(kind, "pci")))
		ksft_exit_fail_msg("usage: %s -s 1..3 -k none|vfio|pci\n", argv[0]);
	pci_kind = !strcmp(kind, "pci");
	test = pci_kind ? PCI_VERSION : VFIO_VERSION;
	next = test + 1;
	luo_fd = open_luo();
	ksft_print_header();
	/* Checks of what came through (stages 2, 3), then of the preserve (1, 2). */
	ksft_set_plan((stage > 1 ? (strcmp(kind, "none") ? 5 : 4) : 0) + (stage < 3 ? 2 : 0));
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	if (!strcmp(kind, "none")) {
		if (stage > 1)
			check_two(luo_fd, stage);
		if (stage < 3)
			preserve_two(luo_fd, stage);
	} else {
		if (stage > 1)
			check_update(luo_fd, stage, stage == 2 ? test : next,
				     stage == 2 ? next : test);
		if (stage < 3)
			set_up_and_preserve(luo_fd, stage);
	}
	if (stage < 3) {
		close(luo_fd);
		hold_sessions_for_kexec();
	}
	ksft_finished();
}
