/*
 * bench/server.c: the plaintext server at the end of the benchmark chain.
 *
 *   server PORT MODE [BYTES]
 *     echo          send back everything; close after the client's EOF
 *     discard       read until EOF, then close
 *     source BYTES  send BYTES, then shutdown(SHUT_WR); read and drop
 *                   whatever arrives; close once both are done
 *
 * One thread, epoll, non-blocking sockets on 127.0.0.1 only, so that
 * thousands of idle sessions cost it little. Prints "ready" once
 * listening. Runs until killed.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK	(256 * 1024)

enum mode { ECHO, DISCARD, SOURCE };

struct conn {
	int		 fd;
	int		 in_eof;	/* read EOF from the client */
	int		 out_done;	/* source: all sent and SHUT_WR */
	uint64_t	 left;		/* source: bytes still to send */
	unsigned char	*pend;		/* echo: bytes not yet written */
	size_t		 npend, opend;
};

static enum mode	 mode;
static uint64_t		 source_bytes;
static int		 ep;
static unsigned char	 buf[CHUNK];

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
conn_close(struct conn *c)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	(void)close(c->fd);
	free(c->pend);
	free(c);
}

static void
conn_watch(struct conn *c, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.data.ptr = c;
	if (!c->in_eof && c->npend == 0)
		ev.events |= EPOLLIN;
	if (c->npend > 0 || (mode == SOURCE && !c->out_done))
		ev.events |= EPOLLOUT;
	if (epoll_ctl(ep, op, c->fd, &ev) == -1)
		die("epoll_ctl");
}

/* Flush what echo still owes; 0 when all is written, 1 if blocked, -1. */
static int
flush_pending(struct conn *c)
{
	ssize_t n;

	while (c->npend > 0) {
		n = send(c->fd, c->pend + c->opend, c->npend, MSG_NOSIGNAL);
		if (n == -1)
			return (errno == EAGAIN || errno == EINTR) ? 1 : -1;
		c->opend += (size_t)n;
		c->npend -= (size_t)n;
	}
	return 0;
}

/* Source: send until blocked or done; -1 on error. */
static int
pump(struct conn *c)
{
	ssize_t n;
	size_t len;

	while (c->left > 0) {
		len = c->left < CHUNK ? (size_t)c->left : CHUNK;
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n == -1)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		c->left -= (uint64_t)n;
	}
	if (!c->out_done) {
		(void)shutdown(c->fd, SHUT_WR);
		c->out_done = 1;
	}
	return 0;
}

/* Read what is there; echo it back in echo mode. -1 on error. */
static int
drain(struct conn *c)
{
	ssize_t n, w;

	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == -1)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		if (n == 0) {
			c->in_eof = 1;
			return 0;
		}
		if (mode != ECHO)
			continue;
		w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
		if (w == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w == -1)
			w = 0;
		if (w < n) {	/* keep the rest, stop reading until sent */
			if ((c->pend = realloc(c->pend, (size_t)(n - w))) ==
			    NULL)
				die("realloc");
			memcpy(c->pend, buf + w, (size_t)(n - w));
			c->npend = (size_t)(n - w);
			c->opend = 0;
			return 0;
		}
	}
}

static void
handle(struct conn *c, uint32_t events)
{
	int rc;

	if ((events & EPOLLOUT) || c->npend > 0) {
		if ((rc = flush_pending(c)) == -1)
			goto close;
		if (mode == SOURCE && pump(c) == -1)
			goto close;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->in_eof &&
	    c->npend == 0 && drain(c) == -1)
		goto close;
	if (c->in_eof && c->npend == 0 &&
	    (mode != SOURCE || c->out_done))
		goto close;
	if ((events & (EPOLLERR)) != 0)
		goto close;
	conn_watch(c, EPOLL_CTL_MOD);
	return;
close:
	conn_close(c);
}

static void
accept_all(int lfd)
{
	struct conn *c;
	int fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    != -1) {
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		if ((c = calloc(1, sizeof(*c))) == NULL)
			die("calloc");
		c->fd = fd;
		c->left = (mode == SOURCE) ? source_bytes : 0;
		c->out_done = (mode != SOURCE);
		conn_watch(c, EPOLL_CTL_ADD);
		if (mode == SOURCE)
			handle(c, EPOLLOUT);
	}
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		perror("accept4");	/* EMFILE and the like: try again */
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct epoll_event ev, evs[256];
	int lfd, n, i, one = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: server PORT echo|discard|source "
		    "[BYTES]\n");
		return 2;
	}
	if (strcmp(argv[2], "echo") == 0)
		mode = ECHO;
	else if (strcmp(argv[2], "discard") == 0)
		mode = DISCARD;
	else if (strcmp(argv[2], "source") == 0 && argc > 3) {
		mode = SOURCE;
		source_bytes = strtoull(argv[3], NULL, 10);
	} else {
		fprintf(stderr, "server: bad mode %s\n", argv[2]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(buf, 'x', sizeof(buf));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		die("socket");
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("bind");
	if (listen(lfd, 4096) == -1)
		die("listen");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		die("epoll_ctl");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if ((n = epoll_wait(ep, evs, 256, -1)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				accept_all(lfd);
			else
				handle(evs[i].data.ptr, evs[i].events);
		}
	}
}
