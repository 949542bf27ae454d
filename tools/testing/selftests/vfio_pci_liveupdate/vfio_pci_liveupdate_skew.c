// SPDX-License-Identifier: GPL-2.0-only
/*
 * Updates to a kernel of another record version and back: what each kernel
 * does with a record of a version it does not read.
 *
 * Stage 1 runs the test kernel. Stage 2 runs a "next" kernel that writes
 * and reads one record one version on (-k vfio: the vfio-pci records,
 * CONFIG_VFIO_PCI_LIVEUPDATE_NEXT_VERSION_TEST; -k pci: the PCI core's,
 * CONFIG_PCI_LIVEUPDATE_NEXT_VERSION_TEST). Stage 3 runs the test kernel
 * again. Stages 1 and 2 set up an igb (bus mastering on, RLPML written) and
 * preserve it next to a memfd; stages 2 and 3 check what came through:
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
#define VFIO_VERSION		1
#define PCI_VERSION		2

static bool pci_kind;

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
	if (stage < 1 || stage > 3 || (strcmp(kind, "vfio") && strcmp(kind, "pci")))
		ksft_exit_fail_msg("usage: %s -s 1..3 -k vfio|pci\n", argv[0]);
	pci_kind = !strcmp(kind, "pci");
	test = pci_kind ? PCI_VERSION : VFIO_VERSION;
	next = test + 1;
	luo_fd = open_luo();
	ksft_print_header();
	ksft_set_plan(stage == 1 ? 2 : stage == 2 ? 7 : 5);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	if (stage > 1)
		check_update(luo_fd, stage, stage == 2 ? test : next, stage == 2 ? next : test);
	if (stage < 3) {
		set_up_and_preserve(luo_fd, stage);
		close(luo_fd);
		hold_sessions_for_kexec();
	}
	ksft_finished();
}
