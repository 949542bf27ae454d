// SPDX-License-Identifier: GPL-2.0-only
/*
 * Corrupted VT-d handovers through real kexecs: the next kernel must never
 * adopt tables it cannot trust, nor turn translation off under a device
 * that masters the bus.
 *
 * An igb (8086:10c9) receives the frames the test runner sends every 20 ms
 * (tools/vmtest/src/traffic.rs) into kept memfds, its VT-d translation
 * handed over at the kexec, as in vfio_pci_liveupdate_dma_kept; every
 * eighth descriptor names the physical address of a kept page that no IOAS
 * maps. Before each of three updates the test arms one corruption of the
 * handover (CONFIG_INTEL_IOMMU_LIVEUPDATE_CORRUPT_TEST): the record's
 * version, a page table entry pointed at memory that is not kept, the root
 * table address. After the kexec it checks that the kernel rejected the
 * translation with its reason, blocked the unit and released the device:
 * bus mastering off, no frame lands any more, the page outside the
 * mappings is untouched (so no write went untranslated), the device file
 * cannot be taken back, and a plain open finds the device reset. Then it
 * sets the device up again for the next corruption.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-dma-corrupt.toml.
 */

#include "rx.h"

#define DEVICE_PCI		"0000:01:00.0"
#define TEST_RLPML		0x1234
#define STAGES			4
#define RING_DESCS		256
#define RING_IOVA		0x100000000ULL
#define DATA_BUFS		32
#define DATA_IOVA		0x200000000ULL
#define HOSTILE_EVERY		8
#define KNOB			"/sys/kernel/debug/intel_iommu_liveupdate/corrupt_handover"

#define SESSION			"vfio-pci-lu-dma-corrupt"
#define DEVICE_TOKEN		0x7f70
#define RING_TOKEN		0x7f71
#define DATA_TOKEN		0x7f72
#define TARGET_TOKEN		0x7f73
#define PLAN_TOKEN		0x7f74
#define STATE_SESSION		"vfio_pci_lu_dma_corrupt_state"
#define STATE_TOKEN		994

#define RING_BYTES		(RING_DESCS * sizeof(struct igb_rx_desc))
#define DATA_BYTES		(DATA_BUFS * IGB_RX_BUF)

/* The corruption armed before the kexec into @stage, and why it is rejected. */
static const struct {
	int kind;
	const char *reason;
} corruption[STAGES + 1] = {
	[2] = { 1, "rejecting the handed-over translation: record: ABI version 2" },
	[3] = { 2, "rejecting the handed-over translation: tables: 01:00.0: IOVA 0x2" },
	[4] = { 3, "rejecting the handed-over translation: root table " },
};

/* What one stage tells the next, in a preserved page. */
struct plan {
	__u64 target_phys;
};

static int dev_fd, ring_fd, data_fd, target_fd, plan_fd;
static struct igb_rx_desc *ring;
static unsigned char *data, *target;
static struct plan *plan;

static int some_frame(void *unused)
{
	return newest_frame(data, DATA_BUFS) >= 0;
}

/* Gives the device every descriptor from its head on: buffers, and every eighth the page. */
static int refill(void)
{
	return igb_rx_refill_aimed(dev_fd, ring, RING_DESCS, DATA_IOVA, DATA_BUFS,
				   plan->target_phys, HOSTILE_EVERY);
}

/* Writes @kind to the corruption knob; 0 or -1. */
static int arm(int kind)
{
	char buf[8];
	int fd = open(KNOB, O_WRONLY), len = snprintf(buf, sizeof(buf), "%d", kind);
	int ret = fd >= 0 && write(fd, buf, len) == len ? 0 : -1;

	if (fd >= 0)
		close(fd);
	return ret;
}

/* Sets the device up receiving into kept memory, keeps it, arms @kind. */
static void set_up_and_keep(int luo_fd, int kind)
{
	__u32 rlpml = TEST_RLPML;
	int session_fd;

	dev_fd = open_bound(DEVICE_PCI);
	ring = new_memfd(&ring_fd, RING_BYTES, 0);
	data = new_memfd(&data_fd, DATA_BYTES, 0);
	target = new_memfd(&target_fd, page_size, FILL);
	plan = new_memfd(&plan_fd, page_size, 0);
	if (dev_fd < 0 || !ring || !data || !target || !plan)
		fail_exit("device and memfds");
	plan->target_phys = phys_of(target);
	ksft_test_result(enable_master(dev_fd, DEVICE_PCI) == 0 &&
			 bar0_rw32(dev_fd, 1, &rlpml, IGB_RLPML) == 0 && plan->target_phys &&
			 ioas_map(ioas_id, ring, RING_BYTES, RING_IOVA) == 0 &&
			 ioas_map(ioas_id, data, DATA_BYTES, DATA_IOVA) == 0 &&
			 igb_link_up(dev_fd) == 0 &&
			 igb_rx_start(dev_fd, RING_IOVA, RING_DESCS) == 0 &&
			 refill() == 0 && wait_for(some_frame, NULL),
			 "bind, map kept memory only, receive frames into it\n");
	session_fd = luo_create_session(luo_fd, SESSION);
	ksft_test_result(session_fd >= 0 && refill() == 0 &&
			 luo_session_preserve_fd(session_fd, ring_fd, RING_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, data_fd, DATA_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, target_fd, TARGET_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, plan_fd, PLAN_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN) == 0,
			 "keep it, still receiving\n");
	ksft_test_result(arm(kind) == 0, "arm corruption %d of the VT-d handover\n", kind);
}

/* After the kexec into @stage: the corruption was caught, and nothing escaped. */
static void check_rejected(int luo_fd, int stage)
{
	struct timespec quiet = { .tv_nsec = 300 * 1000 * 1000 };
	int session_fd = luo_retrieve_session(luo_fd, SESSION);
	long newest;
	int fd, mfd;

	if (session_fd < 0)
		fail_exit("retrieve session %s", SESSION);
	plan = retrieve_memfd(session_fd, PLAN_TOKEN, page_size, &mfd);
	data = retrieve_memfd(session_fd, DATA_TOKEN, DATA_BYTES, &mfd);
	target = retrieve_memfd(session_fd, TARGET_TOKEN, page_size, &mfd);
	if (!plan || !data || !target)
		fail_exit("retrieve the kept memory");
	ksft_test_result(kmsg_has(corruption[stage].reason) == 1,
			 "the translation was rejected: \"%s\"\n", corruption[stage].reason);
	ksft_test_result(bus_master(DEVICE_PCI) == 0,
			 "the device was released: bus mastering off\n");
	newest = newest_frame(data, DATA_BUFS);
	nanosleep(&quiet, NULL);
	ksft_test_result(newest_frame(data, DATA_BUFS) == newest,
			 "no frame lands any more (the newest is %ld)\n", newest);
	ksft_test_result(target_untouched(target, plan->target_phys),
			 "the page outside the mappings is untouched: no write went untranslated\n");
	fd = luo_session_retrieve_fd(session_fd, DEVICE_TOKEN);
	ksft_test_result(fd < 0, "its file cannot be taken back (%d)\n", fd);
	ksft_test_result(luo_session_finish(session_fd) == 0, "finish the session\n");
	close(session_fd);
	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && igb_rlpml(dev_fd) == IGB_RLPML_RESET,
			 "a plain open finds it reset (RLPML %#x)\n",
			 dev_fd >= 0 ? igb_rlpml(dev_fd) : 0);
	close(dev_fd);
}

int main(int argc, char *argv[])
{
	int luo_fd, state_session_fd, stage;

	page_size = sysconf(_SC_PAGESIZE);
	stage = enter_stage(argc, argv, STATE_SESSION, STATE_TOKEN, &luo_fd, &state_session_fd);
	ksft_print_header();
	ksft_set_plan((stage > 1 ? 7 : 0) + (stage < STAGES ? 3 : 0));
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	if (stage > 1) {
		check_rejected(luo_fd, stage);
		if (luo_session_finish(state_session_fd) < 0)
			fail_exit("finish the state session");
		close(state_session_fd);
	}
	if (stage == STAGES) {
		ksft_finished();
		return 0;
	}
	set_up_and_keep(luo_fd, corruption[stage + 1].kind);
	create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, stage + 1);
	close(luo_fd);
	hold_sessions_for_kexec();
	return 0;
}
