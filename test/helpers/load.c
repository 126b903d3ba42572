/*
 * load seq HOST PORT COUNT [BYTES]
 * load conc [-w FILE] HOST PORT COUNT [BYTES]
 *
 * Many short sessions against an echo server (sink -e), directly or
 * through tlsgate. Each session sends BYTES (default 16) that name it and
 * must get exactly those bytes back, then ends cleanly: the client shuts
 * its write side and reads the echo server's end (EOF).
 *   seq   COUNT sessions one after another: connect, send, shut the write
 *         side, read the echo to its end, close.
 *   conc  COUNT connections open at once: all connect, all send, every
 *         echo is read while all of them are still open; only then does
 *         each shut its write side and read to its end. With -w, print
 *         "open COUNT" on standard output once every echo is in, and wait
 *         (at most 120 s) for FILE to exist before ending the sessions, so
 *         that a test can look at the gateway while they are all live.
 * Every socket wait is bounded (20 s). Prints one line,
 * "load: MODE sessions=N failed=F ms=T rate=R/s", and for each of the
 * first few failures a line on standard error saying what went wrong.
 * Exit: 0 when every session echoed and ended cleanly, 1 otherwise.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define MAX_BYTES	4096
#define WAIT_S		20

static const char *prog = "load";
static const char *host, *port;
static size_t nbytes = 16;
static unsigned long failed;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 2, 3)))
failure(unsigned long i, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (++failed > 10)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: session %lu: %s\n", prog, i, msg);
}

/* The bytes session i sends: its number, then a pattern of it. */
static void
payload(unsigned long i, char *buf)
{
	size_t k;
	int n;

	n = snprintf(buf, nbytes, "session %lu ", i);
	for (k = n > 0 && (size_t)n < nbytes ? (size_t)n : 0; k < nbytes; k++)
		buf[k] = (char)('a' + (i + k) % 26);
}

/* Read exactly len bytes; 0, or -1 with a description in why. */
static int
read_exact(int fd, char *buf, size_t len, char *why, size_t whylen)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, whylen, "read after %zu of %zu bytes: %s",
			    got, len, errno == EAGAIN ? "timed out" :
			    strerror(errno));
			return -1;
		}
		if (n == 0) {
			snprintf(why, whylen, "end after %zu of %zu bytes",
			    got, len);
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* Expect the peer's clean end and nothing before it; 0 or -1 (why). */
static int
read_end(int fd, char *why, size_t whylen)
{
	char c;
	ssize_t n;

	while ((n = read(fd, &c, 1)) == -1 && errno == EINTR)
		;
	if (n == 0)
		return 0;
	snprintf(why, whylen, "%s at the end", n > 0 ? "extra bytes" :
	    errno == EAGAIN ? "timed out" : strerror(errno));
	return -1;
}

/* Shut the write side, then read_end(). */
static int
finish(int fd, char *why, size_t whylen)
{
	if (shutdown(fd, SHUT_WR) == -1) {
		snprintf(why, whylen, "shutdown: %s", strerror(errno));
		return -1;
	}
	return read_end(fd, why, whylen);
}

static int
dial(void)
{
	struct timeval tv = { WAIT_S, 0 };
	int fd;

	if ((fd = net_dial(host, port)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
run_seq(unsigned long count)
{
	char out[MAX_BYTES], in[MAX_BYTES], why[160];
	unsigned long i;
	int fd;

	for (i = 0; i < count; i++) {
		if ((fd = dial()) == -1) {
			failure(i, "connect: %s", strerror(errno));
			continue;
		}
		payload(i, out);
		if (net_write_all(fd, out, nbytes) == -1)
			failure(i, "send: %s", strerror(errno));
		else if (shutdown(fd, SHUT_WR) == -1)
			failure(i, "shutdown: %s", strerror(errno));
		else if (read_exact(fd, in, nbytes, why, sizeof(why)) == -1)
			failure(i, "%s", why);
		else if (memcmp(in, out, nbytes) != 0)
			failure(i, "echo differs from what was sent");
		else if (read_end(fd, why, sizeof(why)) == -1)
			failure(i, "%s", why);
		(void)close(fd);
	}
}

static void
wait_file(const char *path)
{
	struct stat st;
	long long end = now_ms() + 120000;

	while (stat(path, &st) == -1) {
		if (now_ms() > end)
			die(prog, EX_ERR, "no %s after 120 s", path);
		usleep(10000);
	}
}

static void
run_conc(unsigned long count, const char *hold)
{
	char out[MAX_BYTES], in[MAX_BYTES], why[160];
	unsigned long i;
	int *fds;

	if ((fds = calloc(count, sizeof(*fds))) == NULL)
		die(prog, EX_ERR, "out of memory");
	for (i = 0; i < count; i++)
		if ((fds[i] = dial()) == -1)
			failure(i, "connect: %s", strerror(errno));
	for (i = 0; i < count; i++) {
		if (fds[i] == -1)
			continue;
		payload(i, out);
		if (net_write_all(fds[i], out, nbytes) == -1) {
			failure(i, "send: %s", strerror(errno));
			goto drop;
		}
		continue;
drop:
		(void)close(fds[i]);
		fds[i] = -1;
	}
	for (i = 0; i < count; i++) {
		if (fds[i] == -1)
			continue;
		payload(i, out);
		if (read_exact(fds[i], in, nbytes, why, sizeof(why)) == -1)
			failure(i, "%s", why);
		else if (memcmp(in, out, nbytes) != 0)
			failure(i, "echo differs from what was sent");
		else
			continue;
		(void)close(fds[i]);
		fds[i] = -1;
	}
	if (hold != NULL) {
		printf("open %lu\n", count - failed);
		fflush(stdout);
		wait_file(hold);
	}
	for (i = 0; i < count; i++) {
		if (fds[i] == -1)
			continue;
		if (finish(fds[i], why, sizeof(why)) == -1)
			failure(i, "%s", why);
		(void)close(fds[i]);
	}
	free(fds);
}

int
main(int argc, char **argv)
{
	const char *mode, *hold = NULL;
	unsigned long count;
	long long t0, ms;
	struct rlimit rl;
	int c;

	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 2)
		goto usage;
	mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "w:")) != -1) {
		switch (c) {
		case 'w': hold = optarg; break;
		default: goto usage;
		}
	}
	if (argc - optind < 3 || argc - optind > 4)
		goto usage;
	host = argv[optind];
	port = argv[optind + 1];
	count = strtoul(argv[optind + 2], NULL, 10);
	if (argc - optind == 4)
		nbytes = strtoul(argv[optind + 3], NULL, 10);
	if (count == 0 || nbytes < 1 || nbytes > MAX_BYTES)
		die(prog, EX_ERR, "COUNT must be > 0 and BYTES 1..%d",
		    MAX_BYTES);
	/* conc holds COUNT sockets: raise the soft limit to the hard one. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	t0 = now_ms();
	if (strcmp(mode, "seq") == 0 && hold == NULL)
		run_seq(count);
	else if (strcmp(mode, "conc") == 0)
		run_conc(count, hold);
	else
		goto usage;
	ms = now_ms() - t0;
	printf("load: %s sessions=%lu failed=%lu ms=%lld rate=%lld/s\n", mode,
	    count, failed, ms, ms > 0 ? (long long)count * 1000 / ms : 0);
	return failed == 0 ? EX_OK : EX_ERR;
usage:
	fprintf(stderr, "usage: load seq HOST PORT COUNT [BYTES]\n"
	    "       load conc [-w FILE] HOST PORT COUNT [BYTES]\n");
	return EX_ERR;
}
