#ifndef STATS_H
#define STATS_H

#include <sys/types.h>

#include <stdatomic.h>
#include <stdint.h>

struct config;

/* Why a session was refused, as the metrics count it. */
enum stats_refusal {
	REFUSE_VERIFICATION, REFUSE_ALLOW_PEERS, REFUSE_PSK, REFUSE_NOT_TLS,
	REFUSE_LIMITS, REFUSE_TIMEOUT, REFUSE_CONNECT, REFUSE_HANDSHAKE,
	REFUSE_ALLOW_FROM, REFUSE_PROXY, REFUSE_OTHER, REFUSE_COUNT
};

/* A latency histogram: buckets up to STATS_BUCKETS bounds, then +Inf. */
#define STATS_BUCKETS	12
struct stats_hist {
	atomic_uint_fast64_t	 bucket[STATS_BUCKETS + 1];
	atomic_uint_fast64_t	 sum_us;
};

/*
 * A route's counters, kept with its count of live sessions (struct
 * route_live), so that they go on across reloads for routes of the same
 * name. Atomic: every thread adds, nobody waits; stats_render() sums.
 */
struct stats_route {
	atomic_uint_fast64_t	 sessions;	/* accepted into a session */
	atomic_uint_fast64_t	 bytes_up, bytes_down;
	atomic_uint_fast64_t	 handshakes, handshakes_failed, resumed;
	atomic_uint_fast64_t	 refused[REFUSE_COUNT];
	atomic_uint_fast64_t	 probes;	/* ended before sending a byte */
	struct stats_hist	 handshake, connect;
};

/* Count a duration of us microseconds in h. */
void stats_observe(struct stats_hist *h, int64_t us);

/* The class of a refusal, from its reason as logged. */
enum stats_refusal stats_classify(const char *reason);

/* The configuration has been (re)loaded: now, ok or not. */
void stats_loaded(int ok);

/*
 * The configuration whose routes the metrics show, set by the accept
 * loop at start and at each reload, before the old one is freed.
 */
void stats_set_config(const struct config *c);

/*
 * Serve fd on a thread of its own: every connection gets one snapshot
 * in the Prometheus text format (version 0.0.4) and is closed; one that
 * sends an HTTP GET or HEAD (curl, Prometheus) gets it as an HTTP/1.0
 * answer, another HTTP method a 405.
 */
int stats_serve(int fd);

/* tlsgate --stats: read the snapshot at path and print it as a table. */
int stats_print(const char *path);

#endif
