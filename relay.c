/*
 * relay.c: a session's life.
 *
 * The accept loop calls relay_start(), which counts the session against
 * its limits, lists it and lends it to the handshake stage (stage.c) to
 * be opened: TLS handshake, verification and outgoing connection, in the
 * route's order, on the stage's few long-lived threads. The stage hands
 * it back to opened(): a session that failed to open is torn down there
 * and then; an open one gets two threads (idle ones of the pool, or new
 * ones), one copying each direction, and the last of them to end alone
 * tears the session down. Nobody else frees or closes anything of a
 * session.
 *
 * End of stream is passed on as a half-close: a plain EOF becomes
 * close_notify (gnutls_bye(GNUTLS_SHUT_WR), called by the thread that
 * writes to that TLS session) and close_notify becomes shutdown(SHUT_WR).
 * The session ends when both directions have ended. Anything else ends
 * both at once: session_fail() records the first reason and resets both
 * sockets, which wakes the other thread; nothing but the owner ever
 * close(2)s them. An end the gateway forces (an error on either side, a
 * timeout, the end of the shutdown grace, a refused handshake on the
 * other side) always reaches a plaintext peer as a TCP reset, never as a
 * FIN that it could take for a complete transfer; only a TLS end whose
 * own handshake was refused is closed without one, so that the alert
 * telling the peer why arrives.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <netdb.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "log.h"
#include "stage.h"
#include "stats.h"
#include "tls.h"
#include "relay.h"

/*
 * Plaintext per direction: four full TLS records. A read from a plain
 * socket takes up to that much at once, and the records already received
 * on a TLS end are gathered up to that much before the plain socket is
 * written: a quarter of the system calls of a record at a time.
 */
#define BUF_SIZE	(64 * 1024)
#define RECORD_SIZE	16384
#define NOTHING_MORE	(-2)

/*
 * A direction starts with a small buffer in the session's first page and
 * moves to its full one once a read fills the small one. A session that
 * only ever carries small messages (most idle ones) keeps the first page
 * resident, and none of the 160 KiB of its buffers.
 */
#define SMALL_SIZE	1024

/*
 * Thread stacks. The copy threads only relay (the handshakes run on the
 * stage's threads): about 8 KiB of stack touched, and only touched pages
 * cost memory. Their size is address space: glibc keeps the stacks of
 * exited threads for reuse, up to 40 MiB of it, and each keeps its top
 * pages resident; at 512 KiB it keeps 80 of them after a burst (640 KiB
 * resident) where 128 KiB stacks kept 310 (3 MiB). The sanitizers need
 * several times more.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK_SCALE	8
#else
#define STACK_SCALE	1
#endif
#define THREAD_STACK	(512 * 1024 * STACK_SCALE)

/*
 * Threads that finished their work wait for the next, up to this many;
 * the others exit. (They draw no random numbers, so they leave nothing of
 * GnuTLS behind: see stage.c.)
 */
#define IDLE_THREADS	64

/* One side of a session: a socket, and a TLS session on it or not. */
struct end {
	int			 fd;	/* -1 until open */
	gnutls_session_t	 tls;	/* NULL: plaintext */
	const char		*name;	/* "client" or "server" */
	int			 ticket;	/* a resumption ticket to keep */
	int			 alerted;	/* its handshake was refused: closed
					   without a reset, after the alert */
};

/* One direction: read from one end, write to the other. */
struct copy {
	struct session	*s;
	struct end	*from, *to;
	uint64_t	*count;
	unsigned char	*small, *buf;
	unsigned char	*big;
	atomic_uint_fast64_t *relayed;	/* the route's bytes, for stats */
};

/* struct session's failed: why it ends is known, or only second-hand. */
enum { FAILED = 1, FAILED_WEAK };

struct session {
	struct session	*prev, *next;	/* live list, under lock */
	uint64_t	 id;
	struct route	*route;		/* a reference */
	struct end	 cli, srv;
	int64_t		 t0;		/* ms, monotonic */
	atomic_llong	 last_io;	/* ms, monotonic: idle timeout */
	atomic_int	 failed;	/* FAILED_*, after reason, under lock */
	int		 rejected;	/* failed before the relay began */
	int		 listed;	/* on the live list (open) */
	int		 starved;	/* for want of descriptors: the reject
					   is logged at most once a second */
	char		 reason[256];	/* before failed, under lock */
	uint64_t	 up, down;	/* each written by one copy thread */
	unsigned char	 big[2];	/* a direction used its full buffer
					   (each written by its thread) */
	char		 peer[INET6_ADDRSTRLEN + 8];
	struct copy	 dir[2];	/* client to server, and back */
	atomic_int	 running;	/* copy threads: the last tears down */
	struct stage_conn open;		/* lent to the stage until opened() */
	/* The fields above and the start of rbuf share the first page. */
	unsigned char	 small[2][SMALL_SIZE];	/* one per direction */
	struct tls_rbuf	 rbuf;		/* for the one TLS end */
	unsigned char	 buf[2][BUF_SIZE];	/* one per direction */
};


/*
 * Open sessions (fds valid, may be shut), on one of STRIPES lists by
 * their id, each under its own lock: a session takes its stripe's lock
 * to be listed and to be unlisted, and sessions on different CPUs seldom
 * meet on one.
 */
#define STRIPES		16
static struct stripe {
	pthread_mutex_t	 lock;
	struct session	*live;
} __attribute__((aligned(64))) stripes[STRIPES];
static atomic_int	 stopping;	/* relay_shutdown_all() has run */

/* For relay_wait(): signalled when the last session ends. */
static pthread_mutex_t	 wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 idle_cond;
static atomic_uint	 nlive;		/* counted until fully freed */
static unsigned		 max_sessions = 10000;
static atomic_uint_fast64_t next_id = 1;

/*
 * Sessions' memory, kept for the next sessions: those that never wrote
 * past their first page (most short ones) go on this stack, up to
 * SPARE_MAX, so that a new session costs neither a mapping nor the
 * page faults of a fresh one, and an ended one no munmap() (whose TLB
 * shootdown interrupts every CPU that runs a thread of the process).
 * Others are unmapped, and the stack is cut to SPARE_KEEP once the
 * process is quiet (relay_tidy). Any thread pushes; only the accept loop
 * pops (relay_start, relay_tidy), so the stack has no ABA problem.
 */
#define SPARE_MAX	1024
#define SPARE_KEEP	16
static _Atomic(struct session *) spare;	/* linked through next */
static atomic_uint	 nspare;
static size_t		 page_size = 4096;
static pthread_attr_t	 thread_attr;

/* A thread of the pool: runs fn(arg), then waits for the next job. */
struct worker {
	struct worker	*next;		/* on returned, or idle_workers */
	sem_t		 go;		/* posted when fn is set */
	void		*(*fn)(void *);
	void		*arg;
};

/*
 * Idle threads. One that has finished pushes itself on returned, with
 * no lock; a session's two threads are taken from idle_workers under
 * pool_lock, once per session, and idle_workers is refilled with all of
 * returned at once when it runs dry (an exchange, so the lock-free stack
 * has no ABA problem: it is only ever pushed to or emptied whole).
 */
static pthread_mutex_t	 pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct worker	*idle_workers;		/* under pool_lock */
static _Atomic(struct worker *) returned;
static atomic_uint	 nidle, nworkers;	/* idle: on either list */

/*
 * Memory a burst of sessions leaves free goes back to the system once
 * the process has been quiet (no session, every thread of the burst
 * gone) for TIDY_MS: glibc keeps it otherwise. Not sooner, so that a
 * client that connects again and again is not slowed by it, and the
 * exiting threads have given back what they held.
 */
#define TIDY_MS		1000
static atomic_llong	 quiet_since;	/* ms, when nlive fell to 0; or 0 */
static int		 untidy;	/* sessions since the last tidy-up */

/*
 * A descriptor kept in reserve for relay_refuse_waiting. Sessions open
 * their sockets under fd_lock, so that none takes the reserve's number
 * in the moment it is given up: lost, it would come back only when some
 * session ends, and meanwhile connections would queue unanswered (two
 * routes of one gateway chained could even wait on each other until the
 * handshake timeout).
 */
static pthread_mutex_t	 fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int		 reserve_fd = -1;

/*
 * socket(2) for the stage: under fd_lock, so that no session takes the
 * reserve descriptor's number while relay_refuse_waiting() has given it
 * up for a moment.
 */
static int
open_socket(int domain, int type, int protocol)
{
	int fd, err;

	pthread_mutex_lock(&fd_lock);
	fd = socket(domain, type, protocol);
	err = errno;
	pthread_mutex_unlock(&fd_lock);
	errno = err;
	return fd;
}

int
relay_init(void)
{
	pthread_condattr_t ca;
	int i, rc;

	if ((reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	for (i = 0; i < STRIPES; i++)
		if ((rc = pthread_mutex_init(&stripes[i].lock, NULL)) != 0) {
			errno = rc;
			return -1;
		}
	if (sysconf(_SC_PAGESIZE) > 0)
		page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (stage_init(0, open_socket) == -1)
		return -1;
	if ((rc = pthread_condattr_init(&ca)) != 0 ||
	    (rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (rc = pthread_cond_init(&idle_cond, &ca)) != 0 ||
	    (rc = pthread_attr_init(&thread_attr)) != 0 ||
	    (rc = pthread_attr_setstacksize(&thread_attr, THREAD_STACK)) != 0 ||
	    (rc = pthread_attr_setdetachstate(&thread_attr,
	    PTHREAD_CREATE_DETACHED)) != 0) {
		errno = rc;
		return -1;
	}
	(void)pthread_condattr_destroy(&ca);
	return 0;
}

void
relay_set_max_sessions(unsigned n)
{
	max_sessions = n;	/* the accept loop's: it reads it */
}

static struct stripe *
stripe_of(const struct session *s)
{
	return &stripes[s->id % STRIPES];
}

/*
 * Wake the thread blocked on e's socket (or connecting it), never
 * closing the descriptor under it. The peer gets a TCP reset at once:
 * connect(AF_UNSPEC) disconnects the socket, where shutdown() alone would
 * send a FIN that a plaintext peer reads as a clean end before the reset
 * comes. An end that has sent an alert gets the FIN, after the alert.
 */
static void
wake(const struct end *e)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	if (e->fd == -1)
		return;
	/*
	 * The system call itself: ThreadSanitizer's connect() takes it for
	 * the making of a new descriptor, and reports the read() another
	 * thread is blocked in as a race; the kernel defines both.
	 */
	if (!e->alerted)
		(void)syscall(SYS_connect, e->fd, &sa, sizeof(sa));
	(void)shutdown(e->fd, SHUT_RDWR);
}

/*
 * Record why the session ends and stop both directions at once, with a
 * reset. The first reason wins, but a FAILED_WEAK one gives way to the
 * first FAILED. Called with s's stripe locked, which keeps the
 * descriptors open meanwhile.
 */
static void
fail_locked(struct session *s, int how, const char *why)
{
	int was = atomic_load(&s->failed);

	if (was == FAILED || (was == FAILED_WEAK && how == FAILED_WEAK))
		return;
	snprintf(s->reason, sizeof(s->reason), "%s", why);
	atomic_store(&s->failed, how);
	if (was != 0)
		return;		/* both ends are stopped already */
	wake(&s->cli);
	wake(&s->srv);
}

static void
session_fail(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
session_fail(struct session *s, const char *fmt, ...)
{
	char why[sizeof(s->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&stripe_of(s)->lock);
	fail_locked(s, FAILED, why);
	pthread_mutex_unlock(&stripe_of(s)->lock);
}

/*
 * GnuTLS error err on e's TLS session. GNUTLS_E_INVALID_SESSION says
 * only that the other thread has just had a fatal error on the same
 * session: its reason, recorded a moment later, is the one to log.
 */
static void
session_fail_tls(struct session *s, struct end *e, int err)
{
	char why[sizeof(s->reason)];

	snprintf(why, sizeof(why), "%s: %s", e->name, gnutls_strerror(err));
	pthread_mutex_lock(&stripe_of(s)->lock);
	fail_locked(s, err == GNUTLS_E_INVALID_SESSION ? FAILED_WEAK : FAILED,
	    why);
	pthread_mutex_unlock(&stripe_of(s)->lock);
}

/*
 * Refusals for want of resources (descriptors, threads, memory, session
 * slots) come in floods: at most one line a second, with the count of
 * those not logged since.
 */
static void
log_refusal(const struct route *r, uint64_t id, const char *peer,
    const char *why)
{
	static atomic_llong last = 0;
	static atomic_uint dropped = 0;
	int64_t now = mono_ms(), prev = atomic_load(&last);
	char q[300];

	if (now - prev < 1000 || !atomic_compare_exchange_strong(&last, &prev,
	    now)) {
		atomic_fetch_add(&dropped, 1);
		return;
	}
	log_event(LOG_WARN, r->name, id, "reject", "peer=%s reason=%s "
	    "unlogged=%u", peer, log_quote(why, q, sizeof(q)),
	    atomic_exchange(&dropped, 0));
}

static void
unlist(struct session *s)
{
	struct stripe *st = stripe_of(s);

	pthread_mutex_lock(&st->lock);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		st->live = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&st->lock);
}

static void
uncount(struct route *r)
{
	atomic_fetch_sub(&r->live->n, 1);
	if (atomic_fetch_sub(&nlive, 1) == 1) {
		atomic_store(&quiet_since, mono_ms());
		pthread_mutex_lock(&wait_lock);
		pthread_cond_broadcast(&idle_cond);
		pthread_mutex_unlock(&wait_lock);
	}
}

/* Bound a socket's waits to ms milliseconds (0: none), in 64 bits. */
static void
set_timeout(int fd, int opt, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)(ms % 1000) * 1000 };

	(void)setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/*
 * A wait on one direction ended without data: 0 if nothing moved in
 * either direction for idle_timeout (end the session), else how many ms
 * are left to wait; -1 when there is no idle timeout.
 */
static int64_t
idle_left(struct session *s)
{
	int64_t idle = (int64_t)s->route->idle_timeout * 1000;
	int64_t quiet = mono_ms() - atomic_load(&s->last_io);

	if (idle == 0)
		return -1;
	return (quiet >= idle) ? 0 : idle - quiet;
}

/*
 * Read from e: >0 bytes, 0 at a clean end, -1 when the session failed.
 * With more, only what a TLS end has already received: NOTHING_MORE when
 * that is not a whole record (and always on a plain end).
 */
static ssize_t
end_read(struct session *s, struct end *e, unsigned char *buf, size_t len,
    int more)
{
	char eb[128];
	ssize_t n;
	int64_t t0, left;
	int again = 0;

	for (;;) {
		t0 = mono_ms();
		if (more && e->tls == NULL)
			return NOTHING_MORE;
		if (more) {
			if ((n = tls_recv_buffered(e->tls, buf, len)) ==
			    GNUTLS_E_AGAIN)
				return NOTHING_MORE;
			if (e->ticket && n >= 0)
				e->ticket = !tls_keep_ticket(s->route->tls, e->tls);
		} else if (e->tls != NULL) {
			tls_wait(e->tls);
			n = gnutls_record_recv(e->tls, buf, len);
			if (e->ticket && n >= 0)
				e->ticket = !tls_keep_ticket(s->route->tls, e->tls);
		} else if ((n = read(e->fd, buf, len)) == -1)
			n = (errno == EINTR) ? GNUTLS_E_INTERRUPTED :
			    (errno == EAGAIN) ? GNUTLS_E_TIMEDOUT : -1;
		if (n >= 0)
			return atomic_load(&s->failed) ? -1 : n;
		if (n == GNUTLS_E_INTERRUPTED ||
		    n == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue;
		if (atomic_load(&s->failed) == FAILED)
			return -1;	/* woken by session_fail() */
		/*
		 * GNUTLS_E_AGAIN on a TLS end: SO_RCVTIMEO fired, or GnuTLS
		 * handled a post-handshake message (call again), or a record
		 * was cut short by the end of the stream. Quick returns over
		 * and over would be a spin: end the session instead.
		 */
		if (n == GNUTLS_E_AGAIN && e->tls != NULL) {
			if (tls_peer_closed(e->tls))
				n = GNUTLS_E_PREMATURE_TERMINATION;
			else if (mono_ms() - t0 < 100 && ++again > 1000)
				n = GNUTLS_E_INTERNAL_ERROR;
		}
		if (n == GNUTLS_E_TIMEDOUT || n == GNUTLS_E_AGAIN) {
			if ((left = idle_left(s)) == 0)
				break;
			if (left > 0)
				set_timeout(e->fd, SO_RCVTIMEO, left);
			continue;
		}
		if (e->tls == NULL || n == GNUTLS_E_PULL_ERROR)
			session_fail(s, "%s: %s", e->name,
			    log_strerror(errno, eb, sizeof(eb)));
		else if (n == GNUTLS_E_PREMATURE_TERMINATION)
			session_fail(s, "%s: TLS stream truncated (no "
			    "close_notify)", e->name);
		else if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
			session_fail(s, "%s sent alert: %s", e->name,
			    gnutls_alert_get_name(gnutls_alert_get(e->tls)));
		else if (n == GNUTLS_E_REHANDSHAKE)
			session_fail(s, "%s asked to renegotiate "
			    "(refused)", e->name);
		else
			session_fail_tls(s, e, (int)n);
		return -1;
	}
	session_fail(s, "idle timeout");
	return -1;
}

/* Write all of buf to e. */
static int
end_write(struct session *s, struct end *e,
    const unsigned char *buf, size_t len)
{
	char eb[128];
	ssize_t n;

	while (len > 0) {
		if (e->tls != NULL)
			n = gnutls_record_send(e->tls, buf, len);
		else if ((n = send(e->fd, buf, len, MSG_NOSIGNAL)) == -1)
			n = (errno == EINTR) ? GNUTLS_E_INTERRUPTED :
			    (errno == EAGAIN) ? GNUTLS_E_AGAIN : -1;
		if (n >= 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (atomic_load(&s->failed) == FAILED)
			return -1;
		if (n == GNUTLS_E_AGAIN) {	/* SO_SNDTIMEO: stalled */
			if (idle_left(s) != 0)
				continue;
			session_fail(s, "idle timeout (%s not "
			    "reading)", e->name);
		} else if (e->tls == NULL || n == GNUTLS_E_PUSH_ERROR)
			session_fail(s, "%s: %s", e->name,
			    log_strerror(errno, eb, sizeof(eb)));
		else
			session_fail_tls(s, e, (int)n);
		return -1;
	}
	return 0;
}

/* Pass a clean end of stream on to e, in the thread that writes to e. */
static void
end_close_write(struct session *s, struct end *e)
{
	char eb[128];
	int ret;

	if (e->tls != NULL) {
		do {
			ret = gnutls_bye(e->tls, GNUTLS_SHUT_WR);
		} while (ret == GNUTLS_E_INTERRUPTED);
		if (ret < 0 && atomic_load(&s->failed) != FAILED)
			session_fail_tls(s, e, ret);
	} else if (shutdown(e->fd, SHUT_WR) == -1 && errno != ENOTCONN &&
	    !atomic_load(&s->failed))
		session_fail(s, "%s: %s", e->name,
		    log_strerror(errno, eb, sizeof(eb)));
}

/* Copy one direction until its end of stream or the session's failure. */
static void *
copy(void *arg)
{
	struct copy *c = arg;
	struct session *s = c->s;
	unsigned char *buf = c->small;
	size_t len, size = SMALL_SIZE;
	ssize_t n;

	do {
		len = 0;
		n = end_read(s, c->from, buf, size, 0);
		while (n > 0) {
			len += (size_t)n;
			n = (len + RECORD_SIZE > size) ? NOTHING_MORE :
			    end_read(s, c->from, buf + len, size - len, 1);
		}
		if (len > 0) {	/* before the end or failure read after it */
			atomic_store(&s->last_io, mono_ms());
			if (end_write(s, c->to, buf, len) == -1)
				return NULL;
			*c->count += len;
			atomic_fetch_add_explicit(c->relayed, len,
			    memory_order_relaxed);
		}
		if (len == size && buf == c->small) {
			*c->big = 1;
			buf = c->buf;
			size = BUF_SIZE;
		}
	} while (n == NOTHING_MORE);
	if (n == 0)
		end_close_write(s, c->to);
	return NULL;
}

/*
 * Bound an end's waits: ms, 0 for never. SO_RCVTIMEO rather than GnuTLS's
 * record timeout, which would poll() before every record.
 */
static void
end_timeouts(struct end *e, int64_t ms)
{
	set_timeout(e->fd, SO_SNDTIMEO, ms);
	set_timeout(e->fd, SO_RCVTIMEO, ms);
}

/* Close fd so that the peer gets a reset, not a clean end. */
static void
close_reset(int fd)
{
	struct linger lg = { 1, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	(void)close(fd);
}

static void
end_close(struct end *e, int reset)
{
	if (e->tls != NULL)
		gnutls_deinit(e->tls);
	if (e->fd == -1)
		return;
	if (reset)
		close_reset(e->fd);
	else
		(void)close(e->fd);
}

/*
 * A session's memory is a mapping of its own: zero pages, of which only
 * those data touches become resident (for an idle session, the first).
 * A spare one (above), reused, is cleared up to its buffers.
 */
static struct session *
session_map(void)
{
	void *p = mmap(NULL, sizeof(struct session), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void
session_reuse(struct session *s)
{
	memset(s, 0, offsetof(struct session, small));
	memset(&s->rbuf, 0, offsetof(struct tls_rbuf, data));
}

/* A spare session, or NULL; the accept loop's thread only. */
static struct session *
spare_pop(void)
{
	struct session *s = atomic_load(&spare);

	while (s != NULL && !atomic_compare_exchange_weak(&spare, &s, s->next))
		;
	if (s != NULL)
		atomic_fetch_sub(&nspare, 1);
	return s;
}

/*
 * The session's memory, freed: back to the spares if only its first
 * page was written, else unmapped.
 */
static void
session_free(struct session *s)
{
	size_t end = offsetof(struct session, rbuf.data) + s->rbuf.used;

	if (s->big[0] || s->big[1] || end > page_size ||
	    atomic_fetch_add(&nspare, 1) >= SPARE_MAX) {
		if (!s->big[0] && !s->big[1] && end <= page_size)
			atomic_fetch_sub(&nspare, 1);
		(void)munmap(s, sizeof(*s));
		return;
	}
	s->next = atomic_load(&spare);
	while (!atomic_compare_exchange_weak(&spare, &s->next, s))
		;
}

/*
 * The end of every session: by the last of its copy threads, or by
 * opened() if it never got one. Nothing else touches s any more.
 */
static void
session_close(struct session *s)
{
	struct route *r = s->route;
	const char *reason = "eof";
	char q[300];
	int reset;

	if (s->listed)
		unlist(s);		/* nobody wakes it now */
	if (atomic_load(&s->failed))
		reason = s->reason;
	/* A probe (nothing sent, then the end) is no refusal: its close says it. */
	if (s->rejected && !s->open.probe)
		atomic_fetch_add(&r->live->stats.refused[s->starved ?
		    REFUSE_LIMITS : stats_classify(reason)], 1);
	if (s->open.probe)
		atomic_fetch_add(&r->live->stats.probes, 1);
	else if (s->rejected && s->starved)
		log_refusal(r, s->id, s->peer, reason);
	else if (s->rejected && !s->open.logged_open)
		log_event(LOG_WARN, r->name, s->id, "reject", "peer=%s "
		    "reason=%s", s->peer, log_quote(reason, q, sizeof(q)));
	else if (s->rejected)
		log_event(LOG_WARN, r->name, s->id, "reject", "reason=%s",
		    log_quote(reason, q, sizeof(q)));
	log_event(LOG_INFO, r->name, s->id, "close",
	    "reason=%s up=%" PRIu64 " down=%" PRIu64 " ms=%" PRId64,
	    log_quote(reason, q, sizeof(q)), s->up, s->down, mono_ms() - s->t0);
	/* Any end but a clean one is a reset, but after an alert. */
	reset = atomic_load(&s->failed) != 0;
	end_close(&s->cli, reset && !s->cli.alerted);
	end_close(&s->srv, reset && !s->srv.alerted);

	session_free(s);
	uncount(r);
	config_route_unref(r);
}

/*
 * One direction of an open session, in a thread of its own; the last of
 * the two to end tears the session down.
 */
static void *
copy_main(void *arg)
{
	struct copy *c = arg;
	struct session *s = c->s;

	copy(c);
	if (atomic_fetch_sub(&s->running, 1) == 1)
		session_close(s);	/* the other is done: s is ours */
	return NULL;
}

void
relay_no_preempt(void)
{
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH,
	    &(struct sched_param){ .sched_priority = 0 });
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	relay_no_preempt();
	for (;;) {
		w->fn(w->arg);
		if (atomic_fetch_add(&nidle, 1) >= IDLE_THREADS) {
			atomic_fetch_sub(&nidle, 1);
			atomic_fetch_sub(&nworkers, 1);
			break;
		}
		/* Named so that ps, top -H and the tests tell idle from busy. */
		(void)pthread_setname_np(pthread_self(), "tlsgate:idle");
		w->next = atomic_load(&returned);
		while (!atomic_compare_exchange_weak(&returned, &w->next, w))
			;
		while (sem_wait(&w->go) == -1)
			;	/* EINTR */
		(void)pthread_setname_np(pthread_self(), "tlsgate");
	}
	(void)sem_destroy(&w->go);
	free(w);
	return NULL;
}

/* Take up to n idle threads into w; returns how many. */
static unsigned
take_idle(struct worker **w, unsigned n)
{
	unsigned i;

	pthread_mutex_lock(&pool_lock);
	for (i = 0; i < n; i++) {
		if (idle_workers == NULL)
			idle_workers = atomic_exchange(&returned, NULL);
		if ((w[i] = idle_workers) == NULL)
			break;
		idle_workers = w[i]->next;
	}
	pthread_mutex_unlock(&pool_lock);
	atomic_fetch_sub(&nidle, i);
	return i;
}

/* A new thread of the pool, running fn(arg). Returns 0 or an errno. */
static int
worker_new(void *(*fn)(void *), void *arg)
{
	struct worker *w;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return ENOMEM;
	if (sem_init(&w->go, 0, 0) == -1) {
		rc = errno;
		free(w);
		return rc;
	}
	w->fn = fn;
	w->arg = arg;
	atomic_fetch_add(&nworkers, 1);
	if ((rc = pthread_create(&(pthread_t){0}, &thread_attr, worker_main,
	    w)) != 0) {
		atomic_fetch_sub(&nworkers, 1);
		(void)sem_destroy(&w->go);
		free(w);
	}
	return rc;
}

/*
 * Run fn(arg[i]) for each i < n (at most 2), each in a thread of its
 * own: idle ones first, then new ones. Returns how many started, in
 * order; when fewer than n, *rc says why the next did not.
 */
static unsigned
spawn(void *(*fn)(void *), void *const *arg, unsigned n, int *rc)
{
	struct worker *w[2];
	unsigned i, k;

	k = take_idle(w, n);
	for (i = 0; i < k; i++) {
		w[i]->fn = fn;
		w[i]->arg = arg[i];
		(void)sem_post(&w[i]->go);	/* it runs fn(arg[i]) now */
	}
	for (; i < n; i++)
		if ((*rc = worker_new(fn, arg[i])) != 0)
			break;
	return i;
}

/*
 * The stage is done with the session (on its thread): take what it
 * opened, and either give the session its threads or, if it failed to
 * open (or the shutdown grace ended meanwhile), tear it down here.
 */
static void
opened(struct stage_conn *c, const char *why)
{
	struct session *s = (struct session *)(void *)((char *)c -
	    offsetof(struct session, open));
	struct stripe *st;
	char eb[128];
	int i, rc = 0;

	s->cli.tls = c->cli_tls;
	s->cli.alerted = c->cli_alerted;
	s->srv.tls = c->srv_tls;
	s->srv.alerted = c->srv_alerted;
	s->srv.fd = c->srv;		/* now owned by the session */
	s->starved = c->starved;
	if (why != NULL) {		/* not listed: nobody else sees it */
		fail_locked(s, FAILED, why);
		s->rejected = 1;
		session_close(s);
		return;
	}
	/* Open: on the list that the end of the shutdown grace walks. */
	st = stripe_of(s);
	pthread_mutex_lock(&st->lock);
	s->next = st->live;
	if (st->live != NULL)
		st->live->prev = s;
	st->live = s;
	s->listed = 1;
	if (atomic_load(&stopping))
		fail_locked(s, FAILED, "shutdown");
	why = atomic_load(&s->failed) ? s->reason : NULL;
	pthread_mutex_unlock(&st->lock);
	if (why != NULL) {
		s->rejected = 1;
		session_close(s);
		return;
	}
	s->srv.ticket = s->srv.tls != NULL && tls_keeps_tickets(s->route->tls);
	/*
	 * From here on, idle_timeout bounds every wait of the relay: the
	 * client's socket has it from its listener (relay_listener()), but
	 * for a unix socket's, which copies nothing from its listener.
	 */
	end_timeouts(&s->srv, (int64_t)s->route->idle_timeout * 1000);
	if (s->route->accept.scheme == SCHEME_UNIX)
		end_timeouts(&s->cli, (int64_t)s->route->idle_timeout * 1000);
	atomic_store(&s->last_io, mono_ms());
	s->dir[0] = (struct copy){ s, &s->cli, &s->srv, &s->up, s->small[0],
	    s->buf[0], &s->big[0], &s->route->live->stats.bytes_up };
	s->dir[1] = (struct copy){ s, &s->srv, &s->cli, &s->down,
	    s->small[1], s->buf[1], &s->big[1],
	    &s->route->live->stats.bytes_down };
	atomic_store(&s->running, 2);
	if ((i = (int)spawn(copy_main, (void *const[]){ &s->dir[0],
	    &s->dir[1] }, 2, &rc)) < 2) {
		session_fail(s, "no thread: %s",
		    log_strerror(rc, eb, sizeof(eb)));
		s->starved = 1;
		s->rejected = (i == 0);
		/* The one not started, and the other if there is none. */
		if (atomic_fetch_sub(&s->running, 2 - i) == 2 - i)
			session_close(s);
	}
}

/*
 * Refuse a connection for want of resources: close fd with a reset, and
 * log it (at most one line a second for all such refusals).
 */
static void
refuse(int fd, const struct route *r, const struct sockaddr *peer,
    const char *why)
{
	char p[INET6_ADDRSTRLEN + 8];

	log_sockaddr(peer, p, sizeof(p));
	atomic_fetch_add(&r->live->stats.refused[REFUSE_LIMITS], 1);
	log_refusal(r, 0, p, why);
	close_reset(fd);
}

int
relay_refuse_waiting(int lfd, const struct route *r, int err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char eb[128], p[INET6_ADDRSTRLEN + 8];
	int fd = -1;

	pthread_mutex_lock(&fd_lock);
	if (reserve_fd == -1)	/* lost to an unlocked open: take it back */
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (reserve_fd != -1) {
		(void)close(reserve_fd);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd != -1) {
			log_sockaddr((struct sockaddr *)&ss, p, sizeof(p));
			close_reset(fd);
		}
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	pthread_mutex_unlock(&fd_lock);
	if (fd == -1)
		return -1;
	atomic_fetch_add(&r->live->stats.refused[REFUSE_LIMITS], 1);
	log_refusal(r, 0, p, log_strerror(err, eb, sizeof(eb)));
	return 0;
}

/* A unix socket's client, as logged: "unix:pid=N,uid=N". */
static void
unix_peer(int fd, char *buf, size_t len)
{
	struct ucred cred;
	socklen_t n = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0)
		snprintf(buf, len, "unix:pid=%ld,uid=%lu", (long)cred.pid,
		    (unsigned long)cred.uid);
	else
		snprintf(buf, len, "unix");
}

int
relay_start(int fd, struct route *r, const struct sockaddr *peer,
    socklen_t peerlen)
{
	struct session *s = NULL;
	char p[INET6_ADDRSTRLEN + 8];
	const char *why = NULL;
	unsigned n;

	/* Who may connect at all: allow_from, or proxy_from for proxies. */
	if (r->accept_proxy ? r->proxy_from != NULL &&
	    !config_cidr_match(r->proxy_from, r->nproxy_from, peer) :
	    r->allow_from != NULL && !config_cidr_match(r->allow_from,
	    r->nallow_from, peer)) {
		log_sockaddr(peer, p, sizeof(p));
		why = r->accept_proxy ? "not in proxy_from" :
		    "not in allow_from";
		atomic_fetch_add(&r->live->stats.refused[stats_classify(why)],
		    1);
		log_event(LOG_WARN, r->name, 0, "reject", "peer=%s "
		    "reason=\"%s: %s\"", p, why, p);
		close_reset(fd);
		return -1;
	}
	/* Counted at once: sessions of this loop and of reloads add up. */
	if ((n = atomic_fetch_add(&nlive, 1)) >= max_sessions)
		why = "max_sessions reached (gateway)";
	else if (atomic_fetch_add(&r->live->n, 1) >= r->max_sessions) {
		atomic_fetch_sub(&r->live->n, 1);
		why = "max_sessions reached (route)";
	} else if (n == 0)
		atomic_store(&quiet_since, 0);
	if (why != NULL) {		/* a policy: every one is logged */
		atomic_fetch_sub(&nlive, 1);
		atomic_fetch_add(&r->live->stats.refused[REFUSE_LIMITS], 1);
		log_sockaddr(peer, p, sizeof(p));
		log_event(LOG_WARN, r->name, 0, "reject", "peer=%s "
		    "reason=\"%s\"", p, why);
		close_reset(fd);
		return -1;
	}
	if ((s = spare_pop()) != NULL)
		session_reuse(s);
	else if ((s = session_map()) == NULL) {
		uncount(r);
		refuse(fd, r, peer, "out of memory");
		return -1;
	}
	s->id = atomic_fetch_add(&next_id, 1);
	s->route = config_route_ref(r);
	s->cli.fd = fd;			/* now owned by s */
	s->cli.name = "client";
	s->srv.fd = -1;
	s->srv.name = "server";
	s->t0 = mono_ms();
	if (peer->sa_family == AF_UNIX)
		unix_peer(fd, s->peer, sizeof(s->peer));
	else
		log_sockaddr(peer, s->peer, sizeof(s->peer));
	s->open.route = r;
	s->open.id = s->id;
	s->open.cli = fd;
	s->open.rbuf = &s->rbuf;
	s->open.done = opened;
	s->open.peer = s->peer;
	memset(&s->open.src, 0, sizeof(s->open.src));
	memset(&s->open.dst, 0, sizeof(s->open.dst));
	if (peerlen <= sizeof(s->open.src) && (peer->sa_family == AF_INET ||
	    peer->sa_family == AF_INET6))
		memcpy(&s->open.src, peer, peerlen);
	/* With accept_proxy, the stage says who the client is. */
	s->open.logged_open = !r->accept_proxy;
	if (s->open.logged_open)
		log_event(LOG_INFO, r->name, s->id, "open", "peer=%s",
		    s->peer);
	atomic_fetch_add(&r->live->stats.sessions, 1);
	untidy = 1;
	stage_open(&s->open);
	return 0;
}

/* The process's resident memory, in KiB (-1 if unknown). */
static long
rss_kib(void)
{
	long pages = -1, resident = -1;
	FILE *fp;

	if ((fp = fopen("/proc/self/statm", "re")) == NULL)
		return -1;
	if (fscanf(fp, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	(void)fclose(fp);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int
relay_listener(int fd, const struct route *r)
{
	int one = 1;

	if (r->accept.scheme == SCHEME_UNIX)
		return 0;	/* none is copied: see opened() */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) == -1)
		return -1;
	set_timeout(fd, SO_RCVTIMEO, (int64_t)r->idle_timeout * 1000);
	set_timeout(fd, SO_SNDTIMEO, (int64_t)r->idle_timeout * 1000);
	return 0;
}

long
relay_tidy(void)
{
	int64_t since = atomic_load(&quiet_since), now;
	struct session *s;
	unsigned busy;

	if (!untidy)
		return -1;
	now = mono_ms();
	if (since == 0 || now - since < TIDY_MS)
		return since == 0 ? TIDY_MS : (long)(TIDY_MS - (now - since));
	busy = atomic_load(&nworkers) - atomic_load(&nidle);
	if (busy > 0)
		return TIDY_MS;
	while (atomic_load(&nspare) > SPARE_KEEP && (s = spare_pop()) != NULL)
		(void)munmap(s, sizeof(*s));
	(void)malloc_trim(0);
	untidy = 0;
	log_event(LOG_INFO, NULL, 0, "idle", "rss=%ld", rss_kib());
	return -1;
}

unsigned
relay_count(void)
{
	unsigned n;

	n = atomic_load(&nlive);
	return n;
}

unsigned
relay_wait(long ms)
{
	struct timespec ts;
	unsigned n;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&wait_lock);
	while (atomic_load(&nlive) > 0)
		if (pthread_cond_timedwait(&idle_cond, &wait_lock, &ts) ==
		    ETIMEDOUT)
			break;
	n = atomic_load(&nlive);
	pthread_mutex_unlock(&wait_lock);
	return n;
}

void
relay_shutdown_all(void)
{
	struct session *s;
	unsigned i;

	/* First, so that a session listed after its stripe's walk sees it. */
	atomic_store(&stopping, 1);
	for (i = 0; i < STRIPES; i++) {
		pthread_mutex_lock(&stripes[i].lock);
		for (s = stripes[i].live; s != NULL; s = s->next)
			fail_locked(s, FAILED, "shutdown");
		pthread_mutex_unlock(&stripes[i].lock);
	}
	stage_stop();		/* and those the stage is opening */
}
