/*
 * stage.c: the handshake stage.
 *
 * A few long-lived threads, one per CPU, open every session: each thread
 * multiplexes many openings with epoll, on non-blocking sockets, and
 * takes each through its route's steps as far as its sockets allow:
 *
 *   unwrap   the client's TLS handshake and authorization, then the
 *            connection to the plaintext server;
 *   wrap     the connection to the TLS server, then its handshake and
 *            verification;
 *   forward  the connection.
 *
 * Every step has a deadline (handshake_timeout, connect_timeout), kept
 * in a heap per thread, so no number of slow or silent peers holds up
 * the others or costs a thread: a session waiting for its peer is a
 * socket, a GnuTLS session and a few hundred bytes here. Once open, the
 * session goes back to relay.c (done()), which gives it its two copy
 * threads.
 *
 * Everything that draws random numbers (handshakes, session tickets)
 * runs here: GnuTLS 3.7.9 gives every thread that draws a generator
 * context that it frees only at exit, and these threads never exit. The
 * copy threads, which come and go with the bursts, draw nothing under
 * the AEAD ciphers of the default priority.
 *
 * A name to connect to is resolved by a thread of its own (getaddrinfo
 * blocks), which hands the session back when it is done.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
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
#include "stats.h"
#include "tls.h"
#include "stage.h"

#define MAX_THREADS	64
#define EVENTS		64
#define POOL_MAX	64	/* free opening states kept per thread */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK_SCALE	8
#else
#define STACK_SCALE	1
#endif
#define STAGE_STACK	(512 * 1024 * STACK_SCALE)
#define RESOLVE_STACK	(256 * 1024 * STACK_SCALE)

/* Where an opening stands. */
enum {
	S_START,	/* not yet looked at */
	S_PROXY_IN,	/* reading the PROXY header (accept_proxy) */
	S_ACCEPTED,	/* the client's side is its own now */
	S_TLS_CLI,	/* the client's TLS handshake (unwrap) */
	S_CONNECT,	/* about to resolve and connect */
	S_RESOLVED,	/* back from the resolver thread */
	S_NEXT,		/* trying the next address */
	S_CONNECTING,	/* a connect() in progress */
	S_CONNECTED_MAYBE,	/* one that may be over: SO_ERROR says */
	S_CONNECTED,
	S_PROXY_OUT,	/* sending the PROXY header (send_proxy) */
	S_TLS_SRV	/* the server's TLS handshake (wrap) */
};

struct stage_thread;

/* An opening: the stage's own part of a session, from its thread's pool. */
struct stage_state {
	struct stage_state	*next;		/* free list, inbox */
	struct stage_conn	*c;
	struct stage_thread	*t;
	int			 state;
	int64_t			 deadline;	/* ms, monotonic */
	size_t			 hidx;		/* in t->heap, or NOT_IN_HEAP */
	int			 wfd;		/* watched: fd and events */
	uint32_t		 wev;
	struct addrinfo		*res, *ai;	/* the addresses to try */
	const struct addrinfo	*cur;		/* the one being tried */
	int			 err;		/* why the last one failed */
	int			 gai_rc, gai_errno;	/* the resolver's */
	int64_t			 t_step;	/* µs: when the step began */
	struct tls_open		 op;		/* the TLS end's handshake */
	struct addrinfo		 uai;		/* a unix: connect's address */
	struct sockaddr_un	 usun;
	unsigned char		*pp;		/* a PROXY header, PP_MAX */
	size_t			 pp_len, pp_off;	/* to send, and sent */
};

#define NOT_IN_HEAP	SIZE_MAX

struct stage_thread {
	int			 epfd, evfd;
	pthread_mutex_t		 lock;		/* inbox */
	struct stage_state	*inbox;		/* openings handed to it */
	struct stage_state	*pool;		/* free states; under lock */
	unsigned		 npool;
	struct stage_state	**heap;		/* by deadline; its own */
	size_t			 nheap, capheap;
};

static struct stage_thread	 threads[MAX_THREADS];
static unsigned			 nthreads;
static atomic_uint		 next_thread;
static atomic_int		 stopping;
static int			(*make_socket)(int, int, int);
static pthread_attr_t		 resolve_attr;

/* The route's counters (stats.c). */
static struct stats_route *
counters(const struct stage_state *st)
{
	return &st->c->route->live->stats;
}

/* A handshake has ended, done or not: count it and how long it took. */
static void
handshake_ended(struct stage_state *st, int ok)
{
	struct stats_route *sr = counters(st);

	stats_observe(&sr->handshake, mono_us() - st->t_step);
	atomic_fetch_add(ok ? &sr->handshakes : &sr->handshakes_failed, 1);
	if (ok && st->op.resumed)
		atomic_fetch_add(&sr->resumed, 1);
}

/* --- the deadline heap ----------------------------------------------- */

static void
heap_set(struct stage_thread *t, size_t i, struct stage_state *st)
{
	t->heap[i] = st;
	st->hidx = i;
}

static void
heap_up(struct stage_thread *t, size_t i)
{
	struct stage_state *st = t->heap[i];

	while (i > 0 && t->heap[(i - 1) / 2]->deadline > st->deadline) {
		heap_set(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(t, i, st);
}

static void
heap_down(struct stage_thread *t, size_t i)
{
	struct stage_state *st = t->heap[i];
	size_t k;

	while ((k = 2 * i + 1) < t->nheap) {
		if (k + 1 < t->nheap &&
		    t->heap[k + 1]->deadline < t->heap[k]->deadline)
			k++;
		if (t->heap[k]->deadline >= st->deadline)
			break;
		heap_set(t, i, t->heap[k]);
		i = k;
	}
	heap_set(t, i, st);
}

static void
heap_remove(struct stage_thread *t, struct stage_state *st)
{
	size_t i = st->hidx;

	if (i == NOT_IN_HEAP)
		return;
	st->hidx = NOT_IN_HEAP;
	if (i == --t->nheap)
		return;
	heap_set(t, i, t->heap[t->nheap]);
	heap_up(t, i);
	heap_down(t, t->heap[i] == st ? i : t->heap[i]->hidx);
}

/* The step now taken must be over by ms from now. */
static int
set_deadline(struct stage_state *st, int64_t at)
{
	struct stage_thread *t = st->t;
	struct stage_state **h;
	size_t cap;

	heap_remove(t, st);
	if (t->nheap == t->capheap) {
		cap = t->capheap ? 2 * t->capheap : 256;
		if ((h = realloc(t->heap, cap * sizeof(*h))) == NULL)
			return -1;
		t->heap = h;
		t->capheap = cap;
	}
	st->deadline = at;
	heap_set(t, t->nheap++, st);
	heap_up(t, st->hidx);
	return 0;
}

/* --- sockets ---------------------------------------------------------- */

static void
tune_socket(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

/* Wait for fd to be ready for rw (TLS_OPEN_READ or TLS_OPEN_WRITE). */
static int watch_events(struct stage_state *, int, uint32_t);

static int
watch(struct stage_state *st, int fd, int rw)
{
	return watch_events(st, fd, rw == TLS_OPEN_WRITE ? EPOLLOUT : EPOLLIN);
}

/* Wait for events want on fd (EPOLLET: for new data, not data held). */
static int
watch_events(struct stage_state *st, int fd, uint32_t want)
{
	struct epoll_event ev;
	int op = EPOLL_CTL_ADD;

	if (st->wfd == fd && st->wev == want)
		return 0;
	if (st->wfd == fd)
		op = EPOLL_CTL_MOD;
	else if (st->wfd != -1)
		(void)epoll_ctl(st->t->epfd, EPOLL_CTL_DEL, st->wfd, NULL);
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = st;
	if (epoll_ctl(st->t->epfd, op, fd, &ev) == -1) {
		st->wfd = -1;
		return -1;
	}
	st->wfd = fd;
	st->wev = want;
	return 0;
}

static void
unwatch(struct stage_state *st)
{
	if (st->wfd != -1)
		(void)epoll_ctl(st->t->epfd, EPOLL_CTL_DEL, st->wfd, NULL);
	st->wfd = -1;
}

/* --- the end of an opening -------------------------------------------- */

/*
 * Hand the session back to relay.c, open (why NULL) or failed; st goes
 * back to its thread's pool. c may be gone once done() returns.
 */
static void
finish(struct stage_state *st, const char *why)
{
	struct stage_conn *c = st->c;
	struct stage_thread *t = st->t;

	unwatch(st);
	heap_remove(t, st);
	if (st->res != NULL)
		freeaddrinfo(st->res);
	st->res = st->ai = NULL;
	free(st->pp);
	st->pp = NULL;
	/* A socket's status flags are O_NONBLOCK or nothing: clear it. */
	if (why == NULL && c->srv != -1 && fcntl(c->srv, F_SETFL, 0) == -1)
		why = "fcntl: cannot make the socket blocking";
	if (why == NULL && c->rbuf != NULL)
		c->rbuf->dontwait = 0;	/* the copy threads block */
	st->c = NULL;
	c->st = NULL;
	pthread_mutex_lock(&t->lock);
	if (t->npool < POOL_MAX) {
		st->next = t->pool;
		t->pool = st;
		t->npool++;
		st = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	free(st);		/* beyond the pool: a burst's, given back */
	c->done(c, why);
}

static void
fail(struct stage_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(struct stage_state *st, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(st, why);
}

/* The deadline of st's step has passed. */
static void
expire(struct stage_state *st)
{
	struct stage_conn *c = st->c;

	switch (st->state) {
	case S_PROXY_IN:
		fail(st, "PROXY header: none within handshake_timeout");
		break;
	case S_TLS_CLI:
		c->cli_alerted = 1;	/* closed without a reset */
		handshake_ended(st, 0);
		fail(st, "handshake timeout");
		break;
	case S_TLS_SRV:
		c->srv_alerted = 1;
		handshake_ended(st, 0);
		fail(st, "handshake timeout");
		break;
	default:
		stats_observe(&counters(st)->connect, mono_us() - st->t_step);
		fail(st, "connect timeout (%s)", c->route->connect.text);
		break;
	}
}

/* --- the steps --------------------------------------------------------- */

static void *
resolve_main(void *arg)
{
	struct stage_state *st = arg;
	const struct addr *a = &st->c->route->connect;
	struct addrinfo hints;
	struct stage_thread *t = st->t;
	int empty;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	st->gai_rc = getaddrinfo(a->host, a->port, &hints, &st->res);
	st->gai_errno = errno;
	st->state = S_RESOLVED;
	pthread_mutex_lock(&t->lock);
	empty = (t->inbox == NULL);
	st->next = t->inbox;
	t->inbox = st;
	pthread_mutex_unlock(&t->lock);
	if (empty)
		(void)eventfd_write(t->evfd, 1);
	return NULL;
}

/*
 * Start resolving the route's connect address: at once for an address,
 * on a thread of its own for a name. 1: resolved; 0: the resolver will
 * hand st back; -1: failed (finished).
 */
static int
resolve(struct stage_state *st)
{
	const struct addr *a = &st->c->route->connect;
	struct addrinfo hints;
	char eb[128];
	pthread_t tid;
	socklen_t len;
	int rc;

	st->res = NULL;
	if (a->scheme == SCHEME_UNIX) {
		config_unix_addr(a, &st->usun, &len);
		memset(&st->uai, 0, sizeof(st->uai));
		st->uai.ai_family = AF_UNIX;
		st->uai.ai_socktype = SOCK_STREAM;
		st->uai.ai_addr = (struct sockaddr *)&st->usun;
		st->uai.ai_addrlen = len;
		st->gai_rc = 0;
		return 1;
	}
	if (!config_is_ip(a->host)) {
		unwatch(st);
		heap_remove(st->t, st);
		if ((rc = pthread_create(&tid, &resolve_attr, resolve_main,
		    st)) == 0)
			return 0;
		fail(st, "resolve %s: no thread: %s", a->host,
		    log_strerror(rc, eb, sizeof(eb)));
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	st->gai_rc = getaddrinfo(a->host, a->port, &hints, &st->res);
	st->gai_errno = errno;
	return 1;
}

/* A connect() to the next address; S_CONNECTING or S_CONNECTED. */
static void
connect_next(struct stage_state *st)
{
	struct stage_conn *c = st->c;
	const struct addrinfo *ai = st->ai;
	int fd;

	struct pollfd pfd;

	st->ai = ai->ai_next;
	st->cur = ai;
	if ((fd = make_socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, ai->ai_protocol)) == -1) {
		st->err = errno;
		if (st->err == EMFILE || st->err == ENFILE)
			c->starved = 1;
		return;
	}
	c->srv = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		st->state = S_CONNECTED;
	else if ((st->err = errno) == EINPROGRESS) {
		st->state = S_CONNECTING;
		/* A near server (loopback) has often answered already. */
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 0) == 1)
			st->state = S_CONNECTED_MAYBE;
	} else {
		(void)close(fd);
		c->srv = -1;
	}
}

/* A TLS session on fd for the route, and its handshake's deadline. */
static int
tls_begin(struct stage_state *st, int fd, gnutls_session_t *out)
{
	char why[256];

	if (tls_session_new(st->c->route->tls, fd, st->c->rbuf, &st->op, out,
	    why, sizeof(why)) == -1) {
		finish(st, why);
		return -1;
	}
	if (set_deadline(st, mono_ms() +
	    (int64_t)st->c->route->handshake_timeout * 1000) == -1) {
		finish(st, "out of memory");
		return -1;
	}
	st->t_step = mono_us();
	return 0;
}

/*
 * One TLS end's handshake, as far as it goes: 1 when done, 0 when it
 * waits for its socket, -1 when it failed (finished).
 */
static int
tls_step(struct stage_state *st, int fd, gnutls_session_t s, int *alerted)
{
	char why[256], desc[768];
	int rc;

	rc = tls_open_step(s, &st->op, why, sizeof(why), desc, sizeof(desc));
	if (rc == TLS_OPEN_READ || rc == TLS_OPEN_WRITE) {
		if (watch(st, fd, rc) == -1) {
			fail(st, "epoll: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	if (rc == TLS_OPEN_FAILED) {
		*alerted = st->op.alerted;
		st->c->probe = st->op.probe;
		handshake_ended(st, 0);
		finish(st, why);
		return -1;
	}
	handshake_ended(st, 1);
	log_event(LOG_INFO, st->c->route->name, st->c->id, "tls", "%s", desc);
	return 1;
}

/* Whether the peer of TCP socket fd has ended its stream (sent FIN). */
static int
peer_ended(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    (ti.tcpi_state == TCP_CLOSE_WAIT || ti.tcpi_state == TCP_CLOSE);
}

/*
 * The PROXY header the client (a proxy) sends first: looked at where it
 * stands (MSG_PEEK), so that nothing after it is taken, and taken once
 * whole. 1 when done, 0 when it waits for more, -1 when it failed
 * (finished).
 */
static int
proxy_in(struct stage_state *st)
{
	struct stage_conn *c = st->c;
	const struct route *r = c->route;
	char why[200], eb[128], who[INET6_ADDRSTRLEN + 8];
	union pp_addr src, dst;
	ssize_t n;
	long len;
	int local;

	if (st->pp == NULL && (st->pp = malloc(PP_MAX)) == NULL) {
		finish(st, "out of memory");
		return -1;
	}
	n = recv(c->cli, st->pp, PP_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		n = -2;
	if (n == 0 || (n == -1 && errno == ECONNRESET)) {
		c->probe = 1;	/* a port probe or health check: no refusal */
		fail(st, "closed before sending anything");
		return -1;
	}
	if (n == -1) {
		fail(st, "PROXY header: %s", log_strerror(errno, eb,
		    sizeof(eb)));
		return -1;
	}
	len = n < 0 ? 0 : pp_parse(st->pp, (size_t)n, &src, &dst, why,
	    sizeof(why));
	if (len == -1) {
		fail(st, "PROXY header: %s", why);
		return -1;
	}
	if (len == 0 && n > 0 && peer_ended(c->cli)) {
		fail(st, "PROXY header: cut short (%ld bytes, then the end "
		    "of the stream)", (long)n);
		return -1;
	}
	if (len == 0) {		/* a new edge when more comes, or the end */
		if (watch_events(st, c->cli, EPOLLIN | EPOLLRDHUP |
		    EPOLLET) == -1) {
			fail(st, "epoll: %s", log_strerror(errno, eb,
			    sizeof(eb)));
			return -1;
		}
		return 0;
	}
	if (recv(c->cli, st->pp, (size_t)len, MSG_DONTWAIT) != len) {
		fail(st, "PROXY header: cannot read it");
		return -1;
	}
	free(st->pp);
	st->pp = NULL;
	/*
	 * A v2 LOCAL or UNSPEC or a v1 UNKNOWN header: the proxy's own
	 * connection (a health check), whose addresses are the connection's. It is the
	 * proxy's, not a client's: a proxy in proxy_from may make it, and
	 * without proxy_from, allow_from applies to the proxy's address.
	 */
	local = src.sa.sa_family == AF_UNSPEC;
	if (!local) {
		c->src = src;
		c->dst = dst;
	}
	c->logged_open = 1;
	if (local) {
		snprintf(who, sizeof(who), "%s", c->peer);
		log_event(LOG_INFO, r->name, c->id, "open", "peer=%s "
		    "proxy=local", who);
	} else {
		log_sockaddr(&src.sa, who, sizeof(who));
		log_event(LOG_INFO, r->name, c->id, "open", "peer=%s via=%s",
		    who, c->peer);
	}
	if (r->allow_from != NULL && !(local && r->proxy_from != NULL) &&
	    !config_cidr_match(r->allow_from, r->nallow_from, &c->src.sa)) {
		fail(st, "not in allow_from: %s", who);
		return -1;
	}
	return 1;
}

/*
 * The PROXY header for the next hop, sent before anything else: the
 * client's address and the one it reached (the header's, with
 * accept_proxy), and on an unwrap route in v2 the client's TLS. 1 when
 * sent, 0 when it waits for the socket, -1 when it failed (finished).
 */
static int
proxy_out(struct stage_state *st)
{
	struct stage_conn *c = st->c;
	const struct route *r = c->route;
	struct pp_tls tls, *pt = NULL;
	char tb[TLS_PP_BUF], eb[128];
	socklen_t len = sizeof(c->dst);
	long n;
	ssize_t w;
	int more;

	if (st->pp == NULL) {
		if ((st->pp = malloc(PP_MAX)) == NULL) {
			finish(st, "out of memory");
			return -1;
		}
		if (c->dst.sa.sa_family == AF_UNSPEC && (c->src.sa.sa_family ==
		    AF_INET || c->src.sa.sa_family == AF_INET6) &&
		    getsockname(c->cli, &c->dst.sa, &len) == -1)
			c->dst.sa.sa_family = AF_UNSPEC;
		if (c->cli_tls != NULL && r->send_proxy == SEND_PROXY_V2) {
			tls_proxy_info(c->cli_tls, r->verify != VERIFY_NONE, &tls, tb);
			pt = &tls;
		}
		if ((n = pp_build(r->send_proxy == SEND_PROXY_V1 ? 1 : 2,
		    &c->src, &c->dst, pt, st->pp, PP_MAX)) == -1) {
			fail(st, "PROXY header: too long to send");
			return -1;
		}
		st->pp_len = (size_t)n;
		st->pp_off = 0;
	}
	/* with the ClientHello that follows on a wrap route, in one segment */
	more = r->connect.scheme == SCHEME_TLS ? MSG_MORE : 0;
	while (st->pp_off < st->pp_len) {
		w = send(c->srv, st->pp + st->pp_off, st->pp_len - st->pp_off,
		    MSG_DONTWAIT | MSG_NOSIGNAL | more);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno == EAGAIN) {
			if (watch(st, c->srv, TLS_OPEN_WRITE) == -1) {
				fail(st, "epoll: %s", log_strerror(errno, eb,
				    sizeof(eb)));
				return -1;
			}
			return 0;
		}
		if (w == -1) {
			fail(st, "PROXY header: send to %s: %s",
			    r->connect.text, log_strerror(errno, eb,
			    sizeof(eb)));
			return -1;
		}
		st->pp_off += (size_t)w;
	}
	free(st->pp);
	st->pp = NULL;
	return 1;
}

/* Take st's opening as far as its sockets allow. */
static void
advance(struct stage_state *st)
{
	struct stage_conn *c = st->c;
	const struct route *r = c->route;
	char eb[128], where[128];
	socklen_t len;
	int rc;

	for (;;) {
		switch (st->state) {
		case S_START:
			if (!r->accept_proxy) {
				st->state = S_ACCEPTED;
				break;
			}
			if (set_deadline(st, mono_ms() +
			    (int64_t)r->handshake_timeout * 1000) == -1) {
				finish(st, "out of memory");
				return;
			}
			st->state = S_PROXY_IN;
			/* FALLTHROUGH */
		case S_PROXY_IN:
			if ((rc = proxy_in(st)) <= 0)
				return;
			st->state = S_ACCEPTED;
			break;
		case S_ACCEPTED:
			/* c->cli has its options from its listener (relay.c). */
			if (r->accept.scheme != SCHEME_TLS) {
				st->state = S_CONNECT;
				break;
			}
			if (tls_begin(st, c->cli, &c->cli_tls) == -1)
				return;
			st->state = S_TLS_CLI;
			break;
		case S_TLS_CLI:
			if ((rc = tls_step(st, c->cli, c->cli_tls,
			    &c->cli_alerted)) <= 0)
				return;
			st->state = S_CONNECT;
			break;
		case S_CONNECT:
			unwatch(st);
			if (set_deadline(st, mono_ms() +
			    (int64_t)r->connect_timeout * 1000) == -1) {
				finish(st, "out of memory");
				return;
			}
			st->t_step = mono_us();
			if ((rc = resolve(st)) <= 0)
				return;
			/* FALLTHROUGH */
		case S_RESOLVED:
			if (st->gai_rc != 0) {
				stats_observe(&counters(st)->connect,
				    mono_us() - st->t_step);
				fail(st, "resolve %s: %s", r->connect.host,
				    st->gai_rc == EAI_SYSTEM ?
				    log_strerror(st->gai_errno, eb,
				    sizeof(eb)) : gai_strerror(st->gai_rc));
				return;
			}
			if (st->hidx == NOT_IN_HEAP && set_deadline(st,
			    st->deadline) == -1) {
				finish(st, "out of memory");
				return;
			}
			st->ai = st->res != NULL ? st->res : &st->uai;
			st->err = ETIMEDOUT;
			st->state = S_NEXT;
			break;
		case S_NEXT:
			if (mono_ms() >= st->deadline) {
				expire(st);
				return;
			}
			if (st->ai == NULL) {
				stats_observe(&counters(st)->connect,
				    mono_us() - st->t_step);
				if (st->err == ETIMEDOUT)
					fail(st, "connect timeout (%s)",
					    r->connect.text);
				else if (r->connect.scheme == SCHEME_UNIX)
					fail(st, "connect %s: %s",
					    r->connect.text, log_strerror(
					    st->err, eb, sizeof(eb)));
				else
					fail(st, "connect %s:%s: %s",
					    r->connect.host, r->connect.port,
					    log_strerror(st->err, eb,
					    sizeof(eb)));
				return;
			}
			connect_next(st);
			if (st->state == S_CONNECTED_MAYBE) {
				st->state = S_CONNECTING;
				break;	/* on to SO_ERROR, without a wait */
			}
			if (st->state == S_CONNECTING &&
			    watch(st, c->srv, TLS_OPEN_WRITE) == -1) {
				fail(st, "epoll: %s",
				    log_strerror(errno, eb, sizeof(eb)));
				return;
			}
			if (st->state == S_CONNECTING)
				return;
			break;
		case S_CONNECTING:
			len = sizeof(rc);
			if (getsockopt(c->srv, SOL_SOCKET, SO_ERROR, &rc,
			    &len) == -1)
				rc = errno;
			if (rc == 0) {
				st->state = S_CONNECTED;
				break;
			}
			unwatch(st);
			(void)close(c->srv);
			c->srv = -1;
			st->err = rc;
			st->state = S_NEXT;
			break;
		case S_CONNECTED:
			stats_observe(&counters(st)->connect,
			    mono_us() - st->t_step);
			log_sockaddr(st->cur->ai_addr, where, sizeof(where));
			if (st->cur->ai_family != AF_UNIX)
				tune_socket(c->srv);
			log_event(LOG_INFO, r->name, c->id, "connect",
			    "addr=%s", where);
			st->state = S_PROXY_OUT;
			/* FALLTHROUGH */
		case S_PROXY_OUT:
			if (r->send_proxy != SEND_PROXY_NONE &&
			    (rc = proxy_out(st)) <= 0)
				return;
			if (r->connect.scheme != SCHEME_TLS) {
				finish(st, NULL);
				return;
			}
			if (tls_begin(st, c->srv, &c->srv_tls) == -1)
				return;
			st->state = S_TLS_SRV;
			break;
		case S_TLS_SRV:
			if ((rc = tls_step(st, c->srv, c->srv_tls,
			    &c->srv_alerted)) <= 0)
				return;
			finish(st, NULL);
			return;
		}
	}
}

/* --- the threads -------------------------------------------------------- */

/* Openings handed to t (new ones, and those back from a resolver). */
static void
take_inbox(struct stage_thread *t)
{
	struct stage_state *list, *st;

	pthread_mutex_lock(&t->lock);
	list = t->inbox;
	t->inbox = NULL;
	pthread_mutex_unlock(&t->lock);
	while ((st = list) != NULL) {
		list = st->next;
		if (atomic_load(&stopping))
			finish(st, "shutdown");
		else
			advance(st);
	}
}

static void
stop_all(struct stage_thread *t)
{
	while (t->nheap > 0)
		finish(t->heap[0], "shutdown");
}

static void *
stage_main(void *arg)
{
	struct stage_thread *t = arg;
	struct epoll_event ev[EVENTS];
	eventfd_t v;
	int64_t now;
	int i, n, timeout, woken;

	(void)pthread_setname_np(pthread_self(), "tlsgate:stage");
	for (;;) {
		timeout = -1;
		if (t->nheap > 0) {
			now = mono_ms();
			timeout = t->heap[0]->deadline <= now ? 0 :
			    (int)(t->heap[0]->deadline - now);
		}
		if ((n = epoll_wait(t->epfd, ev, EVENTS, timeout)) == -1)
			n = 0;		/* EINTR */
		woken = 0;
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL) {
				(void)eventfd_read(t->evfd, &v);
				woken = 1;
				continue;
			}
			advance(ev[i].data.ptr);
		}
		if (woken)
			take_inbox(t);
		now = mono_ms();
		while (t->nheap > 0 && t->heap[0]->deadline <= now)
			expire(t->heap[0]);
		if (woken && atomic_load(&stopping))
			stop_all(t);
	}
	return NULL;
}

/* A state from t's pool, or a new one; under t->lock. */
static struct stage_state *
state_new(struct stage_thread *t)
{
	struct stage_state *st;

	if ((st = t->pool) != NULL) {
		t->pool = st->next;
		t->npool--;
	} else if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	return st;
}

void
stage_open(struct stage_conn *c)
{
	struct stage_thread *t = &threads[atomic_fetch_add(&next_thread, 1) %
	    nthreads];
	struct stage_state *st;
	int empty;

	c->srv = -1;
	c->cli_tls = c->srv_tls = NULL;
	c->cli_alerted = c->srv_alerted = c->starved = 0;
	/* The new opening waits in t's inbox with a state of its own. */
	pthread_mutex_lock(&t->lock);
	st = state_new(t);
	if (st != NULL) {
		memset(st, 0, sizeof(*st));
		st->c = c;
		st->t = t;
		st->state = S_START;
		st->hidx = NOT_IN_HEAP;
		st->wfd = -1;
		c->st = st;
		empty = (t->inbox == NULL);
		st->next = t->inbox;
		t->inbox = st;
	}
	pthread_mutex_unlock(&t->lock);
	if (st == NULL) {
		c->done(c, "out of memory");
		return;
	}
	if (empty)
		(void)eventfd_write(t->evfd, 1);
}

void
stage_stop(void)
{
	unsigned i;

	atomic_store(&stopping, 1);
	for (i = 0; i < nthreads; i++)
		(void)eventfd_write(threads[i].evfd, 1);
}

int
stage_init(unsigned n, int (*new_socket)(int, int, int))
{
	struct epoll_event ev;
	pthread_attr_t a;
	pthread_t tid;
	long cpus;
	int rc;

	if (n == 0)
		n = (cpus = sysconf(_SC_NPROCESSORS_ONLN)) > 0 ? (unsigned)cpus :
		    1;
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	make_socket = new_socket;
	if ((rc = pthread_attr_init(&resolve_attr)) != 0 ||
	    (rc = pthread_attr_setstacksize(&resolve_attr, RESOLVE_STACK)) !=
	    0 || (rc = pthread_attr_setdetachstate(&resolve_attr,
	    PTHREAD_CREATE_DETACHED)) != 0 ||
	    (rc = pthread_attr_init(&a)) != 0 ||
	    (rc = pthread_attr_setstacksize(&a, STAGE_STACK)) != 0 ||
	    (rc = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED)) !=
	    0) {
		errno = rc;
		return -1;
	}
	for (nthreads = 0; nthreads < n; nthreads++) {
		struct stage_thread *t = &threads[nthreads];

		if ((t->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
		    (t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1)
			return -1;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) == -1 ||
		    (rc = pthread_mutex_init(&t->lock, NULL)) != 0 ||
		    (rc = pthread_create(&tid, &a, stage_main, t)) != 0) {
			if (rc != 0)
				errno = rc;
			return -1;
		}
	}
	(void)pthread_attr_destroy(&a);
	return 0;
}
