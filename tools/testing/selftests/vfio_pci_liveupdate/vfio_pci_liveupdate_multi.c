// SPDX-License-Identifier: GPL-2.0-only
/*
 * Four-stage test of the vfio-pci Live Update file handler: two devices in
 * two sessions across one kexec, then one of them across two more, its state
 * intact after each.
 *
 * The devices are two igbs (8086:10c9) at 0000:01:00.0 and 0000:02:00.0,
 * bound to vfio-pci (tools/vmtest/scenarios/vfio-pci-liveupdate-multi.toml).
 * A function reset sets their RLPML register (BAR 0 + 0x5004) back to 0x2600,
 * so a value written there and still read after a kexec shows the device was
 * not reset. Each stage writes a value of its own into the first device
 * before preserving it again, as a VMM that keeps using the device between
 * updates, so each stage checks the state of the one before.
 *
 * Run with -s 1, then after each kexec with -s 2, -s 3 and -s 4.
 */

#include <stdlib.h>
#include <libliveupdate.h>
#include "igb.h"

#define FIRST_PCI		"0000:01:00.0"
#define SECOND_PCI		"0000:02:00.0"
#define SECOND_RLPML		0x0bbc
#define STAGES			4

#define FIRST_SESSION		"vfio-pci-lu-multi-1"
#define SECOND_SESSION		"vfio-pci-lu-multi-2"
#define DEVICE_TOKEN		0x7f40
#define STATE_SESSION		"vfio_pci_lu_multi_state"
#define STATE_TOKEN		997

/* The RLPML value the first device gets in @stage: not its reset value. */
static __u32 first_rlpml(int stage)
{
	return 0x1000 + 0x100 * stage;
}

/* Binds a new device file, turns bus mastering on and writes RLPML. */
static int set_up(const char *pci, __u32 value)
{
	int fd = open_bound(pci);

	if (fd < 0 || enable_master(fd, pci) ||
	    bar0_rw32(fd, 1, &value, IGB_RLPML) || igb_rlpml(fd) != value)
		return -1;
	return fd;
}

/* Preserves @fd alone in a new session @name; 0 or -errno. */
static int preserve(int luo_fd, const char *name, int fd)
{
	int session_fd = luo_create_session(luo_fd, name);

	if (session_fd < 0)
		return session_fd;
	/* The session stays open, so preserved, until the kexec. */
	return luo_session_preserve_fd(session_fd, fd, DEVICE_TOKEN);
}

/*
 * Retrieves the device of session @name, binds it and checks it kept bus
 * mastering and @value in RLPML, then finishes the session. The device file,
 * or -1.
 */
static int take_back(int luo_fd, const char *name, const char *pci, __u32 value)
{
	int session_fd = luo_retrieve_session(luo_fd, name);
	int fd = session_fd >= 0 ? luo_session_retrieve_fd(session_fd, DEVICE_TOKEN) : -1;
	__u32 got;

	ksft_test_result(fd >= 0 && bind_device(fd) == 0,
			 "%s: retrieve and bind %s\n", name, pci);
	ksft_test_result(bus_master(pci) == 1, "%s: bus mastering still on\n", pci);
	got = fd >= 0 ? igb_rlpml(fd) : 0;
	ksft_test_result(got == value, "%s: RLPML kept %#x (%#x)\n", pci, value, got);
	ksft_test_result(session_fd >= 0 && luo_session_finish(session_fd) == 0,
			 "%s: finish the session\n", name);
	if (session_fd >= 0)
		close(session_fd);
	return fd;
}

static void run_stage_1(int luo_fd)
{
	int first_fd, second_fd;

	ksft_set_plan(4);
	first_fd = set_up(FIRST_PCI, first_rlpml(1));
	second_fd = set_up(SECOND_PCI, SECOND_RLPML);
	ksft_test_result(first_fd >= 0 && second_fd >= 0,
			 "bind both devices, bus mastering on, RLPML written\n");
	ksft_test_result(preserve(luo_fd, FIRST_SESSION, first_fd) == 0,
			 "preserve %s in %s\n", FIRST_PCI, FIRST_SESSION);
	ksft_test_result(preserve(luo_fd, SECOND_SESSION, second_fd) == 0,
			 "preserve %s in %s\n", SECOND_PCI, SECOND_SESSION);
	create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, 2);
	ksft_test_result_pass("ready for the kexec into stage 2\n");
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_later_stage(int luo_fd, int state_session_fd, int stage)
{
	__u32 value = first_rlpml(stage);
	int first_fd, second_fd;

	ksft_set_plan(stage == 2 ? 10 : stage < STAGES ? 6 : 4);
	first_fd = take_back(luo_fd, FIRST_SESSION, FIRST_PCI, first_rlpml(stage - 1));
	if (stage == 2) {
		second_fd = take_back(luo_fd, SECOND_SESSION, SECOND_PCI, SECOND_RLPML);
		if (second_fd >= 0)
			close(second_fd);
	}
	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish the state session");
	close(state_session_fd);
	if (stage == STAGES)
		return;

	/* Use the device, then keep it across one more update. */
	ksft_test_result(first_fd >= 0 && bar0_rw32(first_fd, 1, &value, IGB_RLPML) == 0 &&
			 igb_rlpml(first_fd) == value,
			 "write RLPML %#x into the device taken back\n", value);
	ksft_test_result(preserve(luo_fd, FIRST_SESSION, first_fd) == 0,
			 "preserve it again, for the kexec into stage %d\n", stage + 1);
	create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, stage + 1);
	close(luo_fd);
	hold_sessions_for_kexec();
}

int main(int argc, char *argv[])
{
	int stage = 0, detected = 1, luo_fd, state_session_fd, opt;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	if (stage < 1 || stage > STAGES)
		ksft_exit_fail_msg("usage: %s -s STAGE (1 to %d)\n", argv[0], STAGES);

	ksft_print_header();
	luo_fd = luo_open_device();
	if (luo_fd < 0 || open_iommufd_ioas())
		fail_exit("open /dev/liveupdate and iommufd");
	state_session_fd = luo_retrieve_session(luo_fd, STATE_SESSION);
	if (state_session_fd >= 0)
		restore_and_read_stage(state_session_fd, STATE_TOKEN, &detected);
	else if (state_session_fd != -ENOENT)
		fail_exit("look for the state session");
	if (detected != stage)
		ksft_exit_fail_msg("asked for stage %d, the machine is in stage %d\n",
				   stage, detected);

	if (stage == 1)
		run_stage_1(luo_fd);
	else
		run_later_stage(luo_fd, state_session_fd, stage);
	ksft_finished();
}
