/*
 * Non-inline wrappers for DPDK's static-inline fast paths and its thread-local rte_errno, which
 * bindgen cannot bind. Each is one call: compiled with -O3 the wrapper is a tail call into the
 * inlined body. Declared in src/lib.rs.
 */
#define _GNU_SOURCE /* fopencookie */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_devargs.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

/* Macros restated as constants in src/lib.rs: the build fails if DPDK changes them. */
_Static_assert(RTE_MBUF_DEFAULT_BUF_SIZE == 2176, "RTE_MBUF_DEFAULT_BUF_SIZE");
_Static_assert(SOCKET_ID_ANY == -1, "SOCKET_ID_ANY");
_Static_assert(LCORE_ID_ANY == UINT32_MAX, "LCORE_ID_ANY");
_Static_assert(RTE_ETH_RX_OFFLOAD_SCATTER == (1ULL << 13), "RTE_ETH_RX_OFFLOAD_SCATTER");
_Static_assert(RTE_ETH_RX_OFFLOAD_TIMESTAMP == (1ULL << 14), "RTE_ETH_RX_OFFLOAD_TIMESTAMP");
_Static_assert(RTE_ETH_TX_OFFLOAD_MULTI_SEGS == (1ULL << 15), "RTE_ETH_TX_OFFLOAD_MULTI_SEGS");

int shim_errno(void) { return rte_errno; }

void shim_errno_clear(void) { rte_errno = 0; }

unsigned int shim_lcore_id(void) { return rte_lcore_id(); }

uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void shim_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }

int shim_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail) { return rte_pktmbuf_chain(head, tail); }

uint16_t shim_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

/*
 * Whether a vdev driver's name starts `name` (what rte_vdev_init needs to find a driver): the vdev
 * bus is the one that parses it. rte_vdev_init alone cannot tell a missing driver (-1, errno
 * untouched) from a driver that rejected its arguments without a word (also -1).
 */
int shim_vdev_driver_known(const char *name)
{
	struct rte_devargs da;
	int known;

	memset(&da, 0, sizeof(da));
	if (rte_devargs_parse(&da, name) != 0)
		return 0;
	known = da.bus != NULL && strcmp(rte_bus_name(da.bus), "vdev") == 0;
	rte_devargs_reset(&da);
	return known;
}

/*
 * DPDK's log, teed: everything still goes to the stream EAL set up, and while a capture is on it
 * is also kept (up to LOG_CAP bytes) so that an error can quote the driver's own reason. The tee
 * is installed once and never removed, so no thread can be left writing to a closed stream.
 */
#define LOG_CAP 4096
static FILE *log_orig;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_capturing;
static char log_buf[LOG_CAP];
static size_t log_len;

static ssize_t log_tee_write(void *cookie, const char *data, size_t n)
{
	(void)cookie;
	fwrite(data, 1, n, log_orig);
	fflush(log_orig);
	pthread_mutex_lock(&log_mu);
	if (log_capturing) {
		size_t room = LOG_CAP - log_len;
		size_t take = n < room ? n : room;
		memcpy(log_buf + log_len, data, take);
		log_len += take;
	}
	pthread_mutex_unlock(&log_mu);
	return (ssize_t)n;
}

/* Installs the tee (after rte_eal_init; once). 0, or -1 if the stream cannot be made. */
int shim_log_tee_install(void)
{
	cookie_io_functions_t io = { .read = NULL, .write = log_tee_write, .seek = NULL, .close = NULL };
	FILE *f;

	log_orig = rte_log_get_stream();
	f = fopencookie(NULL, "w", io);
	if (f == NULL)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	return rte_openlog_stream(f);
}

/* Starts keeping log text (dropping what an earlier capture kept). */
void shim_log_capture_begin(void)
{
	pthread_mutex_lock(&log_mu);
	log_capturing = 1;
	log_len = 0;
	pthread_mutex_unlock(&log_mu);
}

/* Stops keeping log text; copies up to `cap` bytes of it to `out` and returns how many. */
size_t shim_log_capture_end(char *out, size_t cap)
{
	size_t n;

	pthread_mutex_lock(&log_mu);
	log_capturing = 0;
	n = log_len < cap ? log_len : cap;
	memcpy(out, log_buf, n);
	log_len = 0;
	pthread_mutex_unlock(&log_mu);
	return n;
}
