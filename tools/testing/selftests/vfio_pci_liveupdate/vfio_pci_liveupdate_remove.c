// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unbinding and removing a device while it is preserved or incoming.
 *
 * Stage 1, edu A: its file preserved (and closed by the test, so only the
 * session holds it), unbinding vfio-pci from it waits, as for any vfio
 * device in use, and completes once the session is closed; vfio-pci binds
 * again and the device preserves again, nothing left behind. The same with
 * the device removed (sysfs remove), then found again by a rescan. Then edu
 * B is preserved and kept across the kexec.
 *
 * Stage 2: B, incoming, is removed (no file holds it: that is immediate);
 * retrieving its file fails cleanly; a rescan finds it again, still
 * incoming; finishing the session releases it, and vfio-pci opens it.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-remove.toml.
 */

#include <pthread.h>
#include <time.h>
#include "vfio_lu_device.h"

#define DEVICE_A		"0000:01:00.0"
#define DEVICE_B		"0000:02:00.0"
#define SESSION_B		"vfio-pci-lu-remove"
#define TOKEN			0x7f70

struct sysfs_write {
	const char *path, *value;
	int done, ok;
};

static void *do_write(void *arg)
{
	struct sysfs_write *w = arg;

	w->ok = write_file(w->path, w->value) == 0;
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Whether @w finished within @ms milliseconds. */
static int finished_within(struct sysfs_write *w, int ms)
{
	for (; ms > 0; ms -= 50) {
		if (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE))
			return 1;
		usleep(50 * 1000);
	}
	return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

/* The device's vfio cdev, once vfio-pci has bound it (within 5 s); or NULL. */
static const char *bound_cdev(const char *pci)
{
	const char *cdev;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		cdev = device_cdev(pci);
		if (cdev && access(cdev, F_OK) == 0)
			return cdev;
		usleep(50 * 1000);
	}
	return NULL;
}

/* Preserves @pci's file in a new session; closes the file. The session, or -1. */
static int preserve_alone(int luo_fd, const char *pci, const char *session)
{
	int fd = open_bound(pci);
	int session_fd = luo_create_session(luo_fd, session);

	if (fd < 0 || session_fd < 0 || luo_session_preserve_fd(session_fd, fd, TOKEN)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return session_fd;
}

/*
 * Writes @value to @path from a thread while @pci is preserved: the write
 * must wait for the session, and finish once it is closed.
 */
static void check_waits_for_session(int luo_fd, const char *what, const char *path,
				    const char *value)
{
	struct sysfs_write w = { .path = path, .value = value };
	int session_fd = preserve_alone(luo_fd, DEVICE_A, what);
	pthread_t thread;
	int waited;

	if (session_fd < 0)
		fail_exit("preserve %s", DEVICE_A);
	pthread_create(&thread, NULL, do_write, &w);
	waited = !finished_within(&w, 1000);
	close(session_fd);
	ksft_test_result(waited && finished_within(&w, 5000) && w.ok,
			 "%s %s while preserved: waits for the session, done once it is closed\n",
			 what, DEVICE_A);
	if (w.done)
		pthread_join(thread, NULL);
}

static void run_stage_1(int luo_fd)
{
	char path[128];
	int session_fd;

	ksft_print_header();
	ksft_set_plan(5);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");

	check_waits_for_session(luo_fd, "unbind", "/sys/bus/pci/drivers/vfio-pci/unbind",
				DEVICE_A);
	session_fd = write_file("/sys/bus/pci/drivers_probe", DEVICE_A) || !bound_cdev(DEVICE_A) ?
		     -1 : preserve_alone(luo_fd, DEVICE_A, "again-1");
	ksft_test_result(session_fd >= 0, "bound again, %s preserves again\n", DEVICE_A);
	if (session_fd >= 0)
		close(session_fd);

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove", DEVICE_A);
	check_waits_for_session(luo_fd, "remove", path, "1");
	session_fd = write_file("/sys/bus/pci/rescan", "1") || !bound_cdev(DEVICE_A) ?
		     -1 : preserve_alone(luo_fd, DEVICE_A, "again-2");
	ksft_test_result(session_fd >= 0, "found by a rescan, %s preserves again\n", DEVICE_A);
	if (session_fd >= 0)
		close(session_fd);

	ksft_test_result(preserve_alone(luo_fd, DEVICE_B, SESSION_B) >= 0,
			 "preserve %s for the kexec\n", DEVICE_B);
	close(luo_fd);
	hold_sessions_for_kexec();
}

static void run_stage_2(int luo_fd)
{
	const char *cdev = device_cdev(DEVICE_B);
	char path[128];
	int fd, session_fd;

	ksft_print_header();
	ksft_set_plan(5);
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");

	fd = cdev ? open(cdev, O_RDWR) : -1;
	ksft_test_result(fd < 0 && errno == EBUSY, "%s is incoming\n", DEVICE_B);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove", DEVICE_B);
	session_fd = luo_retrieve_session(luo_fd, SESSION_B);
	fd = -1;
	if (write_file(path, "1") == 0 && access(path, F_OK) != 0 && session_fd >= 0)
		fd = luo_session_retrieve_fd(session_fd, TOKEN);
	ksft_test_result(session_fd >= 0 && fd == -ENODEV,
			 "removed while incoming: its file is not retrieved (%d)\n", fd);
	cdev = write_file("/sys/bus/pci/rescan", "1") ? NULL : bound_cdev(DEVICE_B);
	fd = cdev ? open(cdev, O_RDWR) : -1;
	ksft_test_result(fd < 0 && errno == EBUSY,
			 "found again by a rescan, %s is still incoming\n", DEVICE_B);
	if (fd >= 0)
		close(fd);
	ksft_test_result(session_fd >= 0 && luo_session_finish(session_fd) == 0,
			 "finish the session\n");
	fd = open_bound(DEVICE_B);
	ksft_test_result(fd >= 0 && bus_master(DEVICE_B) == 0,
			 "released at finish: vfio-pci opens %s, bus mastering off\n", DEVICE_B);
	if (fd >= 0)
		close(fd);
	ksft_finished();
}

int main(int argc, char *argv[])
{
	int stage = stage_arg(argc, argv, 2);
	int luo_fd = open_luo();

	if (stage == 1)
		run_stage_1(luo_fd);
	run_stage_2(luo_fd);
}
