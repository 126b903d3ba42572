/*
 * net.h: the few socket routines the test helpers share. Header-only
 * (static inline) so that each helper stays one program built from one .c.
 */
#ifndef TEST_HELPERS_NET_H
#define TEST_HELPERS_NET_H

#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit codes shared by the helpers, relied on by the tests. */
enum {
	EX_OK = 0,
	EX_ERR = 1,		/* usage, local errors */
	EX_CONNECT = 2,		/* could not connect */
	EX_RESET = 3,		/* the peer reset the connection */
	EX_SEND = 4		/* sending failed */
};

static inline void __attribute__((noreturn, format(printf, 3, 4)))
die(const char *prog, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", prog, msg);
	exit(code);
}

/* Connect to HOST:PORT, trying every address; -1 with errno on failure. */
static inline int
net_dial(const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, save = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd == -1) {
			save = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		save = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errno = save;
	return fd;
}

/* A listening socket on HOST:PORT; -1 with errno on failure. */
static inline int
net_listen(const char *host, const char *port, int backlog)
{
	struct addrinfo hints, *res;
	int fd, one = 1, save;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, backlog) == -1)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	save = errno;
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	errno = save;
	return -1;
}

/* Write all of buf; -1 with errno on failure. */
static inline int
net_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

#endif
