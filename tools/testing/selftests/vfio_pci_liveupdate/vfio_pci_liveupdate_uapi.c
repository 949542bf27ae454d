// SPDX-License-Identifier: GPL-2.0-only
/*
 * One-boot test of which files the vfio-pci Live Update handler takes, and of
 * the errors LUO and the handler give for everything else, each checked for
 * its exact errno and for leaving nothing behind.
 *
 * Devices (tools/vmtest/scenarios/vfio-pci-liveupdate.toml): QEMU's edu at
 * 0000:01:00.0 and 0000:02:00.0 bound to vfio-pci, and an igb (82576) at
 * 0000:05:00.0 bound to vfio-pci with SR-IOV allowed
 * (vfio_pci.enable_sriov=1), whose VF the test enables: the VF is bound to
 * vfio-pci too, and to iommufd with the VF token the PF was given, so that
 * only its being a VF is left to refuse. The edu at 0000:02:00.0 is also
 * moved for a while to virtio_vfio_pci, a vfio-pci-core variant driver that
 * binds to any function through driver_override: the handler must refuse
 * the files of variant drivers, whose own state it does not keep.
 *
 * VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA: a device must be preserved before its
 * user may require its DMA to go on through the update, flags and reason are
 * checked, GET says why its DMA would stop (its IOAS maps nothing), and the
 * requirement ends with the preservation. In a kernel without the VT-d
 * hand-over, GET says so and the requirement is refused.
 */

#include <stdlib.h>
#include <sys/wait.h>
#include <libliveupdate.h>
#include "edu.h"

#define DEVICE_PCI		"0000:01:00.0"
#define SRIOV_PF		"0000:05:00.0"
/* A device whose cdev is not open: vfio refuses its group while one is. */
#define GROUP_PCI		"0000:02:00.0"
#define TEST_DMA_SRC		0x00c0ffee00c0ffeeULL

#define SESSION			"vfio-pci-lu-uapi"
#define OTHER_SESSION		"vfio-pci-lu-uapi-other"
#define VARIANT_SESSION		"vfio-pci-lu-uapi-variant"
#define TOKEN			0x7f30
#define OTHER_TOKEN		0x7f31
#define UNPRIVILEGED_UID	65534

static const __u8 vf_token[16] = { 0x4c, 0x55, 0x4f, 0x2d, 0x76, 0x66, 0x69, 0x6f,
				   0x2d, 0x76, 0x66, 0x2d, 0x74, 0x6f, 0x6b, 0x31 };

/* Opens the vfio cdev of @pci, or exits. */
static int open_cdev(const char *pci)
{
	const char *cdev = device_cdev(pci);
	int fd = cdev ? open(cdev, O_RDWR) : -1;

	if (fd < 0)
		fail_exit("open the vfio cdev of %s", pci);
	return fd;
}

/* Moves @pci from its driver to @driver through driver_override; 0 or -1. */
static int rebind(const char *pci, const char *driver)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind", driver);
	return pci_sysfs_write(pci, "driver/unbind", pci) ||
	       pci_sysfs_write(pci, "driver_override", driver) ||
	       write_file(path, pci) ? -1 : 0;
}

/* Gives the PF the VF token and enables one VF; its vfio cdev fd, bound. */
static int open_bound_vf(int pf_fd)
{
	struct {
		struct vfio_device_feature feature;
		__u8 uuid[16];
	} set_token = {
		.feature = {
			.argsz = sizeof(set_token),
			.flags = VFIO_DEVICE_FEATURE_SET |
				 VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
		},
	};
	char link[256], *vf;
	ssize_t len;
	int fd;

	memcpy(set_token.uuid, vf_token, sizeof(vf_token));
	if (bind_device(pf_fd) || ioctl(pf_fd, VFIO_DEVICE_FEATURE, &set_token))
		fail_exit("bind %s and give it a VF token", SRIOV_PF);
	if (pci_sysfs_write(SRIOV_PF, "sriov_numvfs", "1"))
		fail_exit("enable a VF of %s", SRIOV_PF);
	len = readlink("/sys/bus/pci/devices/" SRIOV_PF "/virtfn0", link, sizeof(link) - 1);
	if (len < 0)
		fail_exit("find the VF of %s", SRIOV_PF);
	link[len] = 0;
	vf = strrchr(link, '/');
	fd = open_cdev(vf ? vf + 1 : link);
	if (bind_device_token(fd, vf_token))
		fail_exit("bind the VF of %s", SRIOV_PF);
	return fd;
}

/* In a child that dropped root: -errno of opening @path, or 0. */
static int open_unprivileged(const char *path)
{
	int status, fd;
	pid_t pid = fork();

	if (pid < 0)
		fail_exit("fork");
	if (pid == 0) {
		if (setgid(UNPRIVILEGED_UID) || setuid(UNPRIVILEGED_UID))
			_exit(255);
		fd = open(path, O_RDWR);
		_exit(fd < 0 ? errno : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -EINTR;
	return -WEXITSTATUS(status);
}

/* One result: @what gave @got, which must be @want (0 or -errno). */
static void expect(int got, int want, const char *what)
{
	ksft_test_result(got == want, "%s: %d (%d)\n", what, want, got);
}

int main(void)
{
	const char *cdev = device_cdev(DEVICE_PCI);
	struct vfio_device_feature_liveupdate_dma dma = {};
	__u64 dma_src = TEST_DMA_SRC;
	int luo_fd, session_fd, other_fd, variant_fd, dev_fd, pf_fd, vf_fd, fd;
	int pipe_fds[2];

	ksft_print_header();
	ksft_set_plan(25);
	luo_fd = luo_open_device();
	if (luo_fd < 0 || !cdev || open_iommufd_ioas() || pipe(pipe_fds))
		fail_exit("set up /dev/liveupdate, %s, iommufd", DEVICE_PCI);
	session_fd = luo_create_session(luo_fd, SESSION);
	other_fd = luo_create_session(luo_fd, OTHER_SESSION);
	if (session_fd < 0 || other_fd < 0)
		fail_exit("create sessions");
	dev_fd = open_cdev(DEVICE_PCI);

	/* Files the handler does not take: LUO finds no handler. */
	expect(luo_session_preserve_fd(session_fd, dev_fd, TOKEN), -ENOENT,
	       "a device file not bound to iommufd");
	fd = open_group(GROUP_PCI);
	if (fd < 0)
		fail_exit("open the vfio group of %s", GROUP_PCI);
	expect(luo_session_preserve_fd(session_fd, fd, TOKEN), -ENOENT, "a vfio group fd");
	close(fd);
	fd = open("/dev/vfio/vfio", O_RDWR);
	expect(luo_session_preserve_fd(session_fd, fd, TOKEN), -ENOENT,
	       "a vfio container fd");
	close(fd);
	expect(luo_session_preserve_fd(session_fd, iommufd, TOKEN), -ENOENT, "an iommufd fd");
	expect(luo_session_preserve_fd(session_fd, pipe_fds[0], TOKEN), -ENOENT, "a pipe");
	fd = dup(pipe_fds[1]);
	close(fd);
	expect(luo_session_preserve_fd(session_fd, fd, TOKEN), -EBADF, "a closed fd");
	pf_fd = open_cdev(SRIOV_PF);
	vf_fd = open_bound_vf(pf_fd);
	expect(luo_session_preserve_fd(session_fd, vf_fd, TOKEN), -ENOENT,
	       "a VF's device file, bound to iommufd");
	if (rebind(GROUP_PCI, "virtio_vfio_pci"))
		fail_exit("bind %s to virtio_vfio_pci", GROUP_PCI);
	/* In a session of its own: were it preserved, closing that lets it go. */
	variant_fd = luo_create_session(luo_fd, VARIANT_SESSION);
	fd = open_bound(GROUP_PCI);
	expect(fd < 0 ? fd : luo_session_preserve_fd(variant_fd, fd, TOKEN), -ENOENT,
	       "a variant driver's device file, bound to iommufd");
	close(variant_fd);
	close(fd);
	if (rebind(GROUP_PCI, "vfio-pci"))
		fail_exit("bind %s back to vfio-pci", GROUP_PCI);

	/* The device file, once bound; nothing of the refusals is left. */
	if (bind_device(dev_fd) || bar0_rw64(dev_fd, 1, &dma_src, EDU_DMA_SRC))
		fail_exit("bind %s and write a BAR register", DEVICE_PCI);
	expect(liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
			      VFIO_DEVICE_FEATURE_SET, &dma), 0,
	       "probe VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA");
	expect(require_dma(dev_fd, 1), -EINVAL,
	       "require DMA through the update of a device not preserved");
	expect(luo_session_preserve_fd(session_fd, dev_fd, TOKEN), 0,
	       "the bound device file, with the token refused calls named");
	dma = (struct vfio_device_feature_liveupdate_dma){ .flags = 1 << 2 };
	expect(liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_SET, &dma), -EINVAL,
	       "set an unknown LIVEUPDATE_DMA flag");
	dma = (struct vfio_device_feature_liveupdate_dma){
		.flags = VFIO_LIVEUPDATE_DMA_REQUIRED, .reason = 1 };
	expect(liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_SET, &dma), -EINVAL,
	       "set LIVEUPDATE_DMA with a reason");
	if (liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_GET, &dma) == 0 &&
	    dma.reason == VFIO_LIVEUPDATE_DMA_UNSUPPORTED) {
		/* A kernel without CONFIG_INTEL_IOMMU_LIVEUPDATE (the Kconfig matrix). */
		expect(require_dma(dev_fd, 1), -EOPNOTSUPP,
		       "require DMA through the update, no IOMMU able to hand it over");
		ksft_test_result(liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_GET, &dma) == 0 &&
				 dma.flags == 0,
				 "GET: its DMA would stop, not required (%#x, %u)\n",
				 dma.flags, dma.reason);
	} else {
		expect(require_dma(dev_fd, 1), 0, "require DMA through the update, once preserved");
		ksft_test_result(liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_GET, &dma) == 0 &&
				 dma.flags == VFIO_LIVEUPDATE_DMA_REQUIRED &&
				 dma.reason == VFIO_LIVEUPDATE_DMA_NOTHING_MAPPED,
				 "GET: required; its DMA would stop, as its IOAS maps nothing (%#x, %u)\n",
				 dma.flags, dma.reason);
	}
	expect(luo_session_preserve_fd(session_fd, dev_fd, OTHER_TOKEN), -EBUSY,
	       "the same file again in the same session");
	expect(luo_session_preserve_fd(other_fd, dev_fd, OTHER_TOKEN), -EBUSY,
	       "the same file in another session");
	expect(luo_session_preserve_fd(session_fd, pipe_fds[0], TOKEN), -EEXIST,
	       "another file under the token in use");
	expect(luo_session_retrieve_fd(session_fd, TOKEN), -EINVAL,
	       "retrieve from an outgoing session");
	expect(luo_session_finish(session_fd), -EINVAL, "finish an outgoing session");

	/* Closing a session unpreserves its files, in LUO and in the PCI core. */
	close(session_fd);
	session_fd = luo_create_session(luo_fd, SESSION);
	expect(luo_session_preserve_fd(session_fd, dev_fd, TOKEN), 0,
	       "preserve it again after its session was closed");
	ksft_test_result(liveupdate_dma(dev_fd, VFIO_DEVICE_FEATURE_GET, &dma) == 0 &&
			 !(dma.flags & VFIO_LIVEUPDATE_DMA_REQUIRED),
			 "the requirement ended with the preservation (%#x)\n", dma.flags);
	close(session_fd);

	expect(open_unprivileged("/dev/liveupdate"), -EACCES,
	       "an unprivileged process opening /dev/liveupdate");
	expect(open_unprivileged(cdev), -EACCES, "an unprivileged process opening the cdev");
	dma_src = 0;
	ksft_test_result(bar0_rw64(dev_fd, 0, &dma_src, EDU_DMA_SRC) == 0 &&
			 dma_src == TEST_DMA_SRC,
			 "the device file still works, its device as it was\n");

	close(vf_fd);
	pci_sysfs_write(SRIOV_PF, "sriov_numvfs", "0");
	close(pf_fd);
	close(dev_fd);
	close(other_fd);
	close(luo_fd);
	ksft_finished();
}
