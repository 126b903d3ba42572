/*
 * bench/load.c: the client side of the benchmark, on 127.0.0.1 only.
 *
 *   load bulk PORT SEND RECV STREAMS
 *	STREAMS connections at once, each sends SEND bytes then
 *	shutdown(SHUT_WR), and reads until EOF, which must come after
 *	exactly RECV bytes. Prints MiB/s of all bytes moved.
 *   load rate PORT CLIENTS SECONDS
 *	CLIENTS threads, each: connect, send 1 byte, read it back, close;
 *	again until SECONDS pass. Prints sessions per second.
 *   load rr PORT COUNT SIZE
 *	One connection; COUNT times: send SIZE bytes, read SIZE back.
 *	Prints the latency percentiles in microseconds.
 *   load idle PORT
 *	Reads commands on stdin: "open N" opens N more connections, each
 *	proven with a 1-byte echo; "check" sends 1 byte on every one and
 *	counts the echoes; "quit". Answers one line per command.
 *   load scrape PATH COUNT [GAP_US]
 *	COUNT times, GAP_US microseconds apart (default 0): connect to the
 *	unix socket PATH, send an HTTP GET, read the answer to its end (a
 *	stats scrape).
 *
 * Every wait is bounded (TIMEOUT_MS without progress fails). Output is
 * key=value on one line; errors go to stderr and exit status 1.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK		(256 * 1024)
#define TIMEOUT_MS	30000

static struct sockaddr_in target;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A blocking connection to the target, or -1. */
static int
dial(int nodelay)
{
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	set_timeouts(fd, TIMEOUT_MS);
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) == -1) {
		(void)close(fd);
		return -1;
	}
	if (nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	return fd;
}

/* ---- bulk ---- */

struct stream {
	pthread_t	 t;
	uint64_t	 send, recv;	/* to do, expected */
	uint64_t	 sent, got;
	int		 err;
};

static void *
stream_run(void *arg)
{
	static unsigned char out[CHUNK];	/* read-only after start */
	unsigned char *in;
	struct stream *s = arg;
	struct pollfd p;
	int fd, wr_done = 0, rd_done = 0;
	ssize_t n;
	size_t len;

	if ((in = malloc(CHUNK)) == NULL || (fd = dial(0)) == -1) {
		s->err = errno;
		free(in);
		return NULL;
	}
	if (s->send == 0) {
		/* Nothing to send: keep our side open until the data is in,
		   so that relays which end a session on the first EOF
		   (socat's -t) do not cut the download short. */
		wr_done = 1;
	}
	while (!rd_done || !wr_done) {
		p.fd = fd;
		p.events = (rd_done ? 0 : POLLIN) | (wr_done ? 0 : POLLOUT);
		p.revents = 0;
		n = poll(&p, 1, TIMEOUT_MS);
		if (n == 0) {
			s->err = ETIMEDOUT;
			break;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			s->err = errno;
			break;
		}
		if (!wr_done && (p.revents & (POLLOUT | POLLERR))) {
			len = s->send - s->sent < CHUNK ?
			    (size_t)(s->send - s->sent) : CHUNK;
			n = send(fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				s->err = errno;
				break;
			}
			if (n > 0)
				s->sent += (uint64_t)n;
			if (s->sent == s->send) {
				(void)shutdown(fd, SHUT_WR);
				wr_done = 1;
			}
		}
		if (!rd_done && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			n = recv(fd, in, CHUNK, MSG_DONTWAIT);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				s->err = errno;
				break;
			}
			if (n == 0)
				rd_done = 1;
			else if (n > 0)
				s->got += (uint64_t)n;
		}
	}
	if (s->err == 0 && (s->sent != s->send || s->got != s->recv))
		s->err = EPROTO;
	if (s->send == 0)
		(void)shutdown(fd, SHUT_WR);
	(void)close(fd);
	free(in);
	return NULL;
}

static int
run_bulk(uint64_t send, uint64_t recv, int nstreams)
{
	struct stream *s;
	uint64_t total = 0;
	double t0, t;
	int i, bad = 0;

	if ((s = calloc((size_t)nstreams, sizeof(*s))) == NULL)
		die("calloc");
	t0 = now();
	for (i = 0; i < nstreams; i++) {
		s[i].send = send;
		s[i].recv = recv;
		if (pthread_create(&s[i].t, NULL, stream_run, &s[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < nstreams; i++) {
		pthread_join(s[i].t, NULL);
		total += s[i].sent + s[i].got;
		if (s[i].err) {
			fprintf(stderr, "load: stream %d: %s (sent %llu/%llu, "
			    "got %llu/%llu)\n", i, strerror(s[i].err),
			    (unsigned long long)s[i].sent,
			    (unsigned long long)send,
			    (unsigned long long)s[i].got,
			    (unsigned long long)recv);
			bad++;
		}
	}
	t = now() - t0;
	printf("bytes=%llu secs=%.3f mibps=%.1f errors=%d\n",
	    (unsigned long long)total, t, (double)total / 1048576.0 / t, bad);
	return bad ? 1 : 0;
}

/* ---- rate ---- */

static atomic_long rate_ok, rate_err;
static double rate_end;

static void *
rate_run(void *arg)
{
	unsigned char b = 'x';
	int fd;

	(void)arg;
	while (now() < rate_end) {
		if ((fd = dial(1)) == -1) {
			atomic_fetch_add(&rate_err, 1);
			usleep(1000);
			continue;
		}
		if (send(fd, &b, 1, MSG_NOSIGNAL) == 1 &&
		    recv(fd, &b, 1, 0) == 1)
			atomic_fetch_add(&rate_ok, 1);
		else
			atomic_fetch_add(&rate_err, 1);
		(void)close(fd);
	}
	return NULL;
}

static int
run_rate(int clients, double secs)
{
	pthread_t *t;
	double t0;
	int i;

	if ((t = calloc((size_t)clients, sizeof(*t))) == NULL)
		die("calloc");
	t0 = now();
	rate_end = t0 + secs;
	for (i = 0; i < clients; i++)
		if (pthread_create(&t[i], NULL, rate_run, NULL) != 0)
			die("pthread_create");
	for (i = 0; i < clients; i++)
		pthread_join(t[i], NULL);
	t0 = now() - t0;
	printf("sessions=%ld secs=%.3f rate=%.1f errors=%ld\n",
	    atomic_load(&rate_ok), t0, (double)atomic_load(&rate_ok) / t0,
	    atomic_load(&rate_err));
	return 0;
}

/* ---- rr ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
exact(int fd, unsigned char *p, size_t len, int rd)
{
	ssize_t n;

	while (len > 0) {
		n = rd ? recv(fd, p, len, 0) : send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
run_rr(int count, size_t size)
{
	unsigned char *b;
	double *lat, t, sum = 0;
	int fd, i, warm = count / 20 + 10;

	if ((b = calloc(1, size)) == NULL ||
	    (lat = calloc((size_t)count, sizeof(*lat))) == NULL)
		die("calloc");
	if ((fd = dial(1)) == -1)
		die("connect");
	for (i = -warm; i < count; i++) {
		t = now();
		if (exact(fd, b, size, 0) == -1 || exact(fd, b, size, 1) == -1)
			die("rr");
		if (i >= 0) {
			lat[i] = (now() - t) * 1e6;
			sum += lat[i];
		}
	}
	(void)close(fd);
	qsort(lat, (size_t)count, sizeof(*lat), cmp_double);
	printf("count=%d p50=%.1f p99=%.1f mean=%.1f max=%.1f\n", count,
	    lat[count / 2], lat[(int)((double)count * 0.99)], sum / count,
	    lat[count - 1]);
	return 0;
}

/* ---- idle ---- */

struct iconn {
	int	 fd;
	int	 state;	/* 0 connecting, 1 waiting for echo, 2 idle, -1 dead */
};

static struct iconn	*conns;
static int		 nconns, cap, iep;

static void
iwatch(struct iconn *c, int op, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u32 = (uint32_t)(c - conns);
	(void)epoll_ctl(iep, op, c->fd, &ev);
}

static void
ikill(struct iconn *c)
{
	if (c->fd != -1) {
		(void)epoll_ctl(iep, EPOLL_CTL_DEL, c->fd, NULL);
		(void)close(c->fd);
	}
	c->fd = -1;
	c->state = -1;
}

/* Start a non-blocking connect for conns[i]. */
static void
istart(struct iconn *c)
{
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		c->state = -1;
		return;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = 0;
	if (connect(c->fd, (struct sockaddr *)&target, sizeof(target)) == -1 &&
	    errno != EINPROGRESS) {
		ikill(c);
		return;
	}
	iwatch(c, EPOLL_CTL_ADD, EPOLLOUT);
}

/* Advance conns[i] on an event; returns 1 when it has become idle. */
static int
istep(struct iconn *c, uint32_t events)
{
	unsigned char b = 'x';
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->state == 0) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0 || send(c->fd, &b, 1, MSG_NOSIGNAL) != 1) {
			ikill(c);
			return 0;
		}
		c->state = 1;
		iwatch(c, EPOLL_CTL_MOD, EPOLLIN);
		return 0;
	}
	if (c->state == 1 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		if (recv(c->fd, &b, 1, 0) != 1) {
			ikill(c);
			return 0;
		}
		c->state = 2;
		iwatch(c, EPOLL_CTL_MOD, 0);
		return 1;
	}
	return 0;
}

/* Drive the connections in [from, to) to idle, window at a time. */
static int
idrive(int from, int to, int window, int start)
{
	struct epoll_event evs[256];
	int next = from, busy = 0, done = 0, n, i;
	double last = now();

	while (next < to || busy > 0) {
		while (start && next < to && busy < window) {
			istart(&conns[next++]);
			if (conns[next - 1].state == 0)
				busy++;
		}
		if (!start && next < to) {	/* check: all at once */
			for (; next < to; next++)
				busy += (conns[next].state == 1);
		}
		if (busy == 0)
			continue;
		if ((n = epoll_wait(iep, evs, 256, 1000)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		if (n > 0)
			last = now();
		else if (now() - last > TIMEOUT_MS / 1000.0)
			break;
		for (i = 0; i < n; i++) {
			struct iconn *c = &conns[evs[i].data.u32];
			int was = c->state;

			if (istep(c, evs[i].events))
				done++;
			if (c->state == -1 && was >= 0)
				busy--;
			else if (c->state == 2)
				busy--;
		}
	}
	for (i = from; i < to; i++)	/* stragglers count as dead */
		if (conns[i].state == 0 || conns[i].state == 1)
			ikill(&conns[i]);
	return done;
}

static int
run_idle(void)
{
	char line[128];
	unsigned char b = 'y';
	int n, i, ok, alive;
	double t;

	if ((iep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (sscanf(line, "open %d", &n) == 1) {
			if (nconns + n > cap) {
				cap = nconns + n;
				if ((conns = realloc(conns, (size_t)cap *
				    sizeof(*conns))) == NULL)
					die("realloc");
			}
			for (i = nconns; i < nconns + n; i++)
				conns[i].fd = -1;
			t = now();
			ok = idrive(nconns, nconns + n, 64, 1);
			nconns += n;
			printf("opened=%d of=%d secs=%.2f\n", ok, n, now() - t);
		} else if (strncmp(line, "check", 5) == 0) {
			alive = 0;
			for (i = 0; i < nconns; i++) {
				if (conns[i].state != 2)
					continue;
				alive++;
				if (send(conns[i].fd, &b, 1, MSG_NOSIGNAL) !=
				    1) {
					ikill(&conns[i]);
					continue;
				}
				conns[i].state = 1;
				iwatch(&conns[i], EPOLL_CTL_MOD, EPOLLIN);
			}
			t = now();
			ok = idrive(0, nconns, 0, 0);
			printf("echoed=%d of=%d secs=%.2f\n", ok, alive,
			    now() - t);
		} else if (strncmp(line, "quit", 4) == 0)
			break;
	}
	for (i = 0; i < nconns; i++)
		if (conns[i].fd != -1)
			(void)close(conns[i].fd);
	return 0;
}

static int
run_scrape(const char *path, int count, long gap_us)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	struct sockaddr_un sun;
	char buf[65536];
	ssize_t n;
	long bytes = 0;
	int i, fd, bad = 0;
	double t0 = now();

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	for (i = 0; i < count; i++) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
		    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
			bad++;
			if (fd != -1)
				(void)close(fd);
			continue;
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			bytes += n;
		(void)close(fd);
		if (gap_us > 0)
			(void)usleep((useconds_t)gap_us);
	}
	printf("scrapes=%d failed=%d bytes=%ld secs=%.3f\n", count, bad, bytes,
	    now() - t0);
	return bad ? 1 : 0;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: load bulk|rate|rr|idle PORT ...|"
		    "scrape PATH COUNT [GAP_US]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&target, 0, sizeof(target));
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(argv[2]));
	target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (strcmp(argv[1], "bulk") == 0 && argc == 6)
		return run_bulk(strtoull(argv[3], NULL, 10),
		    strtoull(argv[4], NULL, 10), atoi(argv[5]));
	if (strcmp(argv[1], "rate") == 0 && argc == 5)
		return run_rate(atoi(argv[3]), atof(argv[4]));
	if (strcmp(argv[1], "rr") == 0 && argc == 5)
		return run_rr(atoi(argv[3]), (size_t)atoi(argv[4]));
	if (strcmp(argv[1], "idle") == 0)
		return run_idle();
	if (strcmp(argv[1], "scrape") == 0 && (argc == 4 || argc == 5))
		return run_scrape(argv[2], atoi(argv[3]),
		    argc == 5 ? atol(argv[4]) : 0);
	fprintf(stderr, "load: bad arguments\n");
	return 2;
}
