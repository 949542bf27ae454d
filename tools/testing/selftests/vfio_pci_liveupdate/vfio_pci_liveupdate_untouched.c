// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-stage test: nothing but its Live Update session touches a kept device
 * in the next kernel.
 *
 * Stage 1 sets up an igb as a VMM would (bus mastering, MSI-X through
 * VFIO_DEVICE_SET_IRQS, a register written) and keeps the whole config space
 * of the device and of the root port above it, read through sysfs, in a
 * preserved memfd; it preserves the device, and alone in a session of its
 * own the first function of a two-function edu, whose functions share an
 * IOMMU group.
 *
 * Stage 2 boots with other PCI policies than stage 1 (bridge windows
 * reassigned, performance MPS/MRRS, power-saving ASPM: see the scenario), and
 * before the device is retrieved checks that:
 * - its config space and its root port's are byte for byte those of stage 1,
 *   but for the bits the kernel changes on purpose (bus mastering, cleared
 *   at the kexec; INTx disabled and MSI-X masked at the freeze), checked to
 *   have changed so, and the bits the PCI specification makes the hardware's
 *   (status and error bits, link and slot status, AER logs), named below;
 * - a native driver (pci-pf-stub) cannot bind to it;
 * - the other edu function cannot be opened, through its cdev or its group,
 *   nor the group put in a container.
 * Then it retrieves the device: its register kept the value of stage 1, so
 * none of that reached it, nor does a bus reset of its root port's bus
 * (reset_subordinate) while it is incoming; and MSI-X works again once the
 * VMM sets it up. Finishing the sessions lets the edu's sibling open, a bus
 * reset through, which resets the igb, and the native driver bind: the
 * refusals were the Live Update's. The device's register, not the return
 * of reset_subordinate, tells whether a reset happened: QEMU's root port
 * reports its link active too late for the kernel, which then fails the
 * attribute's write even for the reset it did.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-safety.toml for the
 * machine.
 */

#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <libliveupdate.h>
#include "igb.h"

#define DEVICE_PCI		"0000:02:00.0"
#define PORT_PCI		"0000:00:02.0"
#define GROUP_PCI		"0000:03:00.0"
#define SIBLING_PCI		"0000:03:00.1"
#define IGB_IDS			"8086 10c9"
#define NATIVE_DRIVER		"pci-pf-stub"
#define TEST_RLPML		0x0c0c
#define CONFIG_SIZE		4096

#define SESSION			"vfio-pci-lu-untouched"
#define GROUP_SESSION		"vfio-pci-lu-group"
#define DEVICE_TOKEN		0x7f70
#define SNAPSHOT_TOKEN		0x7f71
#define GROUP_TOKEN		0x7f72
#define STATE_SESSION		"vfio_pci_lu_untouched_state"
#define STATE_TOKEN		994

/* Config space offsets and bits (include/uapi/linux/pci_regs.h). */
#define PCI_STATUS_CAP_LIST	0x10
#define PCI_SEC_STATUS		0x1e
#define PCI_CAPABILITY_LIST	0x34
#define PCI_CAP_ID_PM		0x01
#define PCI_CAP_ID_MSI		0x05
#define PCI_CAP_ID_EXP		0x10
#define PCI_CAP_ID_MSIX		0x11
#define PCI_MSIX_FLAGS		2
#define PCI_MSIX_FLAGS_MASKALL	0x4000
#define PCI_EXT_CAP_ID_ERR	0x01

/* What stage 1 read, for stage 2 to compare with. */
struct snapshot {
	unsigned char device[CONFIG_SIZE];
	unsigned char port[CONFIG_SIZE];
};

/* Reads the whole config space of @pci through sysfs; 0 or -1. */
static int read_config(const char *pci, unsigned char *cfg)
{
	memset(cfg, 0, CONFIG_SIZE);
	return pci_config_read(pci, cfg, CONFIG_SIZE, 0) >= 256 ? 0 : -1;
}

/* The offset of standard capability @id in @cfg, or 0. */
static int find_cap(const unsigned char *cfg, int id)
{
	int at = cfg[PCI_CAPABILITY_LIST] & ~3, hops;

	if (!(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		return 0;
	for (hops = 0; at >= 0x40 && hops < 48; hops++) {
		if (cfg[at] == id)
			return at;
		at = cfg[at + 1] & ~3;
	}
	return 0;
}

/* The offset of extended capability @id in @cfg, or 0. */
static int find_ext_cap(const unsigned char *cfg, int id)
{
	int at = 0x100, hops;
	__u32 header;

	for (hops = 0; at >= 0x100 && at < CONFIG_SIZE - 4 && hops < 480; hops++) {
		memcpy(&header, cfg + at, sizeof(header));
		if (!header)
			return 0;
		if ((header & 0xffff) == id)
			return at;
		at = header >> 20 & ~3;
	}
	return 0;
}

static void except16(unsigned char *mask, int at, __u16 bits)
{
	mask[at] |= bits;
	mask[at + 1] |= bits >> 8;
}

static void except32(unsigned char *mask, int at, __u32 bits)
{
	except16(mask, at, bits);
	except16(mask, at + 2, bits >> 16);
}

/*
 * The bits of the config space @cfg the hardware changes by itself, which
 * may differ from one read to the next (PCI Express Base Specification):
 * the Status and Secondary Status error bits and Interrupt Status; in the
 * PCI Express capability, Device Status, Link Status' training, link active
 * and bandwidth notification bits, Slot Status, Root Status, Link Status 2;
 * PME_Status; MSI Pending Bits; in AER, the error status and source
 * registers, the First Error Pointer and the Header Log.
 */
static void volatile_bits(const unsigned char *cfg, unsigned char *mask)
{
	int exp = find_cap(cfg, PCI_CAP_ID_EXP), pm = find_cap(cfg, PCI_CAP_ID_PM);
	int msi = find_cap(cfg, PCI_CAP_ID_MSI), aer = find_ext_cap(cfg, PCI_EXT_CAP_ID_ERR);

	memset(mask, 0, CONFIG_SIZE);
	except16(mask, PCI_STATUS, 0xf908);
	if ((cfg[0x0e] & 0x7f) == 1)		/* type 1 header: a bridge */
		except16(mask, PCI_SEC_STATUS, 0xf900);
	if (exp) {
		except16(mask, exp + 0x0a, 0xffff);	/* Device Status */
		except16(mask, exp + 0x12, 0xe800);	/* Link Status */
		except16(mask, exp + 0x1a, 0xffff);	/* Slot Status */
		except32(mask, exp + 0x20, 0xffffffff);	/* Root Status */
		except16(mask, exp + 0x32, 0xffff);	/* Link Status 2 */
	}
	if (pm)
		except16(mask, pm + 4, 0x8000);		/* PME_Status */
	if (msi)
		except32(mask, msi + (cfg[msi + 2] & 0x80 ? 0x14 : 0x10), 0xffffffff);
	if (aer) {
		except32(mask, aer + 0x04, 0xffffffff);	/* Uncorrectable Error Status */
		except32(mask, aer + 0x10, 0xffffffff);	/* Correctable Error Status */
		except32(mask, aer + 0x18, 0x1f);	/* First Error Pointer */
		except32(mask, aer + 0x1c, 0xffffffff);	/* Header Log */
		except32(mask, aer + 0x20, 0xffffffff);
		except32(mask, aer + 0x24, 0xffffffff);
		except32(mask, aer + 0x28, 0xffffffff);
		except32(mask, aer + 0x30, 0xffffffff);	/* Root Error Status */
		except32(mask, aer + 0x34, 0xffffffff);	/* Error Source ID */
	}
}

/*
 * Whether @now equals @then, the config space of @pci in stage 1, but for
 * its volatile bits and @also; each other difference is reported.
 */
static int same_config(const char *pci, const unsigned char *then,
		       const unsigned char *now, const unsigned char *also)
{
	unsigned char mask[CONFIG_SIZE];
	int at, same = 1;

	volatile_bits(then, mask);
	for (at = 0; at < CONFIG_SIZE; at += 4) {
		__u32 a, b, m;

		memcpy(&a, then + at, 4);
		memcpy(&b, now + at, 4);
		memcpy(&m, mask + at, 4);
		if (also) {
			__u32 more;

			memcpy(&more, also + at, 4);
			m |= more;
		}
		if ((a ^ b) & ~m) {
			ksft_print_msg("%s +%#05x: %08x in stage 1, %08x now\n", pci, at, a, b);
			same = 0;
		}
	}
	return same;
}

/* The driver bound to @pci, or "" when none. */
static const char *driver_of(const char *pci)
{
	static char name[64];

	if (pci_sysfs_link(pci, "driver", name, sizeof(name)))
		name[0] = 0;
	return name;
}

/* Writes @val into /sys/bus/pci/drivers/@driver/@attr; 0 or -errno. */
static int driver_write(const char *driver, const char *attr, const char *val)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", driver, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -errno;
	close(fd);
	return ret;
}

/* Writes 1 into the reset_subordinate attribute of @bridge; 0 or -errno. */
static int reset_bus_below(const char *bridge)
{
	int fd = pci_sysfs_open(bridge, "reset_subordinate", O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

/* What opening @pci gives: 0 when it opened (and was closed), or -errno. */
static int try_open(const char *pci)
{
	const char *cdev = device_cdev(pci);
	int fd = cdev ? open(cdev, O_RDWR) : -1;

	if (fd < 0)
		return cdev ? -errno : -ENODEV;
	close(fd);
	return 0;
}

/* What VFIO_GROUP_GET_DEVICE_FD and VFIO_GROUP_SET_CONTAINER give for @pci. */
static void try_group(const char *pci, int *get_fd, int *set_container)
{
	int group = open_group(pci), container = open("/dev/vfio/vfio", O_RDWR), fd;

	*get_fd = *set_container = -ENODEV;
	if (group < 0 || container < 0)
		goto out;
	fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, pci);
	*get_fd = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	*set_container = ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ? -errno : 0;
	if (!*set_container)
		ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
out:
	if (group >= 0)
		close(group);
	if (container >= 0)
		close(container);
}

static void run_stage_1(int luo_fd)
{
	int session_fd, group_session_fd, dev_fd, group_fd, snap_fd, efd;
	__u32 rlpml = TEST_RLPML;
	struct snapshot *snap;

	start_stage_1(luo_fd, STATE_SESSION, STATE_TOKEN, 5);
	efd = eventfd(0, EFD_NONBLOCK);
	snap_fd = memfd_create("vfio-pci-lu-config", 0);
	if (efd < 0 || snap_fd < 0 || ftruncate(snap_fd, sizeof(*snap)))
		fail_exit("eventfd and memfd");
	snap = mmap(NULL, sizeof(*snap), PROT_READ | PROT_WRITE, MAP_SHARED, snap_fd, 0);
	if (snap == MAP_FAILED)
		fail_exit("map the memfd");

	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && enable_master(dev_fd, DEVICE_PCI) == 0 &&
			 bar0_rw32(dev_fd, 1, &rlpml, IGB_RLPML) == 0,
			 "bind %s, bus mastering on, RLPML written\n", DEVICE_PCI);
	ksft_test_result(set_irqs(dev_fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER,
				  efd) == 0 && igb_msix_arrives(dev_fd, efd),
			 "its MSI-X reaches an eventfd\n");
	ksft_test_result(read_config(DEVICE_PCI, snap->device) == 0 &&
			 read_config(PORT_PCI, snap->port) == 0,
			 "read the config space of %s and of %s\n", DEVICE_PCI, PORT_PCI);

	session_fd = luo_create_session(luo_fd, SESSION);
	ksft_test_result(session_fd >= 0 &&
			 luo_session_preserve_fd(session_fd, snap_fd, SNAPSHOT_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN) == 0,
			 "preserve the device file, and the config spaces read\n");
	group_fd = open_bound(GROUP_PCI);
	group_session_fd = luo_create_session(luo_fd, GROUP_SESSION);
	ksft_test_result(group_fd >= 0 && group_session_fd >= 0 &&
			 luo_session_preserve_fd(group_session_fd, group_fd, GROUP_TOKEN) == 0,
			 "preserve %s alone in a session\n", GROUP_PCI);
	close(luo_fd);
	hold_sessions_for_kexec();
}

/* Retrieves and binds the device preserved as @token in @session; fd or -1. */
static int retrieve_bound(int session_fd, __u64 token)
{
	int fd = luo_session_retrieve_fd(session_fd, token);

	if (fd >= 0 && bind_device(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	unsigned char now[CONFIG_SIZE], port_now[CONFIG_SIZE], by_design[CONFIG_SIZE] = {};
	int session_fd, group_session_fd, dev_fd, group_fd, snap_fd, efd, msix;
	int get_fd, set_container, same_group, ret;
	char group[32], sibling_group[32];
	struct snapshot *snap;
	__u16 msix_flags;

	start_stage_2(state_session_fd, STATE_TOKEN, 16);
	efd = eventfd(0, EFD_NONBLOCK);
	session_fd = luo_retrieve_session(luo_fd, SESSION);
	group_session_fd = luo_retrieve_session(luo_fd, GROUP_SESSION);
	snap_fd = session_fd < 0 ? -1 : luo_session_retrieve_fd(session_fd, SNAPSHOT_TOKEN);
	snap = snap_fd < 0 ? MAP_FAILED :
	       mmap(NULL, sizeof(*snap), PROT_READ, MAP_SHARED, snap_fd, 0);
	if (efd < 0 || group_session_fd < 0 || snap == MAP_FAILED)
		fail_exit("retrieve the sessions and the config spaces of stage 1");

	/* The config space, read before anything but enumeration touched it. */
	if (read_config(DEVICE_PCI, now) || read_config(PORT_PCI, port_now))
		fail_exit("read the config spaces");
	msix = find_cap(snap->device, PCI_CAP_ID_MSIX);
	memcpy(&msix_flags, now + msix + PCI_MSIX_FLAGS, sizeof(msix_flags));
	ksft_test_result(!(now[PCI_COMMAND] & PCI_COMMAND_MASTER) &&
			 (now[PCI_COMMAND + 1] << 8 & PCI_COMMAND_INTX_DISABLE) &&
			 msix && (msix_flags & PCI_MSIX_FLAGS_MASKALL),
			 "bus mastering off, INTx disabled, MSI-X masked: as the kexec left it\n");
	except16(by_design, PCI_COMMAND, PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	if (msix)
		except16(by_design, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_MASKALL);
	ksft_test_result(same_config(DEVICE_PCI, snap->device, now, by_design),
			 "the rest of its config space is that of stage 1\n");
	ksft_test_result(same_config(PORT_PCI, snap->port, port_now, NULL),
			 "so is its root port's\n");

	/* A native driver. */
	ksft_test_result(driver_write("vfio-pci", "unbind", DEVICE_PCI) == 0 &&
			 driver_write(NATIVE_DRIVER, "new_id", IGB_IDS) == 0 &&
			 driver_write(NATIVE_DRIVER, "bind", DEVICE_PCI) == -EBUSY &&
			 !strcmp(driver_of(DEVICE_PCI), ""),
			 "%s cannot bind to it (-EBUSY), nor took it when given its ID\n",
			 NATIVE_DRIVER);
	driver_write(NATIVE_DRIVER, "remove_id", IGB_IDS);
	ksft_test_result(driver_write("vfio-pci", "bind", DEVICE_PCI) == 0,
			 "vfio-pci can\n");

	/* The other function of the edu, in the kept function's IOMMU group. */
	try_group(SIBLING_PCI, &get_fd, &set_container);
	same_group = !pci_sysfs_link(GROUP_PCI, "iommu_group", group, sizeof(group)) &&
		     !pci_sysfs_link(SIBLING_PCI, "iommu_group", sibling_group,
				     sizeof(sibling_group)) &&
		     !strcmp(group, sibling_group);
	ksft_test_result(same_group && try_open(SIBLING_PCI) == -EBUSY && get_fd == -EBUSY &&
			 set_container == -EBUSY,
			 "%s, in the group of %s, opens neither way, nor joins a container\n",
			 SIBLING_PCI, GROUP_PCI);

	/* None of it reached the device; nor does a bus reset. */
	dev_fd = retrieve_bound(session_fd, DEVICE_TOKEN);
	ksft_test_result(dev_fd >= 0 && igb_rlpml(dev_fd) == TEST_RLPML,
			 "retrieve and bind it: RLPML kept its value (%#x)\n",
			 dev_fd >= 0 ? igb_rlpml(dev_fd) : 0);
	ret = reset_bus_below(PORT_PCI);
	ksft_test_result(dev_fd >= 0 && igb_rlpml(dev_fd) == TEST_RLPML,
			 "a bus reset through %s while it is incoming is refused (%d): RLPML kept\n",
			 PORT_PCI, ret);
	ksft_test_result(read_config(DEVICE_PCI, now) == 0 &&
			 same_config(DEVICE_PCI, snap->device, now, by_design),
			 "its config space is still that of stage 1\n");
	ksft_test_result(dev_fd >= 0 &&
			 set_irqs(dev_fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER,
				  efd) == 0 && igb_msix_arrives(dev_fd, efd),
			 "its MSI-X reaches an eventfd once set up again\n");

	/* Once the sessions are finished, each refusal is lifted. */
	group_fd = retrieve_bound(group_session_fd, GROUP_TOKEN);
	ksft_test_result(group_fd >= 0 && luo_session_finish(group_session_fd) == 0,
			 "retrieve %s and finish its session\n", GROUP_PCI);
	ksft_test_result(try_open(SIBLING_PCI) == 0, "then %s opens\n", SIBLING_PCI);
	ksft_test_result(luo_session_finish(session_fd) == 0,
			 "finish the session of %s\n", DEVICE_PCI);
	ret = reset_bus_below(PORT_PCI);
	ksft_test_result(igb_rlpml(dev_fd) == IGB_RLPML_RESET,
			 "then a bus reset goes through (%d), and resets it\n", ret);
	/* Unbinding a driver waits for the device files to be closed. */
	close(dev_fd);
	close(group_fd);
	ksft_test_result(driver_write("vfio-pci", "unbind", DEVICE_PCI) == 0 &&
			 driver_write(NATIVE_DRIVER, "new_id", IGB_IDS) == 0 &&
			 !strcmp(driver_of(DEVICE_PCI), NATIVE_DRIVER),
			 "and %s binds to it\n", NATIVE_DRIVER);
	driver_write(NATIVE_DRIVER, "remove_id", IGB_IDS);
	ksft_test_result(driver_write(NATIVE_DRIVER, "unbind", DEVICE_PCI) == 0 &&
			 driver_write("vfio-pci", "bind", DEVICE_PCI) == 0,
			 "give it back to vfio-pci\n");

	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish state session");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	return luo_test(argc, argv, STATE_SESSION, run_stage_1, run_stage_2);
}
