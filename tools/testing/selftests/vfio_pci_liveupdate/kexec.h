/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kexec of the one-boot tests that expect it cancelled (a file refusing
 * to freeze): should the cancel not happen, the machine kexecs into the
 * image loaded here, without an initramfs, and the test run fails loudly.
 */
#ifndef VFIO_LU_KEXEC_H
#define VFIO_LU_KEXEC_H

#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/kexec.h>
#include "vfio_lu_device.h"

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

#endif /* VFIO_LU_KEXEC_H */
