// SPDX-License-Identifier: GPL-2.0-only
/*
 * A session never finished before the next kexec, as when a VMM took its
 * device back after an update and the host updates again before the VMM
 * finished the session.
 *
 * Stage 1 sets up an igb (bus mastering, RLPML written) and preserves it.
 * Stage 2 takes it back (kept) and leaves that session unfinished; LUO
 * refuses to preserve the file again until it is (-EBUSY). Stage 3, after
 * the next kexec, finds the unfinished session gone and the device not
 * kept: it is not incoming, and vfio-pci opens and resets it as any device.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-unfinished.toml.
 */

#include "igb.h"

#define DEVICE_PCI		"0000:01:00.0"
#define TOKEN			0x7f80
#define TEST_RLPML		0x1234

static const char *session_name(int stage)
{
	static char name[32];

	snprintf(name, sizeof(name), "vfio-pci-lu-unfinished-%d", stage);
	return name;
}

/* Preserves @fd alone in the session of @stage; 0 or -1. */
static int preserve(int luo_fd, int stage, int fd)
{
	int session_fd = luo_create_session(luo_fd, session_name(stage));

	return session_fd < 0 ? -1 : luo_session_preserve_fd(session_fd, fd, TOKEN);
}

/* Takes the device back from the session of stage @from, bound; its file, or -1. */
static int take_back(int luo_fd, int from, int *session_fd)
{
	int fd;

	*session_fd = luo_retrieve_session(luo_fd, session_name(from));
	fd = *session_fd < 0 ? -1 : luo_session_retrieve_fd(*session_fd, TOKEN);
	if (fd < 0 || bind_iommufd(fd, NULL) || attach_ioas(fd, ioas_id))
		return -1;
	return fd;
}

static void run_stage_1(int luo_fd)
{
	__u32 rlpml = TEST_RLPML;
	int fd;

	ksft_print_header();
	ksft_set_plan(2);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	fd = open_bound(DEVICE_PCI);
	ksft_test_result(fd >= 0 && enable_master(fd, DEVICE_PCI) == 0 &&
			 bar0_rw32(fd, 1, &rlpml, IGB_RLPML) == 0,
			 "set up %s: bus mastering, RLPML %#x\n", DEVICE_PCI, TEST_RLPML);
	ksft_test_result(fd >= 0 && preserve(luo_fd, 1, fd) == 0, "preserve it\n");
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_2(int luo_fd)
{
	int session_fd, fd, ret;

	ksft_print_header();
	ksft_set_plan(2);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	fd = take_back(luo_fd, 1, &session_fd);
	ksft_test_result(fd >= 0 && igb_rlpml(fd) == TEST_RLPML && bus_master(DEVICE_PCI) == 1,
			 "taken back, kept; its session left unfinished\n");
	ret = fd < 0 ? -1 : preserve(luo_fd, 2, fd);
	ksft_test_result(ret == -EBUSY,
			 "preserving the file again before its session is finished is -EBUSY (%d)\n",
			 ret);
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_3(int luo_fd)
{
	int fd;

	ksft_print_header();
	ksft_set_plan(2);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	ksft_test_result(luo_retrieve_session(luo_fd, session_name(1)) == -ENOENT,
			 "the session left unfinished did not come through\n");
	fd = open_bound(DEVICE_PCI);
	ksft_test_result(fd >= 0 && igb_rlpml(fd) == IGB_RLPML_RESET &&
			 bus_master(DEVICE_PCI) == 0,
			 "%s is not incoming: vfio-pci opens and resets it (RLPML %#x)\n",
			 DEVICE_PCI, fd >= 0 ? igb_rlpml(fd) : 0);
	ksft_finished();
}

int main(int argc, char *argv[])
{
	int stage = stage_arg(argc, argv, 3);
	int luo_fd = open_luo();

	if (stage == 1)
		run_stage_1(luo_fd);
	if (stage == 2)
		run_stage_2(luo_fd);
	run_stage_3(luo_fd);
}
