// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-stage test: what a kept device's DMA can reach while the host is
 * between two kernels.
 *
 * The device is an igb (8086:10c9) receiving frames that the test runner
 * keeps sending from outside the machine, across the kexec
 * (tools/vmtest/src/traffic.rs): each frame is written by DMA, with no CPU
 * involved, to the buffer its receive descriptor names. Stage 1 sets the
 * device up as a hostile guest would: every descriptor names the physical
 * address of a page of host memory, which the device's IOAS does not map.
 * While the IOMMU translates, those writes fault and the page stays as it
 * is; the descriptor ring itself is mapped at an IOVA equal to its physical
 * address, so that the device finds it whether or not its DMA is
 * translated. Both pages are in memfds preserved across the kexec, so the
 * next kernel neither reuses them nor moves them. The IOAS also maps guest
 * memory that is not kept (anonymous memory), so the device's translation
 * cannot be handed over to the next kernel (vfio_pci_liveupdate_dma_kept
 * tests the device whose translation is): its DMA must stop at the kexec.
 *
 * The kexec switches IOMMU translation off for it, and the next kernel
 * boots with it off until its IOMMU driver starts. A device still allowed
 * to master the bus writes the frames it receives in that window straight
 * into the page. Stage 2 checks that it did not: the page is byte for byte
 * as stage 1 filled it. It then checks that the device is idle until the
 * VMM has an IOMMU domain again: bus mastering is off, no descriptor is
 * written back, binding the retrieved file changes nothing; and that
 * attaching an IOAS in which the VMM mapped the ring and fresh buffers gives
 * bus mastering back, after which frames land whole in those buffers and
 * still nowhere else, and that the device was not reset (RLPML kept its
 * value).
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-safety.toml for the
 * machine.
 */

#include "rx.h"

#define DEVICE_PCI		"0000:01:00.0"
#define TEST_RLPML		0x1234
#define DATA_IOVA		0x100000000ULL	/* above the machine's RAM */
#define DATA_BUFS		32
/* The guest's other memory, not kept: the device's DMA cannot go on. */
#define GUEST_IOVA		0x200000000ULL

#define SESSION			"vfio-pci-lu-dma"
#define DEVICE_TOKEN		0x7f50
#define RING_TOKEN		0x7f51
#define TARGET_TOKEN		0x7f52
#define PLAN_TOKEN		0x7f53
#define STATE_SESSION		"vfio_pci_lu_dma_state"
#define STATE_TOKEN		996

/* What stage 1 tells stage 2, in a preserved page. */
struct plan {
	__u64 ring_phys;
	__u64 target_phys;
};

static unsigned int ring_descs(void)
{
	return page_size / sizeof(struct igb_rx_desc);
}

/* A page of a new memfd, filled with @fill; its fd in @mfd. */
static void *new_page(int *mfd, int fill)
{
	return new_memfd(mfd, page_size, fill);
}

static int some_done(void *ring)
{
	return done_count(ring, ring_descs()) > 0;
}

/* Descriptors done, and how many were at some earlier point. */
struct progress {
	struct igb_rx_desc *ring;
	unsigned int before;
};

static int more_done(void *arg)
{
	struct progress *p = arg;

	return done_count(p->ring, ring_descs()) > p->before;
}

/* Whether the device behind the fd at @fd used up its descriptors. */
static int ring_empty(void *fd)
{
	__u32 head = 0, tail = 1;

	return !bar0_rw32(*(int *)fd, 0, &head, IGB_RDH0) &&
	       !bar0_rw32(*(int *)fd, 0, &tail, IGB_RDT0) && head == tail;
}

static int desc_done(void *desc)
{
	return __atomic_load_n(&((struct igb_rx_desc *)desc)->status, __ATOMIC_ACQUIRE) &
	       IGB_RXD_DD;
}

/*
 * Frames the runner sent before reception started wait in QEMU's socket and
 * rush in at once; the ring is given back until they are gone, so that the
 * device has a ring's worth of free descriptors for the frames to come, at
 * the runner's pace, during the update. 1 when done.
 */
static int drain_backlog(int fd, struct igb_rx_desc *ring, const struct plan *plan)
{
	struct timespec settle = { .tv_nsec = 300 * 1000 * 1000 };
	int round;

	for (round = 0; round < 10; round++) {
		if (igb_rx_refill(fd, ring, ring_descs(), plan->target_phys, 1))
			return 0;
		nanosleep(&settle, NULL);
		if (done_count(ring, ring_descs()) < ring_descs() / 4)
			return igb_rx_refill(fd, ring, ring_descs(), plan->target_phys, 1) == 0;
	}
	return 0;
}

static void run_stage_1(int luo_fd)
{
	int session_fd, dev_fd, ring_fd, target_fd, plan_fd;
	struct igb_rx_desc *ring;
	unsigned char *target;
	struct plan *plan;
	__u32 rlpml = TEST_RLPML;
	unsigned int i;
	void *guest;

	start_stage_1(luo_fd, STATE_SESSION, STATE_TOKEN, 9);

	dev_fd = open_bound(DEVICE_PCI);
	ksft_test_result(dev_fd >= 0 && enable_master(dev_fd, DEVICE_PCI) == 0 &&
			 bar0_rw32(dev_fd, 1, &rlpml, IGB_RLPML) == 0,
			 "bind %s, bus mastering on, write RLPML\n", DEVICE_PCI);
	if (dev_fd < 0)
		fail_exit("no device to go on with");

	ring = new_page(&ring_fd, 0);
	target = new_page(&target_fd, FILL);
	plan = new_page(&plan_fd, 0);
	if (!ring || !target || !plan)
		fail_exit("memfd pages");
	plan->ring_phys = phys_of(ring);
	plan->target_phys = phys_of(target);
	ksft_test_result(plan->ring_phys && plan->target_phys &&
			 ioas_map(ioas_id, ring, page_size, plan->ring_phys) == 0 &&
			 phys_of(ring) == plan->ring_phys,
			 "map the ring at IOVA = its physical address %#llx; nothing at %#llx\n",
			 (unsigned long long)plan->ring_phys,
			 (unsigned long long)plan->target_phys);

	guest = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ksft_test_result(guest != MAP_FAILED &&
			 ioas_map(ioas_id, guest, page_size, GUEST_IOVA) == 0,
			 "map guest memory that is not kept (anonymous) at %#llx\n", GUEST_IOVA);

	for (i = 0; i < ring_descs(); i++)
		ring[i] = (struct igb_rx_desc){ .buffer = plan->target_phys };
	ksft_test_result(igb_link_up(dev_fd) == 0 &&
			 igb_rx_start(dev_fd, plan->ring_phys, ring_descs()) == 0,
			 "link up; every receive buffer at %#llx, outside the IOAS\n",
			 (unsigned long long)plan->target_phys);
	ksft_test_result(wait_for(some_done, ring) && drain_backlog(dev_fd, ring, plan),
			 "the device takes frames in; the ring is full of free descriptors\n");
	ksft_test_result(target_untouched(target, plan->target_phys),
			 "while the IOMMU translates, none of its writes reach the page\n");
	ksft_test_result(kmsg_has("DMAR: [DMA Write") == 1,
			 "the IOMMU reported the writes it blocked\n");

	session_fd = luo_create_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("create session %s", SESSION);
	ksft_test_result(luo_session_preserve_fd(session_fd, ring_fd, RING_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, target_fd, TARGET_TOKEN) == 0 &&
			 luo_session_preserve_fd(session_fd, plan_fd, PLAN_TOKEN) == 0 &&
			 phys_of(target) == plan->target_phys,
			 "preserve the ring and the page, which stay where they are\n");
	ksft_test_result(luo_session_preserve_fd(session_fd, dev_fd, DEVICE_TOKEN) == 0,
			 "preserve the device file, still receiving\n");

	/* The device keeps receiving until the kexec, and through it. */
	close(luo_fd);
	hold_sessions_for_kexec();
}

/* Maps the page of the memfd preserved as @token; NULL on failure. */
static void *retrieve_page(int session_fd, __u64 token)
{
	int mfd;

	return retrieve_memfd(session_fd, token, page_size, &mfd);
}

static void run_stage_2(int luo_fd, int state_session_fd)
{
	struct timespec quiet = { .tv_nsec = 300 * 1000 * 1000 };
	unsigned int done, head = 0;
	struct igb_rx_desc *ring;
	unsigned char *target, *data;
	struct plan *plan;
	int session_fd, dev_fd;
	__u32 ioas;

	start_stage_2(state_session_fd, STATE_TOKEN, 11);
	session_fd = luo_retrieve_session(luo_fd, SESSION);
	if (session_fd < 0)
		fail_exit("retrieve session %s", SESSION);
	ring = retrieve_page(session_fd, RING_TOKEN);
	target = retrieve_page(session_fd, TARGET_TOKEN);
	plan = retrieve_page(session_fd, PLAN_TOKEN);
	if (!ring || !target || !plan)
		fail_exit("retrieve the preserved pages");

	ksft_test_result(phys_of(ring) == plan->ring_phys &&
			 phys_of(target) == plan->target_phys,
			 "the ring and the page are at the physical addresses of stage 1\n");
	ksft_test_result(target_untouched(target, plan->target_phys),
			 "nothing the device received during the update reached %#llx\n",
			 (unsigned long long)plan->target_phys);
	ksft_test_result(bus_master(DEVICE_PCI) == 0,
			 "bus mastering off while the device is incoming\n");
	done = done_count(ring, ring_descs());
	nanosleep(&quiet, NULL);
	ksft_test_result(done_count(ring, ring_descs()) == done,
			 "no DMA while incoming: %u descriptors done, none since\n", done);

	dev_fd = luo_session_retrieve_fd(session_fd, DEVICE_TOKEN);
	ksft_test_result(dev_fd >= 0 && bind_iommufd(dev_fd, NULL) == 0 &&
			 bus_master(DEVICE_PCI) == 0,
			 "retrieve and bind the device: bus mastering still off\n");
	if (dev_fd < 0)
		fail_exit("no device to go on with");

	/*
	 * The VMM maps the guest's memory again, then attaches: the device
	 * resumes with the descriptors the guest left, whose buffers are still
	 * outside the mappings. Then the guest gives it new buffers.
	 */
	data = mmap(NULL, DATA_BUFS * IGB_RX_BUF, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ioas = alloc_ioas();
	ksft_test_result(data != MAP_FAILED && ioas &&
			 ioas_map(ioas, ring, page_size, plan->ring_phys) == 0 &&
			 ioas_map(ioas, data, DATA_BUFS * IGB_RX_BUF, DATA_IOVA) == 0,
			 "map the ring again, and fresh buffers at %#llx\n", DATA_IOVA);
	ksft_test_result(attach_ioas(dev_fd, ioas) == 0 && bus_master(DEVICE_PCI) == 1,
			 "attaching the IOAS gives bus mastering back\n");
	ksft_test_result(wait_for(more_done, &(struct progress){ ring, done }) &&
			 wait_for(ring_empty, &dev_fd) &&
			 target_untouched(target, plan->target_phys),
			 "the device resumes; its writes outside the mappings fault again\n");
	if (data == MAP_FAILED || bar0_rw32(dev_fd, 0, &head, IGB_RDH0) ||
	    igb_rx_refill(dev_fd, ring, ring_descs(), DATA_IOVA, DATA_BUFS))
		fail_exit("hand the device descriptors pointing at the buffers");
	ksft_test_result(wait_for(desc_done, &ring[head]) &&
			 !memcmp(data, "\xff\xff\xff\xff\xff\xff", 6) &&
			 !memcmp(data + ETH_HLEN, FRAME_MAGIC, strlen(FRAME_MAGIC)) &&
			 target_untouched(target, plan->target_phys),
			 "frames land whole in the buffers mapped after the update, nowhere else\n");
	ksft_test_result(igb_rlpml(dev_fd) == TEST_RLPML,
			 "RLPML kept its value: the device was not reset (%#x)\n",
			 igb_rlpml(dev_fd));
	ksft_test_result(luo_session_finish(session_fd) == 0, "finish the session\n");

	close(dev_fd);
	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish state session");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	page_size = sysconf(_SC_PAGESIZE);
	return luo_test(argc, argv, STATE_SESSION, run_stage_1, run_stage_2);
}
