/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the Live Update selftests read outside the interfaces they test: a PCI
 * device's config space and BAR 0 through sysfs, so that what a driver or
 * vfio shows cannot hide the device's real state, and the kernel log.
 */
#ifndef LU_PCI_SYSFS_H
#define LU_PCI_SYSFS_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PCI_COMMAND		0x04
#define PCI_COMMAND_MEMORY	0x2
#define PCI_COMMAND_MASTER	0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS		0x06
#define PCI_STATUS_INTERRUPT	0x08

static inline int pci_sysfs_open(const char *bdf, const char *attr, int flags)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	return open(path, flags);
}

/* Writes @val into the file at @path (sysfs, debugfs) in one write; 0 or -1. */
static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/* Writes @val into the sysfs attribute @attr of the device; 0 or -1. */
static inline int pci_sysfs_write(const char *bdf, const char *attr, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	return write_file(path, val);
}

/*
 * The last element of the path the sysfs link @attr of @bdf points to (its
 * driver, its iommu_group), into @name of @size bytes; 0 or -1.
 */
static inline int pci_sysfs_link(const char *bdf, const char *attr, char *name, size_t size)
{
	char path[128], link[256], *last;
	ssize_t len;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return -1;
	link[len] = 0;
	last = strrchr(link, '/');
	last = last ? last + 1 : link;
	if (strlen(last) >= size)
		return -1;
	memcpy(name, last, strlen(last) + 1);
	return 0;
}

/*
 * Reads up to @len bytes of the config space of @bdf from offset @at through
 * sysfs: the bytes read (the device may have fewer), or -1.
 */
static inline ssize_t pci_config_read(const char *bdf, void *buf, size_t len, off_t at)
{
	int fd = pci_sysfs_open(bdf, "config", O_RDONLY);
	ssize_t got;

	if (fd < 0)
		return -1;
	got = pread(fd, buf, len, at);
	close(fd);
	return got;
}

/* The 16-bit config register of @bdf at @at, read through sysfs; -1 on error. */
static inline int pci_config_word(const char *bdf, off_t at)
{
	unsigned short val;

	return pci_config_read(bdf, &val, sizeof(val), at) == sizeof(val) ? val : -1;
}

/* The command register; -1 on error. */
static inline int pci_command(const char *bdf)
{
	return pci_config_word(bdf, PCI_COMMAND);
}

/*
 * The 32-bit register at @at in BAR 0 of @bdf, read through sysfs
 * (resource0) while no driver has the device open; 0xffffffff on error.
 */
static inline uint32_t pci_bar0_read32(const char *bdf, off_t at)
{
	size_t len = (at | 4095) + 1;
	uint32_t *bar;
	uint32_t val;
	int fd = pci_sysfs_open(bdf, "resource0", O_RDWR);

	if (fd < 0)
		return ~0u;
	bar = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (bar == MAP_FAILED)
		return ~0u;
	/* One 32-bit load, as the device register wants it. */
	val = __atomic_load_n(&bar[at / 4], __ATOMIC_RELAXED);
	munmap(bar, len);
	return val;
}

/* Whether the kernel log holds @needle: 1, 0, or -1 on error. */
static inline int kmsg_has(const char *needle)
{
	char rec[1024];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	int found = 0;
	ssize_t len;

	if (fd < 0)
		return -1;
	for (;;) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;	/* records were overwritten: go on */
		if (len <= 0)
			break;
		rec[len] = 0;
		if (strstr(rec, needle))
			found = 1;
	}
	close(fd);
	return found;
}

/* Whether bus mastering is on in the command register: 1, 0, or -1 on error. */
static inline int bus_master(const char *bdf)
{
	int cmd = pci_command(bdf);

	return cmd < 0 ? -1 : !!(cmd & PCI_COMMAND_MASTER);
}

#endif /* LU_PCI_SYSFS_H */
