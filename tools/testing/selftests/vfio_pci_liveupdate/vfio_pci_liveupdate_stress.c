// SPDX-License-Identifier: GPL-2.0-only
/*
 * Preserve, unpreserve and close from concurrent threads, then a Live
 * Update, meant for the debug kernel (lockdep, KFENCE, DEBUG_LIST,
 * DEBUG_ATOMIC_SLEEP, kmemleak), whose reports fail the run.
 *
 * Stage 1 sets up four edus (a register of BAR 0 and the Interrupt Line
 * written), then four threads run 50 cycles each: create a session,
 * preserve one of two devices, close the session (which unpreserves it).
 * Neighbouring threads share a device, so preserves race: each must succeed
 * or fail with -EBUSY, nothing else. Afterwards every device must preserve
 * again (nothing left behind), two in each of two sessions, and a kmemleak
 * scan must find nothing. Stage 2 takes the four devices back from both
 * sessions, checks their state, finishes, and scans for leaks again.
 *
 * See tools/vmtest/scenarios/debug/vfio-pci-liveupdate-stress.toml.
 */

#include <pthread.h>
#include "edu.h"
#include "leaks.h"

#define DEVICES			4
#define THREADS			4
#define CYCLES			50
#define PCI_INTERRUPT_LINE	0x3c
#define TOKEN			0x7f60

static const char *const session_names[2] = { "vfio-pci-lu-stress-a", "vfio-pci-lu-stress-b" };
static int luo_fd;
static int dev_fd[DEVICES];

static const char *pci(int i)
{
	static char name[DEVICES][16];

	snprintf(name[i], sizeof(name[i]), "0000:%02x:00.0", i + 1);
	return name[i];
}

static __u32 test_value(int i)
{
	return 0x10000 * (i + 1) + 0x5a0;
}

static int set_up(int i)
{
	__u8 line = 0x40 + i;
	__u32 value = test_value(i);

	dev_fd[i] = open_bound(pci(i));
	if (dev_fd[i] < 0 || enable_master(dev_fd[i], pci(i)))
		return -1;
	if (config_rw(dev_fd[i], 1, &line, 1, PCI_INTERRUPT_LINE))
		return -1;
	return bar0_rw32(dev_fd[i], 1, &value, EDU_DMA_SRC);
}

/* Whether device @i shows the state stage 1 gave it, through @fd. */
static int kept(int fd, int i)
{
	__u8 line = 0;
	__u32 value = 0;

	return config_rw(fd, 0, &line, 1, PCI_INTERRUPT_LINE) == 0 && line == 0x40 + i &&
	       bar0_rw32(fd, 0, &value, EDU_DMA_SRC) == 0 && value == test_value(i);
}

struct cycles {
	int thread;
	int preserved, busy, other;
};

static void *run_cycles(void *arg)
{
	struct cycles *c = arg;
	char name[64];
	int n, session_fd, dev, ret;

	for (n = 0; n < CYCLES; n++) {
		dev = n % 2 ? (c->thread + 1) % DEVICES : c->thread;
		snprintf(name, sizeof(name), "stress-%d-%d", c->thread, n);
		session_fd = luo_create_session(luo_fd, name);
		if (session_fd < 0) {
			c->other++;
			continue;
		}
		ret = luo_session_preserve_fd(session_fd, dev_fd[dev], TOKEN + dev);
		if (ret == 0)
			c->preserved++;
		else if (ret == -EBUSY)
			c->busy++;
		else
			c->other++;
		close(session_fd);
	}
	return NULL;
}

static void run_stage_1(void)
{
	struct cycles c[THREADS] = { 0 };
	pthread_t thread[THREADS];
	int i, ok = 1, preserved = 0, busy = 0, other = 0, session_fd[2], leaks;

	ksft_print_header();
	ksft_set_plan(4);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	/* Leak reports from before the test are not the test's. */
	if (kmemleak_clear())
		fail_exit("clear %s", KMEMLEAK);
	for (i = 0; i < DEVICES; i++)
		ok &= set_up(i) == 0;
	ksft_test_result(ok, "set up %d edus\n", DEVICES);

	for (i = 0; i < THREADS; i++) {
		c[i].thread = i;
		pthread_create(&thread[i], NULL, run_cycles, &c[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(thread[i], NULL);
		preserved += c[i].preserved;
		busy += c[i].busy;
		other += c[i].other;
	}
	ksft_test_result(preserved + busy == THREADS * CYCLES && other == 0 && preserved > 0,
			 "%d cycles from %d threads: %d preserved, %d -EBUSY, %d other\n",
			 THREADS * CYCLES, THREADS, preserved, busy, other);

	ok = 1;
	for (i = 0; i < 2; i++) {
		session_fd[i] = luo_create_session(luo_fd, session_names[i]);
		ok &= session_fd[i] >= 0;
	}
	for (i = 0; ok && i < DEVICES; i++)
		ok = luo_session_preserve_fd(session_fd[i / 2], dev_fd[i], TOKEN + i) == 0;
	ksft_test_result(ok, "then all %d preserve, in 2 sessions: nothing was left behind\n",
			 DEVICES);
	leaks = kmemleak_reports();
	ksft_test_result(leaks == 0, "kmemleak: %d leaks\n", leaks);
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_2(void)
{
	int i, fd, ok = 1, session_fd[2], leaks;
	char restored[96];

	ksft_print_header();
	ksft_set_plan(DEVICES + 2);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	for (i = 0; i < 2; i++) {
		session_fd[i] = luo_retrieve_session(luo_fd, session_names[i]);
		if (session_fd[i] < 0)
			fail_exit("retrieve session %s", session_names[i]);
	}
	for (i = 0; i < DEVICES; i++) {
		fd = luo_session_retrieve_fd(session_fd[i / 2], TOKEN + i);
		snprintf(restored, sizeof(restored), "%s: state restored from the previous kernel",
			 pci(i));
		ksft_test_result(fd >= 0 && bind_iommufd(fd, NULL) == 0 &&
				 attach_ioas(fd, ioas_id) == 0 && kept(fd, i) &&
				 kmsg_has(restored) == 1,
				 "%s: taken back from session %s, state kept\n",
				 pci(i), session_names[i / 2]);
		dev_fd[i] = fd;
	}
	for (i = 0; i < 2; i++)
		ok &= luo_session_finish(session_fd[i]) == 0;
	ksft_test_result(ok, "finish both sessions\n");
	for (i = 0; i < DEVICES; i++)
		if (dev_fd[i] >= 0)
			close(dev_fd[i]);
	leaks = kmemleak_reports();
	ksft_test_result(leaks == 0, "kmemleak: %d leaks\n", leaks);
	ksft_finished();
}

int main(int argc, char *argv[])
{
	int stage = stage_arg(argc, argv, 2);

	luo_fd = open_luo();
	if (stage == 1)
		run_stage_1();
	run_stage_2();
}
