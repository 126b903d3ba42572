/*
 * sink [-r|-e] [-n] [-b BACKLOG] HOST PORT
 *
 * A TCP server that accepts connections and never reads from them: the
 * peer's writes fill the socket buffers and then block. It logs
 * "sink: accept PEER" on standard error for every connection, so a test can
 * tell whether anything connected at all.
 *   -r          read after all: copy every connection's bytes to standard
 *               output and log "sink: eof N bytes" or "sink: reset ..."
 *   -e          echo: send every connection's bytes back to it, and shut
 *               its write side at its end; logs like -r
 *   -n          never accept either (connections wait in the backlog)
 *   -b BACKLOG  listen() backlog (default 16)
 * Runs until killed.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "sink";
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int echo;

static void *
reader(void *arg)
{
	int fd = (int)(long)arg;
	char buf[16384];
	unsigned long long total = 0;
	ssize_t n, w;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (unsigned long long)n;
		if (echo) {
			if (net_write_all(fd, buf, (size_t)n) == -1)
				break;
			continue;
		}
		pthread_mutex_lock(&out_lock);
		for (w = 0; w < n; ) {
			ssize_t k = write(STDOUT_FILENO, buf + w, (size_t)(n - w));
			if (k == -1 && errno == EINTR)
				continue;
			if (k == -1)
				break;
			w += k;
		}
		pthread_mutex_unlock(&out_lock);
	}
	if (n == 0 && echo)
		shutdown(fd, SHUT_WR);
	if (n == 0)
		fprintf(stderr, "%s: eof %llu bytes\n", prog, total);
	else
		fprintf(stderr, "%s: %s after %llu bytes: %s\n", prog,
		    errno == ECONNRESET ? "reset" : "error", total,
		    strerror(errno));
	close(fd);
	return NULL;
}

static void
peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, len, "%s:%u", host, port);
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char name[80];
	pthread_t t;
	int c, fd, lfd, do_read = 0, never = 0, backlog = 16;

	setvbuf(stderr, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "ernb:")) != -1) {
		switch (c) {
		case 'e': echo = do_read = 1; break;
		case 'r': do_read = 1; break;
		case 'n': never = 1; break;
		case 'b': backlog = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	if ((lfd = net_listen(argv[optind], argv[optind + 1], backlog)) == -1)
		die(prog, EX_ERR, "listen %s:%s: %s", argv[optind],
		    argv[optind + 1], strerror(errno));
	if (never)
		for (;;)
			pause();
	for (;;) {
		sl = sizeof(ss);
		fd = accept(lfd, (struct sockaddr *)&ss, &sl);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die(prog, EX_ERR, "accept: %s", strerror(errno));
		}
		peer_name(&ss, name, sizeof(name));
		fprintf(stderr, "%s: accept %s\n", prog, name);
		if (do_read) {
			if (pthread_create(&t, NULL, reader, (void *)(long)fd) != 0)
				die(prog, EX_ERR, "pthread_create failed");
			pthread_detach(t);
		}
		/* else: keep fd open and unread until we are killed */
	}
usage:
	fprintf(stderr, "usage: sink [-r|-e] [-n] [-b BACKLOG] HOST PORT\n");
	return EX_ERR;
}
