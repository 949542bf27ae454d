/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kexec of the one-boot tests that expect it cancelled (a file refusing
 * to freeze): should the cancel not happen, the machine kexecs into the
 * image loaded here, without an initramfs, and the test run fails loudly.
 */
#ifndef VFIO_LU_KEXEC_H
#define VFIO_LU_KEXEC_H

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <linux/kexec.h>
#include <linux/reboot.h>
#include <libliveupdate.h>
#include "vfio_lu_device.h"

/* The file of the Rust test driver (lib/tests/liveupdate_rust.rs), its ioctls. */
#define TEST_DEVICE		"/dev/rust_luo_test"
#define SET_VALUE		_IO('L', 0x70)
#define SET_PCI_DEVICE		_IO('L', 0x74)
#define FAIL_FREEZE		_IO('L', 0x77)

/* Loads @kernel for a kexec, or exits. */
static inline void load_kexec(const char *kernel)
{
	int fd = open(kernel, O_RDONLY);

	if (fd < 0)
		fail_exit("open %s", kernel);
	if (syscall(SYS_kexec_file_load, fd, -1, 1UL, "",
		    (unsigned long)KEXEC_FILE_NO_INITRAMFS))
		fail_exit("kexec_file_load %s", kernel);
	close(fd);
	sync();
}

/* Loads @kernel for a kexec and starts it: the return value of reboot(). */
static inline int start_kexec(const char *kernel)
{
	load_kexec(kernel);
	return reboot(LINUX_REBOOT_CMD_KEXEC) ? -errno : 0;
}

/*
 * Preserves, as @token in a new session @session, a test file that refuses
 * to freeze: the kexecs started while it is kept are cancelled, after the
 * sessions created before @session were frozen. The session's fd, or exits.
 */
static inline int preserve_refusing_file(int luo_fd, const char *session, int token)
{
	int session_fd = luo_create_session(luo_fd, session);
	int fd = open(TEST_DEVICE, O_RDWR);

	if (session_fd < 0 || fd < 0 || ioctl(fd, SET_VALUE, 1) || ioctl(fd, FAIL_FREEZE) ||
	    luo_session_preserve_fd(session_fd, fd, token))
		fail_exit("preserve a file that refuses to freeze");
	close(fd);
	return session_fd;
}

#endif /* VFIO_LU_KEXEC_H */
