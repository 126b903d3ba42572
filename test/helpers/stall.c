/*
 * stall HOST PORT HELLO COUNT
 *
 * Slow clients: open COUNT connections to HOST:PORT, send each the first
 * half of the file HELLO (a ClientHello record) and then nothing more.
 * Prints "stalled N" once N connections have sent their half, then holds
 * them all open until killed, or until the peer closes every one of them
 * (then prints "closed N" and exits 0). Exits 1 when a connection cannot
 * be made.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "stall";

int
main(int argc, char **argv)
{
	unsigned char hello[65536];
	struct pollfd *pfd;
	struct rlimit rl;
	ssize_t len;
	long n, i, left;
	char c;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 5 || (n = atol(argv[4])) <= 0)
		die(prog, EX_ERR, "usage: stall HOST PORT HELLO COUNT");
	if ((fd = open(argv[3], O_RDONLY)) == -1 ||
	    (len = read(fd, hello, sizeof(hello))) <= 1)
		die(prog, EX_ERR, "%s: cannot read a ClientHello", argv[3]);
	close(fd);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((pfd = calloc((size_t)n, sizeof(*pfd))) == NULL)
		die(prog, EX_ERR, "out of memory");
	for (i = 0; i < n; i++) {
		if ((fd = net_dial(argv[1], argv[2])) == -1)
			die(prog, EX_CONNECT, "connection %ld: %s", i + 1,
			    strerror(errno));
		if (net_write_all(fd, (const char *)hello, (size_t)len / 2) ==
		    -1)
			die(prog, EX_ERR, "connection %ld: send: %s", i + 1,
			    strerror(errno));
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
	}
	printf("stalled %ld\n", n);
	for (left = n; left > 0; ) {
		if (poll(pfd, (nfds_t)n, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(prog, EX_ERR, "poll: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			if (recv(pfd[i].fd, &c, 1, MSG_DONTWAIT) > 0)
				continue;	/* an alert: read to the end */
			close(pfd[i].fd);
			pfd[i].fd = -1;
			left--;
		}
	}
	printf("closed %ld\n", n);
	return EX_OK;
}
