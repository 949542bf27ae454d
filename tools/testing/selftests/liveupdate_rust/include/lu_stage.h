/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The end of a Live Update selftest stage before a kexec: the sessions it
 * preserved must stay open up to the kexec, so a child process holds them
 * while the program itself exits.
 */
#ifndef LU_STAGE_H
#define LU_STAGE_H

#include <stdlib.h>
#include <unistd.h>
#include <libliveupdate.h>

/* The stage N of "-s N", from 1 to @stages; the program fails without one. */
static inline int stage_arg(int argc, char *argv[], int stages)
{
	int opt, stage = 0;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	if (stage < 1 || stage > stages)
		ksft_exit_fail_msg("usage: %s -s 1..%d\n", argv[0], stages);
	return stage;
}

/* /dev/liveupdate; the program fails without it. */
static inline int open_luo(void)
{
	int luo_fd = luo_open_device();

	if (luo_fd < 0)
		ksft_exit_fail_msg("open /dev/liveupdate: %d\n", luo_fd);
	return luo_fd;
}

/*
 * Ends the stage. A check that failed, or a plan not run to its end, fails
 * the program here, before anything is handed to a child: its exit status
 * would otherwise say success whatever the stage found. Otherwise a child
 * keeps the sessions open up to the kexec and the program exits 0.
 */
static inline void hold_sessions_for_kexec(void)
{
	if (ksft_get_fail_cnt() || ksft_test_num() != ksft_plan)
		ksft_exit_fail_msg("this stage did not pass (%u failed, %u of %u run)\n",
				   ksft_get_fail_cnt(), ksft_test_num(), ksft_plan);
	daemonize_and_wait();
}

#endif /* LU_STAGE_H */
