/*
 * xfer [-l] [-w] [-A] [-p MS] [-r RATE] HOST PORT INFILE OUTFILE
 *
 * One TCP connection, both directions at once: a thread sends INFILE and
 * then shuts the write side (FIN); the main thread writes everything
 * received to OUTFILE until the peer's end. Compare the files afterwards.
 *   -l       listen on HOST:PORT and serve one connection, instead of
 *            connecting to it
 *   -w       send only after the peer's end: a server that reads a whole
 *            request, then answers
 *   -p MS    wait MS milliseconds before sending
 *   -r RATE  send at most RATE bytes a second, in ten slices a second
 *   -A       abort: once INFILE is sent, reset the connection (RST, by
 *            SO_LINGER 0) and exit 0, instead of shutting the write side
 * Standard error gets "xfer: sent N bytes" and "xfer: received N bytes,
 * eof" (or "reset", "error ...") as each direction ends.
 * Exit: 0 both directions ended cleanly; 2 cannot connect; 3 the peer reset
 * the connection (at once, without waiting for the sender); 4 sending
 * failed; 1 other errors.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "xfer";

static int sock = -1;
static int infd = -1;
static long pause_ms, rate;
static int wait_eof;
static int abort_conn;
static int send_failed;
static int peer_done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static void
sleep_until(struct timespec *t, long ms)
{
	t->tv_nsec += (ms % 1000) * 1000000L;
	t->tv_sec += ms / 1000 + t->tv_nsec / 1000000000L;
	t->tv_nsec %= 1000000000L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) != 0)
		;
}

static void *
sender(void *arg)
{
	char buf[16384];
	unsigned long long total = 0;
	struct timespec next;
	size_t slice = 0, left = 0;	/* bytes a tenth of a second, and left */
	ssize_t n;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &next);
	if (pause_ms > 0)
		sleep_until(&next, pause_ms);
	if (wait_eof) {
		pthread_mutex_lock(&lock);
		while (!peer_done)
			pthread_cond_wait(&done_cond, &lock);
		pthread_mutex_unlock(&lock);
	}
	if (rate > 0)
		left = slice = rate / 10 > 0 ? (size_t)(rate / 10) : 1;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		n = read(infd, buf, rate > 0 && left < sizeof(buf) ? left :
		    sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			die(prog, EX_ERR, "read input: %s", strerror(errno));
		if (n == 0)
			break;
		if (net_write_all(sock, buf, (size_t)n) == -1) {
			fprintf(stderr, "%s: send after %llu bytes: %s\n",
			    prog, total, strerror(errno));
			send_failed = 1;
			return NULL;
		}
		total += (unsigned long long)n;
		if (rate > 0 && (left -= (size_t)n) == 0) {
			sleep_until(&next, 100);
			left = slice;
		}
	}
	fprintf(stderr, "%s: sent %llu bytes\n", prog, total);
	if (abort_conn) {
		struct linger lg = { 1, 0 };

		if (setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == -1)
			die(prog, EX_ERR, "SO_LINGER: %s", strerror(errno));
		close(sock);
		fprintf(stderr, "%s: reset the connection\n", prog);
		exit(EX_OK);
	}
	if (shutdown(sock, SHUT_WR) == -1) {
		fprintf(stderr, "%s: shutdown: %s\n", prog, strerror(errno));
		send_failed = 1;
	}
	return NULL;
}

/* Copy the socket to outfd until the end; 0, or the errno that ended it. */
static int
receive(int outfd)
{
	char buf[65536];
	unsigned long long total = 0;
	ssize_t n, k;
	int err = 0;

	for (;;) {
		n = read(sock, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		total += (unsigned long long)n;
		for (k = 0; k < n; ) {
			ssize_t w = write(outfd, buf + k, (size_t)(n - k));
			if (w == -1 && errno == EINTR)
				continue;
			if (w == -1)
				die(prog, EX_ERR, "write output: %s",
				    strerror(errno));
			k += w;
		}
	}
	if (err == 0)
		fprintf(stderr, "%s: received %llu bytes, eof\n", prog, total);
	else
		fprintf(stderr, "%s: received %llu bytes, %s: %s\n", prog,
		    total, err == ECONNRESET ? "reset" : "error",
		    strerror(err));
	return err;
}

int
main(int argc, char **argv)
{
	pthread_t t;
	int c, lfd, outfd, err, listen_mode = 0;

	setvbuf(stderr, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "lwAp:r:")) != -1) {
		switch (c) {
		case 'A': abort_conn = 1; break;
		case 'l': listen_mode = 1; break;
		case 'w': wait_eof = 1; break;
		case 'p': pause_ms = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind != 4)
		goto usage;
	if ((infd = open(argv[optind + 2], O_RDONLY)) == -1)
		die(prog, EX_ERR, "%s: %s", argv[optind + 2], strerror(errno));
	if ((outfd = open(argv[optind + 3], O_WRONLY | O_CREAT | O_TRUNC,
	    0644)) == -1)
		die(prog, EX_ERR, "%s: %s", argv[optind + 3], strerror(errno));
	if (listen_mode) {
		lfd = net_listen(argv[optind], argv[optind + 1], 16);
		if (lfd == -1)
			die(prog, EX_ERR, "listen %s:%s: %s", argv[optind],
			    argv[optind + 1], strerror(errno));
		while ((sock = accept(lfd, NULL, NULL)) == -1)
			if (errno != EINTR && errno != ECONNABORTED)
				die(prog, EX_ERR, "accept: %s",
				    strerror(errno));
		close(lfd);	/* one connection only */
	} else if ((sock = net_dial(argv[optind], argv[optind + 1])) == -1) {
		die(prog, EX_CONNECT, "connect %s:%s: %s", argv[optind],
		    argv[optind + 1], strerror(errno));
	}
	if (pthread_create(&t, NULL, sender, NULL) != 0)
		die(prog, EX_ERR, "pthread_create failed");
	err = receive(outfd);
	if (close(outfd) == -1)
		die(prog, EX_ERR, "close output: %s", strerror(errno));
	if (err == ECONNRESET)
		exit(EX_RESET);
	pthread_mutex_lock(&lock);
	peer_done = 1;
	pthread_cond_signal(&done_cond);
	pthread_mutex_unlock(&lock);
	pthread_join(t, NULL);
	if (err != 0)
		return EX_ERR;
	return send_failed ? EX_SEND : EX_OK;
usage:
	fprintf(stderr,
	    "usage: xfer [-l] [-w] [-A] [-p MS] [-r RATE] HOST PORT INFILE OUTFILE\n");
	return EX_ERR;
}
