// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-stage test of the Rust Live Update abstractions (lib/tests/liveupdate_rust.rs).
 *
 * Stage 1 sets a value on a /dev/rust_luo_test file and preserves the file;
 * the test device's FLB counts the preserved files. After the kexec, stage 2
 * retrieves the file and checks that the value and the FLB count came across,
 * then finishes the session, which finishes the FLB.
 */

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <libliveupdate.h>

#define TEST_DEVICE		"/dev/rust_luo_test"
#define SET_VALUE		_IO('L', 0x70)
#define GET_VALUE		_IO('L', 0x71)
#define GET_FLB_FILES		_IO('L', 0x72)
#define GET_FLB_OUTGOING	_IO('L', 0x73)

#define TEST_SESSION		"rust-luo-test"
#define TEST_TOKEN		0x5275
#define TEST_VALUE		0x1badcafeL

#define STATE_SESSION		"rust_luo_test_state"
#define STATE_TOKEN		997

/* ioctl() result, or -errno */
static long dev_ioctl(int fd, unsigned long cmd, unsigned long arg)
{
	long ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

static void run_stage_1(int luo_fd)
{
	int session_fd, tmp_fd, dev_fd;

	ksft_print_header();
	ksft_set_plan(8);
	create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, 2);

	dev_fd = open(TEST_DEVICE, O_RDWR);
	if (dev_fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	ksft_test_result(dev_ioctl(dev_fd, SET_VALUE, TEST_VALUE) == 0,
			 "set the file's value\n");
	ksft_test_result(dev_ioctl(dev_fd, GET_VALUE, 0) == TEST_VALUE,
			 "read the value back\n");
	ksft_test_result(dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == -ENOENT,
			 "no outgoing FLB before any preserve\n");

	/* Closing a session unpreserves its files, and the FLB with the last. */
	tmp_fd = luo_create_session(luo_fd, "rust-luo-test-tmp");
	if (tmp_fd < 0)
		fail_exit("create the temporary session");
	ksft_test_result(luo_session_preserve_fd(tmp_fd, dev_fd, TEST_TOKEN) == 0 &&
			 dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == 1,
			 "preserving the file preserves the FLB\n");
	close(tmp_fd);
	ksft_test_result(dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == -ENOENT,
			 "closing the session unpreserves file and FLB\n");

	session_fd = luo_create_session(luo_fd, TEST_SESSION);
	if (session_fd < 0)
		fail_exit("create session %s", TEST_SESSION);
	ksft_test_result(luo_session_preserve_fd(session_fd, dev_fd,
						 TEST_TOKEN) == 0,
			 "preserve the file\n");
	ksft_test_result(luo_session_preserve_fd(session_fd, dev_fd,
						 TEST_TOKEN + 1) == -EBUSY,
			 "preserving it twice is -EBUSY\n");
	ksft_test_result(dev_ioctl(dev_fd, GET_FLB_OUTGOING, 0) == 1,
			 "the FLB counts one file\n");
	close(dev_fd);

	close(luo_fd);
	daemonize_and_wait();
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	int session_fd, dev_fd, fd, stage;

	ksft_print_header();
	ksft_set_plan(5);
	restore_and_read_stage(state_session_fd, STATE_TOKEN, &stage);
	if (stage != 2)
		fail_exit("expected stage 2, state says %d", stage);

	session_fd = luo_retrieve_session(luo_fd, TEST_SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", TEST_SESSION);

	/* The test device hands back the file opened last (see the driver). */
	dev_fd = open(TEST_DEVICE, O_RDWR);
	if (dev_fd < 0)
		fail_exit("open %s", TEST_DEVICE);
	fd = luo_session_retrieve_fd(session_fd, TEST_TOKEN);
	ksft_test_result(fd >= 0, "retrieve the file\n");
	ksft_test_result(fd >= 0 && ioctl(fd, GET_VALUE, 0) == TEST_VALUE,
			 "the value crossed the kexec\n");
	ksft_test_result(fd >= 0 && ioctl(fd, GET_FLB_FILES, 0) == 1,
			 "the FLB counted one preserved file\n");
	ksft_test_result(luo_session_retrieve_fd(session_fd, 0xdead) == -ENOENT,
			 "an unknown token is -ENOENT\n");
	ksft_test_result(luo_session_finish(session_fd) == 0,
			 "finish the session\n");
	close(fd);
	close(dev_fd);

	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish state session");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	return luo_test(argc, argv, STATE_SESSION, run_stage_1, run_stage_2);
}
