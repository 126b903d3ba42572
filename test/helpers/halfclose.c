/*
 * halfclose HOST PORT [STRING]
 *
 * Connect, send STRING (or standard input to its end), shut the write side
 * (FIN), then copy everything the peer sends to standard output until its
 * end. The way a request/response client uses a half-close.
 * Exit: 0 clean end, 2 cannot connect, 3 reset by the peer, 1 other errors.
 * A line on standard error tells how it ended.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "halfclose";

static void
send_input(int fd, int argc, char **argv)
{
	char buf[16384];
	ssize_t n;

	if (argc == 4) {
		if (net_write_all(fd, argv[3], strlen(argv[3])) == -1)
			goto fail;
		return;
	}
	for (;;) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0)
			return;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die(prog, EX_ERR, "read stdin: %s", strerror(errno));
		}
		if (net_write_all(fd, buf, (size_t)n) == -1)
			goto fail;
	}
fail:
	die(prog, errno == ECONNRESET || errno == EPIPE ? EX_RESET : EX_SEND,
	    "send: %s", strerror(errno));
}

int
main(int argc, char **argv)
{
	char buf[16384];
	unsigned long long total = 0;
	ssize_t n;
	int fd;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: halfclose HOST PORT [STRING]\n");
		return EX_ERR;
	}
	if ((fd = net_dial(argv[1], argv[2])) == -1)
		die(prog, EX_CONNECT, "connect %s:%s: %s", argv[1], argv[2],
		    strerror(errno));
	send_input(fd, argc, argv);
	/* ENOTCONN: the peer has already closed or reset; read tells which. */
	if (shutdown(fd, SHUT_WR) == -1 && errno != ENOTCONN)
		die(prog, EX_ERR, "shutdown: %s", strerror(errno));
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die(prog, errno == ECONNRESET ? EX_RESET : EX_ERR,
			    "read after %llu bytes: %s", total,
			    strerror(errno));
		}
		total += (unsigned long long)n;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			die(prog, EX_ERR, "write stdout failed");
	}
	if (fflush(stdout) != 0)
		die(prog, EX_ERR, "write stdout failed");
	fprintf(stderr, "%s: eof after %llu bytes\n", prog, total);
	return EX_OK;
}
