/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What a selftest leaked: memory KHO handed over and never given back to
 * the kernel, and (on the debug kernel) what kmemleak finds.
 */
#ifndef VFIO_LU_LEAKS_H
#define VFIO_LU_LEAKS_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../kselftest.h"

#define KMEMLEAK		"/sys/kernel/debug/kmemleak"
/* kmemleak reports objects at least 5 s old. */
#define KMEMLEAK_AGE_S		6

/*
 * MemTotal in KiB, or -1. Memory the previous kernel preserved through KHO
 * counts in it only once the kernel restored it (kho_restore_*() adds it
 * to the managed pages), so it grows by what is taken back.
 */
static inline long mem_total_kib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	long kib = -1;

	if (f) {
		if (fscanf(f, "MemTotal: %ld kB", &kib) != 1)
			kib = -1;
		fclose(f);
	}
	return kib;
}

/* Whether the kernel has kmemleak (the debug kernel does). */
static inline bool has_kmemleak(void)
{
	return access(KMEMLEAK, W_OK) == 0;
}

/* Leak reports from before the test are not the test's; 0 or -1. */
static inline int kmemleak_clear(void)
{
	int fd = open(KMEMLEAK, O_WRONLY);
	int ok = fd >= 0 && write(fd, "clear", 5) == 5;

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/*
 * Scans for leaks after the objects had time to age: the leaks reported, or
 * -1. kmemleak reports an object unreferenced in two scans in a row (the
 * first only records its checksum), hence two.
 */
static inline int kmemleak_reports(void)
{
	char buf[4096];
	int fd, reports = 0;
	ssize_t len;

	sleep(KMEMLEAK_AGE_S);
	fd = open(KMEMLEAK, O_RDWR);
	if (fd < 0 || write(fd, "scan", 4) != 4 || write(fd, "scan", 4) != 4)
		return -1;
	lseek(fd, 0, SEEK_SET);
	while ((len = read(fd, buf, sizeof(buf) - 1)) > 0) {
		char *at = buf;

		buf[len] = 0;
		if (!reports)
			ksft_print_msg("%.300s\n", buf);
		while ((at = strstr(at, "unreferenced object"))) {
			reports++;
			at++;
		}
	}
	close(fd);
	return reports;
}

#endif /* VFIO_LU_LEAKS_H */
