/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the Live Update selftests read outside the interfaces they test: a PCI
 * device's config space through sysfs, so that what a driver or vfio shows
 * cannot hide the device's real state, and the kernel log.
 */
#ifndef LU_PCI_SYSFS_H
#define LU_PCI_SYSFS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PCI_COMMAND		0x04
#define PCI_COMMAND_MEMORY	0x2
#define PCI_COMMAND_MASTER	0x4

static inline int pci_sysfs_open(const char *bdf, const char *attr, int flags)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	return open(path, flags);
}

/* Writes @val into the sysfs attribute @attr of the device; 0 or -1. */
static inline int pci_sysfs_write(const char *bdf, const char *attr, const char *val)
{
	int fd = pci_sysfs_open(bdf, attr, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/* The command register, read from config space through sysfs; -1 on error. */
static inline int pci_command(const char *bdf)
{
	unsigned short cmd;
	int fd = pci_sysfs_open(bdf, "config", O_RDONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = pread(fd, &cmd, sizeof(cmd), PCI_COMMAND) == sizeof(cmd);
	close(fd);
	return ok ? cmd : -1;
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
