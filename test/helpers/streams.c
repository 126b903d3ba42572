/*
 * streams serve [-n COUNT] HOST PORT BYTES
 * streams run HOST PORT CONNS BYTES
 *
 * Many connections moving deterministic pseudo-random bytes both ways at
 * once, every byte checked at the other end.
 *   run    opens CONNS connections at once. Each sends an 8-byte header
 *          (its seed), then BYTES of the stream "up" of that seed, then
 *          shuts its write side; at the same time, in another thread, it
 *          reads and checks BYTES of the stream "down" of the seed, then
 *          the end of the stream. Prints one line,
 *          "streams: conns=N bytes=B ok=K bad=F ms=T MiB/s=R" (R counts
 *          both directions), and a line on standard error for each of the
 *          first few failures (which direction, at which offset).
 *   serve  listens on HOST:PORT; for every connection, reads the header,
 *          then checks BYTES of "up" and the end while it sends BYTES of
 *          "down" and shuts its write side. With -n, exits once COUNT
 *          connections are done, printing "streams: served N ok=K bad=F";
 *          otherwise runs until killed.
 * Every socket wait is bounded (30 s without progress fails).
 * Exit: 0 when every stream arrived intact and ended cleanly, 1 otherwise.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define CHUNK		65536
#define WAIT_S		30
#define UP		0x7570757075707570ULL	/* "upupupup" */
#define DOWN		0x646f776e646f776eULL	/* "downdown" */

static const char *prog = "streams";
static uint64_t nbytes;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static unsigned long ndone, nok, nbad;

/* One direction of one connection: its generator and how it went. */
struct dir {
	int		 fd;
	uint64_t	 state;		/* splitmix64 */
	uint64_t	 moved;
	char		 err[160];	/* empty: fine so far */
};

struct conn {
	int		 fd;
	uint64_t	 seed;
	pthread_t	 sender;
	struct dir	 tx, rx;
	unsigned char	 buf[CHUNK], want[CHUNK];	/* the receiver's */
};

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The next len bytes (a multiple of 8, or the last piece) of d's stream. */
static void
fill(struct dir *d, unsigned char *buf, size_t len)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < len; i += 8) {
		v = splitmix(&d->state);
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static void __attribute__((format(printf, 2, 3)))
set_err(struct dir *d, const char *fmt, ...)
{
	va_list ap;

	if (d->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

static void
set_timeouts(int fd)
{
	struct timeval tv = { WAIT_S, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Send nbytes of d's stream, then shut the write side. */
static void *
send_stream(void *arg)
{
	struct dir *d = arg;
	unsigned char *buf;
	size_t n;

	if ((buf = malloc(CHUNK)) == NULL)
		die(prog, EX_ERR, "out of memory");
	while (d->moved < nbytes) {
		n = nbytes - d->moved < CHUNK ? (size_t)(nbytes - d->moved) :
		    CHUNK;
		fill(d, buf, n);
		if (net_write_all(d->fd, (const char *)buf, n) == -1) {
			set_err(d, "send after %llu bytes: %s",
			    (unsigned long long)d->moved, errno == EAGAIN ?
			    "timed out" : strerror(errno));
			free(buf);
			return NULL;
		}
		d->moved += n;
	}
	free(buf);
	if (shutdown(d->fd, SHUT_WR) == -1)
		set_err(d, "shutdown: %s", strerror(errno));
	return NULL;
}

/* Read and check nbytes of d's stream, then the end. */
static void
recv_stream(struct dir *d, unsigned char *buf, unsigned char *want)
{
	size_t have = 0, i;	/* bytes of want not yet matched */
	size_t off = 0;		/* where they start in want */
	ssize_t n;

	for (;;) {
		n = read(d->fd, buf, CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			set_err(d, "read after %llu bytes: %s",
			    (unsigned long long)d->moved, errno == EAGAIN ?
			    "timed out" : strerror(errno));
			return;
		}
		if (n == 0)
			break;
		if (d->moved + (uint64_t)n > nbytes) {
			set_err(d, "%llu bytes, more than %llu",
			    (unsigned long long)(d->moved + (uint64_t)n),
			    (unsigned long long)nbytes);
			return;
		}
		for (i = 0; i < (size_t)n; ) {
			size_t k;

			if (have == 0) {
				uint64_t left = nbytes - d->moved;

				have = left < CHUNK ? (size_t)left : CHUNK;
				fill(d, want, have);
				off = 0;
			}
			k = (size_t)n - i < have ? (size_t)n - i : have;
			if (memcmp(buf + i, want + off, k) != 0 &&
			    d->err[0] == '\0') {
				size_t j = 0;

				while (buf[i + j] == want[off + j])
					j++;
				set_err(d, "wrong byte at offset %llu",
				    (unsigned long long)(d->moved + j));
			}
			i += k;
			off += k;
			have -= k;
			d->moved += k;
		}
	}
	if (d->moved != nbytes)
		set_err(d, "end after %llu of %llu bytes",
		    (unsigned long long)d->moved, (unsigned long long)nbytes);
}

/* Both directions of c at once: the sender in a thread, receive here. */
static int
exchange(struct conn *c, uint64_t tx_kind, uint64_t rx_kind)
{
	int rc;

	c->tx.fd = c->rx.fd = c->fd;
	c->tx.state = c->seed ^ tx_kind;
	c->rx.state = c->seed ^ rx_kind;
	if ((rc = pthread_create(&c->sender, NULL, send_stream, &c->tx)) != 0) {
		set_err(&c->tx, "pthread_create: %s", strerror(rc));
		return -1;
	}
	recv_stream(&c->rx, c->buf, c->want);
	if (c->rx.err[0] != '\0')	/* don't wait on a stuck sender */
		(void)shutdown(c->fd, SHUT_RDWR);
	pthread_join(c->sender, NULL);
	return c->tx.err[0] == '\0' && c->rx.err[0] == '\0' ? 0 : -1;
}

static void
report(const char *who, struct conn *c, int ok)
{
	static unsigned long shown;

	pthread_mutex_lock(&lock);
	ndone++;
	if (ok)
		nok++;
	else if (nbad++, shown++ < 10)
		fprintf(stderr, "%s: %s %llu:%s%s%s%s\n", prog, who,
		    (unsigned long long)c->seed,
		    c->tx.err[0] ? " send: " : "", c->tx.err,
		    c->rx.err[0] ? " receive: " : "", c->rx.err);
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&lock);
}

static void *
serve_one(void *arg)
{
	struct conn *c = arg;
	unsigned char hdr[8];
	size_t got = 0;
	ssize_t n;
	int ok = 0;

	set_timeouts(c->fd);
	while (got < sizeof(hdr)) {
		n = read(c->fd, hdr + got, sizeof(hdr) - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_err(&c->rx, "no header (%s)", n == 0 ? "end" :
			    strerror(errno));
			goto out;
		}
		got += (size_t)n;
	}
	memcpy(&c->seed, hdr, sizeof(c->seed));
	ok = exchange(c, DOWN, UP) == 0;
out:
	report("connection", c, ok);
	(void)close(c->fd);
	free(c);
	return NULL;
}

static int
serve(const char *host, const char *port, unsigned long count)
{
	pthread_t t;
	struct conn *c;
	unsigned long accepted = 0;
	int lfd, fd, rc;

	if ((lfd = net_listen(host, port, 1024)) == -1)
		die(prog, EX_ERR, "listen %s:%s: %s", host, port,
		    strerror(errno));
	while (count == 0 || accepted < count) {
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die(prog, EX_ERR, "accept: %s", strerror(errno));
		}
		accepted++;
		if ((c = calloc(1, sizeof(*c))) == NULL)
			die(prog, EX_ERR, "out of memory");
		c->fd = fd;
		if ((rc = pthread_create(&t, NULL, serve_one, c)) != 0)
			die(prog, EX_ERR, "pthread_create: %s", strerror(rc));
		pthread_detach(t);
	}
	(void)close(lfd);
	pthread_mutex_lock(&lock);
	while (ndone < count)
		pthread_cond_wait(&done_cond, &lock);
	pthread_mutex_unlock(&lock);
	printf("streams: served %lu ok=%lu bad=%lu\n", ndone, nok, nbad);
	return nbad == 0 ? EX_OK : EX_ERR;
}

static const char *run_host, *run_port;

static void *
run_one(void *arg)
{
	struct conn *c = arg;
	unsigned char hdr[8];
	int ok = 0;

	if ((c->fd = net_dial(run_host, run_port)) == -1) {
		set_err(&c->tx, "connect: %s", strerror(errno));
		goto out;
	}
	set_timeouts(c->fd);
	memcpy(hdr, &c->seed, sizeof(hdr));
	if (net_write_all(c->fd, (const char *)hdr, sizeof(hdr)) == -1) {
		set_err(&c->tx, "send header: %s", strerror(errno));
		goto out;
	}
	ok = exchange(c, UP, DOWN) == 0;
out:
	report("connection", c, ok);
	if (c->fd != -1)
		(void)close(c->fd);
	return NULL;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
run(const char *host, const char *port, unsigned long conns)
{
	struct conn *c;
	pthread_t *t;
	pthread_attr_t attr;
	unsigned long i;
	long long t0, ms;
	uint64_t nonce = (uint64_t)time(NULL) << 32;
	int rc;

	run_host = host;
	run_port = port;
	if ((c = calloc(conns, sizeof(*c))) == NULL ||
	    (t = calloc(conns, sizeof(*t))) == NULL)
		die(prog, EX_ERR, "out of memory");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	t0 = now_ms();
	for (i = 0; i < conns; i++) {
		c[i].fd = -1;
		c[i].seed = nonce | i;
		if ((rc = pthread_create(&t[i], &attr, run_one, &c[i])) != 0)
			die(prog, EX_ERR, "pthread_create: %s", strerror(rc));
	}
	for (i = 0; i < conns; i++)
		pthread_join(t[i], NULL);
	ms = now_ms() - t0;
	printf("streams: conns=%lu bytes=%llu ok=%lu bad=%lu ms=%lld "
	    "MiB/s=%.1f\n", conns, (unsigned long long)nbytes, nok, nbad, ms,
	    ms > 0 ? 2.0 * (double)conns * (double)nbytes / 1048576.0 /
	    ((double)ms / 1000.0) : 0.0);
	free(c);
	free(t);
	return nbad == 0 ? EX_OK : EX_ERR;
}

int
main(int argc, char **argv)
{
	unsigned long count = 0;
	int c;

	setvbuf(stderr, NULL, _IOLBF, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		goto usage;
	optind = 2;
	while ((c = getopt(argc, argv, "n:")) != -1) {
		switch (c) {
		case 'n': count = strtoul(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (strcmp(argv[1], "serve") == 0 && argc - optind == 3) {
		nbytes = strtoull(argv[optind + 2], NULL, 10);
		return serve(argv[optind], argv[optind + 1], count);
	}
	if (strcmp(argv[1], "run") == 0 && argc - optind == 4 && count == 0) {
		nbytes = strtoull(argv[optind + 3], NULL, 10);
		count = strtoul(argv[optind + 2], NULL, 10);
		if (count == 0)
			goto usage;
		return run(argv[optind], argv[optind + 1], count);
	}
usage:
	fprintf(stderr, "usage: streams serve [-n COUNT] HOST PORT BYTES\n"
	    "       streams run HOST PORT CONNS BYTES\n");
	return EX_ERR;
}
