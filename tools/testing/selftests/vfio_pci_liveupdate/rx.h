/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the DMA tests share: memfd pages that a preserved session keeps in
 * place across the kexec, their physical addresses, and an igb receiving
 * the frames the test runner sends (tools/vmtest/src/traffic.rs) into them.
 */
#ifndef VFIO_LU_RX_H
#define VFIO_LU_RX_H

#include <endian.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <libliveupdate.h>
#include "igb.h"

#define FILL			0xa5
#define FRAME_MAGIC		"LU-TRAFFIC"
#define ETH_HLEN		14
/* Where the runner's frames carry their big-endian sequence number. */
#define FRAME_SEQ		(ETH_HLEN + 10)

static long page_size;

/* Maps @len bytes of the memfd @mfd, shared and faulted in; NULL on failure. */
static inline void *map_memfd(int mfd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, mfd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* @len bytes of a new memfd, filled with @fill; its fd in @mfd. */
static inline void *new_memfd(int *mfd, size_t len, int fill)
{
	void *p;

	*mfd = memfd_create("vfio-pci-lu-dma", 0);
	if (*mfd < 0 || ftruncate(*mfd, len))
		return NULL;
	p = map_memfd(*mfd, len);
	if (p)
		memset(p, fill, len);
	return p;
}

/* Maps @len bytes of the memfd preserved as @token in @session_fd; its fd in @mfd. */
static inline void *retrieve_memfd(int session_fd, __u64 token, size_t len, int *mfd)
{
	*mfd = luo_session_retrieve_fd(session_fd, token);
	return *mfd < 0 ? NULL : map_memfd(*mfd, len);
}

/* Physical address of the page at @va, from /proc/self/pagemap; 0 if unknown. */
static inline __u64 phys_of(const void *va)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	__u64 entry = 0;
	off_t at = (uintptr_t)va / page_size * sizeof(entry);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), at) != sizeof(entry))
		entry = 0;
	close(fd);
	if (!(entry & 1ULL << 63))		/* not present */
		return 0;
	return (entry & ((1ULL << 55) - 1)) * page_size;
}

/* Descriptors of the @count of @ring the device has written back. */
static inline unsigned int done_count(struct igb_rx_desc *ring, unsigned int count)
{
	unsigned int i, done = 0;

	for (i = 0; i < count; i++)
		done += __atomic_load_n(&ring[i].status, __ATOMIC_ACQUIRE) & IGB_RXD_DD;
	return done;
}

/* The newest of the runner's frames in the @nbufs buffers at @data, by number; -1 if none. */
static inline long newest_frame(const unsigned char *data, unsigned int nbufs)
{
	long newest = -1;
	unsigned int i;

	for (i = 0; i < nbufs; i++) {
		const unsigned char *buf = data + i * IGB_RX_BUF;
		__u32 seq;

		if (memcmp(buf + ETH_HLEN, FRAME_MAGIC, strlen(FRAME_MAGIC)))
			continue;
		memcpy(&seq, buf + FRAME_SEQ, sizeof(seq));
		if ((long)be32toh(seq) > newest)
			newest = be32toh(seq);
	}
	return newest;
}

/* Whether @what() became true within about 10 s. */
static inline int wait_for(int (*what)(void *), void *arg)
{
	struct timespec tick = { .tv_nsec = 20 * 1000 * 1000 };
	int i;

	for (i = 0; i < 500; i++) {
		if (what(arg))
			return 1;
		nanosleep(&tick, NULL);
	}
	return what(arg);
}

/* Reports on the page at @target: 1 when no byte of it was written. */
static inline int target_untouched(const unsigned char *target, __u64 phys)
{
	long at;

	for (at = 0; at < page_size; at++)
		if (target[at] != FILL)
			break;
	if (at == page_size)
		return 1;
	ksft_print_msg("host memory at %#llx written from offset %ld%s\n",
		       (unsigned long long)phys, at,
		       memmem(target, page_size, FRAME_MAGIC, strlen(FRAME_MAGIC)) ?
		       ": it holds a frame the device received" : "");
	return 0;
}

#endif /* VFIO_LU_RX_H */
