// SPDX-License-Identifier: GPL-2.0-only
/*
 * Three-stage test: DMA keeps flowing through two Live Updates in a row,
 * translated all along.
 *
 * Two igbs (8086:10c9), each kept in a session of its own, receive the
 * frames the test runner sends from outside the machine every 20 ms
 * (tools/vmtest/src/traffic.rs), each frame numbered. Each device's IOAS
 * maps only memory that is itself kept: its descriptor ring and its receive
 * buffers are memfds preserved in its session, so the kernel hands the
 * device's VT-d translation over to the next kernel and leaves its bus
 * mastering on (CONFIG_INTEL_IOMMU_LIVEUPDATE). As a hostile guest would,
 * every eighth descriptor names the physical address of a preserved page
 * that no IOAS maps: those frames must fault, in every kernel, and the page
 * stay as stage 1 filled it.
 *
 * After each kexec, before the VMM takes anything back, the test checks
 * that bus mastering is still on, that frames sent during the update landed
 * whole in the kept buffers (their numbers went on past the last one seen
 * before the kexec) and go on landing, that the page outside the mappings is
 * untouched, and that every DMAR fault of the boot is a write to it: none at
 * a mapped address. Finishing the session is refused while the device
 * still DMAs through the handed-over translation, since the finish could
 * free the memory it reaches. Then the VMM retrieves and binds the device,
 * maps the same memory at the same addresses in a new IOAS and attaches it,
 * and the frames go on; the device was not reset. In stage 2 it keeps everything
 * again for a second update; in stage 3 it finishes, and the kernel frees
 * the tables the previous one handed over. Before the first update, the VMM
 * requires the devices' DMA to go on (VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA);
 * two kexecs cancelled after the hand-over was built must each undo it and
 * leave the devices going on as they were, and a kexec while memory that is
 * not kept is mapped must fail rather than stop their DMA.
 *
 * See tools/vmtest/scenarios/vfio-pci-liveupdate-dma-kept.toml for the
 * machine.
 */

#include "kexec.h"
#include "rx.h"

#define TEST_RLPML		0x1234
#define STAGES			3
#define RING_DESCS		2048	/* 40 s of frames */
#define DATA_BUFS		64
#define DATA_IOVA		0x100000000ULL	/* after the ring */
#define ANON_IOVA		0x600000000ULL	/* memory that is not kept, for a while */
#define HOSTILE_EVERY		8

#define DEVICE_TOKEN		0x7f60
#define RING_TOKEN		0x7f61
#define DATA_TOKEN		0x7f62
#define TARGET_TOKEN		0x7f63
#define PLAN_TOKEN		0x7f64
#define STATE_SESSION		"vfio_pci_lu_dma_kept_state"
#define STATE_TOKEN		995
#define REFUSING_SESSION	"vfio_pci_lu_dma_kept_refusing"
#define REFUSING_TOKEN		996

/* What one stage tells the next about a device, in a preserved page. */
struct plan {
	__u64 target_phys;
	__u32 last_seq;		/* the newest frame seen before the kexec */
};

struct kept {
	const char *pci;
	const char *session;
	__u64 iova;		/* where its ring is; its buffers are DATA_IOVA on */
	int session_fd, dev_fd;
	int ring_fd, data_fd, target_fd, plan_fd;
	struct igb_rx_desc *ring;
	unsigned char *data, *target;
	struct plan *plan;
};

static struct kept devices[] = {
	/* One IOAS in stage 1, so at addresses of their own. */
	{ .pci = "0000:01:00.0", .session = "vfio-pci-lu-dma-kept-1", .iova = 0x100000000ULL },
	{ .pci = "0000:02:00.0", .session = "vfio-pci-lu-dma-kept-2", .iova = 0x300000000ULL },
};

#define RING_BYTES		(RING_DESCS * sizeof(struct igb_rx_desc))
#define DATA_BYTES		(DATA_BUFS * IGB_RX_BUF)

/* Whether a frame newer than @k's plan says landed since. */
static int newer_frame(void *arg)
{
	struct kept *k = arg;

	return newest_frame(k->data, DATA_BUFS) > (long)k->plan->last_seq;
}

/* Gives the device every descriptor from its head on: buffers, and every eighth the page. */
static int refill(struct kept *k)
{
	return igb_rx_refill_aimed(k->dev_fd, k->ring, RING_DESCS, k->iova + DATA_IOVA, DATA_BUFS,
				   k->plan->target_phys, HOSTILE_EVERY);
}

/* Maps the ring and the buffers in @ioas at their IOVAs; 0 or -1. */
static int map_kept(const struct kept *k, __u32 ioas)
{
	return ioas_map(ioas, k->ring, RING_BYTES, k->iova) ||
	       ioas_map(ioas, k->data, DATA_BYTES, k->iova + DATA_IOVA) ? -1 : 0;
}

/* Whether every DMAR fault in the kernel log is a write to one of the pages. */
static int faults_only_at_targets(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	int ok = 1, faults = 0;
	char rec[1024];
	ssize_t len;

	if (fd < 0)
		return 0;
	for (;;) {
		unsigned long long addr;
		const char *at;
		unsigned int i;
		int known = 0;

		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;
		if (len <= 0)
			break;
		rec[len] = 0;
		at = strstr(rec, "fault addr ");
		if (!strstr(rec, "DMAR: [DMA") || !at ||
		    sscanf(at, "fault addr %llx", &addr) != 1)
			continue;
		faults++;
		for (i = 0; i < ARRAY_SIZE(devices); i++)
			known |= addr == devices[i].plan->target_phys;
		if (!known) {
			ksft_print_msg("DMAR fault at %#llx, a mapped address\n", addr);
			ok = 0;
		}
	}
	close(fd);
	ksft_print_msg("%d DMAR faults this boot\n", faults);
	return ok;
}

/* Keeps @k's memfds and device in a new session @k->session; 0 or -1. */
static int preserve(int luo_fd, struct kept *k)
{
	k->session_fd = luo_create_session(luo_fd, k->session);
	if (k->session_fd < 0 ||
	    luo_session_preserve_fd(k->session_fd, k->ring_fd, RING_TOKEN) ||
	    luo_session_preserve_fd(k->session_fd, k->data_fd, DATA_TOKEN) ||
	    luo_session_preserve_fd(k->session_fd, k->target_fd, TARGET_TOKEN) ||
	    luo_session_preserve_fd(k->session_fd, k->plan_fd, PLAN_TOKEN) ||
	    luo_session_preserve_fd(k->session_fd, k->dev_fd, DEVICE_TOKEN))
		return -1;
	return 0;
}

/* Just before the kexec: the newest frame seen, for the next stage. */
static void note_last_frames(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(devices); i++)
		devices[i].plan->last_seq = newest_frame(devices[i].data, DATA_BUFS);
}

static void set_up(struct kept *k)
{
	__u32 rlpml = TEST_RLPML;

	k->dev_fd = open_bound(k->pci);
	ksft_test_result(k->dev_fd >= 0 && enable_master(k->dev_fd, k->pci) == 0 &&
			 bar0_rw32(k->dev_fd, 1, &rlpml, IGB_RLPML) == 0,
			 "%s: bind, bus mastering on, write RLPML\n", k->pci);
	if (k->dev_fd < 0)
		fail_exit("no device to go on with");
	k->ring = new_memfd(&k->ring_fd, RING_BYTES, 0);
	k->data = new_memfd(&k->data_fd, DATA_BYTES, 0);
	k->target = new_memfd(&k->target_fd, page_size, FILL);
	k->plan = new_memfd(&k->plan_fd, page_size, 0);
	if (!k->ring || !k->data || !k->target || !k->plan)
		fail_exit("memfds");
	k->plan->target_phys = phys_of(k->target);
	ksft_test_result(k->plan->target_phys && map_kept(k, ioas_id) == 0,
			 "%s: map the ring and the buffers (memfds), not the page at %#llx\n",
			 k->pci, (unsigned long long)k->plan->target_phys);
	ksft_test_result(igb_link_up(k->dev_fd) == 0 &&
			 igb_rx_start(k->dev_fd, k->iova, RING_DESCS) == 0 &&
			 refill(k) == 0 && wait_for(newer_frame, k) &&
			 target_untouched(k->target, k->plan->target_phys),
			 "%s: frames land in the buffers, none in the page\n", k->pci);
}

/* VFIO_DEVICE_FEATURE_LIVEUPDATE_DMA GET on @k: whether it says @flags and @reason. */
static bool dma_feature_says(struct kept *k, __u32 flags, __u32 reason)
{
	struct vfio_device_feature_liveupdate_dma dma = {};

	return liveupdate_dma(k->dev_fd, VFIO_DEVICE_FEATURE_GET, &dma) == 0 &&
	       dma.flags == flags && dma.reason == reason;
}

/*
 * The VMM requires both devices' DMA to go on through the update. Two kexecs
 * cancelled after both translations were handed over: each cancel takes the
 * devices out of the hand-over (or the second freeze would find them there
 * already and refuse), and the devices go on as they were. Then a page of
 * memory that is not kept is mapped: the devices' DMA could no longer go on,
 * and a kexec fails at their freeze rather than stop it; unmapped again, the
 * update may go ahead, with the requirement.
 */
static void refused_and_cancelled_kexecs(int luo_fd)
{
	int session_fd = preserve_refusing_file(luo_fd, REFUSING_SESSION, REFUSING_TOKEN);
	const __u32 both = VFIO_LIVEUPDATE_DMA_CONTINUES | VFIO_LIVEUPDATE_DMA_REQUIRED;
	char handed_over[96], stopped[96];
	unsigned int i;
	int first, second, ret;
	void *anon;

	for (i = 0; i < ARRAY_SIZE(devices); i++) {
		struct kept *k = &devices[i];

		ksft_test_result(dma_feature_says(k, VFIO_LIVEUPDATE_DMA_CONTINUES, 0) &&
				 require_dma(k->dev_fd, 1) == 0 && dma_feature_says(k, both, 0),
				 "%s: its DMA would go on through a kexec; require it\n", k->pci);
	}
	first = start_kexec("/lu/bzImage");
	second = start_kexec("/lu/bzImage");
	ksft_test_result(first == -ECANCELED && second == -ECANCELED,
			 "two kexecs cancelled by a file refusing to freeze (%d, %d)\n",
			 first, second);
	for (i = 0; i < ARRAY_SIZE(devices); i++) {
		struct kept *k = &devices[i];

		snprintf(handed_over, sizeof(handed_over),
			 "%s: DMA stays translated through the kexec", k->pci);
		snprintf(stopped, sizeof(stopped), "%s: DMA stops at the kexec", k->pci);
		k->plan->last_seq = newest_frame(k->data, DATA_BUFS);
		ksft_test_result(kmsg_has(handed_over) == 1 && kmsg_has(stopped) == 0 &&
				 bus_master(k->pci) == 1 && wait_for(newer_frame, k),
				 "%s: handed over at both freezes; after the cancels, bus mastering on and the frames go on\n",
				 k->pci);
	}

	anon = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (anon == MAP_FAILED || ioas_map(ioas_id, anon, page_size, ANON_IOVA))
		fail_exit("map anonymous memory at %#llx", ANON_IOVA);
	ksft_test_result(dma_feature_says(&devices[0], VFIO_LIVEUPDATE_DMA_REQUIRED,
					  VFIO_LIVEUPDATE_DMA_NOT_KEPT),
			 "with anonymous memory mapped, its DMA would stop (not kept)\n");
	ret = start_kexec("/lu/bzImage");
	ksft_test_result(ret == -EINVAL &&
			 kmsg_has("refusing the kexec: its user requires its DMA to go on") == 1,
			 "so the kexec fails at the freeze of the first device (%d)\n", ret);
	for (i = 0; i < ARRAY_SIZE(devices); i++) {
		struct kept *k = &devices[i];

		k->plan->last_seq = newest_frame(k->data, DATA_BUFS);
		ksft_test_result(bus_master(k->pci) == 1 && wait_for(newer_frame, k),
				 "%s: after it, bus mastering on and the frames go on\n", k->pci);
	}
	ksft_test_result(ioas_unmap(ioas_id, ANON_IOVA, page_size) == 0 &&
			 dma_feature_says(&devices[0], both, 0),
			 "unmapped, its DMA would go on again, still required\n");
	munmap(anon, page_size);
	close(session_fd);
}

static void run_stage_1(int luo_fd)
{
	unsigned int i;

	start_stage_1(luo_fd, STATE_SESSION, STATE_TOKEN, 7 * ARRAY_SIZE(devices) + 5);
	for (i = 0; i < ARRAY_SIZE(devices); i++)
		set_up(&devices[i]);
	for (i = 0; i < ARRAY_SIZE(devices); i++) {
		struct kept *k = &devices[i];

		/* Refilled last, so that the ring lasts through the update. */
		ksft_test_result(refill(k) == 0 && preserve(luo_fd, k) == 0,
				 "%s: keep it, still receiving, in %s\n", k->pci, k->session);
	}
	refused_and_cancelled_kexecs(luo_fd);
	ksft_test_result(faults_only_at_targets(),
			 "every DMAR fault is a write to a page outside the mappings\n");
	note_last_frames();
	close(luo_fd);
	hold_sessions_for_kexec();
}

/* After the kexec, before the VMM takes the device back. */
static void check_update(int luo_fd, struct kept *k)
{
	struct timespec up;
	long before, least;

	k->session_fd = luo_retrieve_session(luo_fd, k->session);
	if (k->session_fd < 0)
		fail_exit("retrieve session %s", k->session);
	k->plan = retrieve_memfd(k->session_fd, PLAN_TOKEN, page_size, &k->plan_fd);
	k->ring = retrieve_memfd(k->session_fd, RING_TOKEN, RING_BYTES, &k->ring_fd);
	k->data = retrieve_memfd(k->session_fd, DATA_TOKEN, DATA_BYTES, &k->data_fd);
	k->target = retrieve_memfd(k->session_fd, TARGET_TOKEN, page_size, &k->target_fd);
	if (!k->plan || !k->ring || !k->data || !k->target)
		fail_exit("retrieve the kept memory");
	ksft_test_result(bus_master(k->pci) == 1,
			 "%s: bus mastering on while incoming: its translation went on\n", k->pci);
	/*
	 * Had the DMA stopped at the kexec, the frames sent since this kernel
	 * started (one per 20 ms) would be missing: at least half of them are
	 * asked for.
	 */
	clock_gettime(CLOCK_BOOTTIME, &up);
	least = (up.tv_sec * 1000 + up.tv_nsec / 1000000) / 20 / 2;
	before = newest_frame(k->data, DATA_BUFS);
	ksft_test_result(before - (long)k->plan->last_seq >= least,
			 "%s: frames %u to %ld, sent during the update, landed in kept memory (%ld.%03ld s into this kernel: at least %ld)\n",
			 k->pci, k->plan->last_seq + 1, before, (long)up.tv_sec,
			 up.tv_nsec / 1000000, least);
	k->plan->last_seq = before;
	/*
	 * Finishing the session would free the memory the device still DMAs
	 * into through the handed-over translation, were it allowed: it is
	 * refused, and loses nothing (the frames go on landing).
	 */
	ksft_test_result(luo_session_finish(k->session_fd) == -EBUSY,
			 "%s: finish refused (EBUSY) before the device is retrieved\n", k->pci);
	ksft_test_result(wait_for(newer_frame, k) &&
			 target_untouched(k->target, k->plan->target_phys),
			 "%s: and go on landing before the VMM takes it back; none in the page\n",
			 k->pci);
}

/* The VMM takes the device back: retrieve, bind, the same mappings, attach. */
static void take_back(struct kept *k)
{
	__u32 ioas;

	k->dev_fd = luo_session_retrieve_fd(k->session_fd, DEVICE_TOKEN);
	ksft_test_result(k->dev_fd >= 0 && bind_iommufd(k->dev_fd, NULL) == 0 &&
			 bus_master(k->pci) == 1,
			 "%s: retrieve and bind it: bus mastering still on\n", k->pci);
	if (k->dev_fd < 0)
		fail_exit("no device to go on with");
	ksft_test_result(luo_session_finish(k->session_fd) == -EBUSY,
			 "%s: finish refused (EBUSY) before an IOAS is attached\n", k->pci);
	ioas = alloc_ioas();
	k->plan->last_seq = newest_frame(k->data, DATA_BUFS);
	ksft_test_result(ioas && map_kept(k, ioas) == 0 && attach_ioas(k->dev_fd, ioas) == 0 &&
			 refill(k) == 0 && wait_for(newer_frame, k),
			 "%s: map the same memory, attach the IOAS: frames go on\n", k->pci);
	ksft_test_result(igb_rlpml(k->dev_fd) == TEST_RLPML,
			 "%s: RLPML kept its value: not reset (%#x)\n", k->pci,
			 igb_rlpml(k->dev_fd));
}

static void run_later_stage(int luo_fd, int state_session_fd, int stage)
{
	unsigned int i;

	ksft_set_plan(ARRAY_SIZE(devices) * 9 + 2);
	for (i = 0; i < ARRAY_SIZE(devices); i++)
		check_update(luo_fd, &devices[i]);
	ksft_test_result(kmsg_has("adopted the translation of 2 kept devices") == 1 &&
			 faults_only_at_targets(),
			 "the kernel adopted both devices' translation; every DMAR fault of this boot is a write to a page outside the mappings\n");
	for (i = 0; i < ARRAY_SIZE(devices); i++)
		take_back(&devices[i]);
	for (i = 0; i < ARRAY_SIZE(devices); i++) {
		struct kept *k = &devices[i];

		if (stage < STAGES) {
			int session_fd = k->session_fd;

			ksft_test_result(luo_session_finish(session_fd) == 0 &&
					 !close(session_fd) && preserve(luo_fd, k) == 0,
					 "%s: keep it again for the update into stage %d\n",
					 k->pci, stage + 1);
		} else {
			ksft_test_result(luo_session_finish(k->session_fd) == 0,
					 "%s: finish its session\n", k->pci);
		}
	}
	if (luo_session_finish(state_session_fd) < 0)
		fail_exit("finish the state session");
	close(state_session_fd);
	if (stage < STAGES) {
		create_state_file(luo_fd, STATE_SESSION, STATE_TOKEN, stage + 1);
		ksft_test_result_pass("ready for the kexec into stage %d\n", stage + 1);
		note_last_frames();
		close(luo_fd);
		hold_sessions_for_kexec();
		return;
	}
	ksft_test_result(kmsg_has("table pages the previous kernel handed over") == 1,
			 "the tables the previous kernel handed over are freed\n");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	int luo_fd, state_session_fd, stage;

	page_size = sysconf(_SC_PAGESIZE);
	stage = enter_stage(argc, argv, STATE_SESSION, STATE_TOKEN, &luo_fd, &state_session_fd);
	if (stage == 1) {
		run_stage_1(luo_fd);
		return 0;
	}
	ksft_print_header();
	if (open_iommufd_ioas())
		fail_exit("iommufd and IOAS");
	run_later_stage(luo_fd, state_session_fd, stage);
	return 0;
}
