/*
 * storm HOST PORT N SECONDS
 *
 * Open N connections to HOST:PORT at once, send one byte on each, hold
 * them for SECONDS, then close them all. Prints one line:
 *   opened=N refused=N closed=N open=N
 * opened: connect() succeeded; refused: connect() failed; closed: the
 * peer ended the connection (EOF or reset) while held; open: still open
 * at the end. Needs N + a few descriptors of its own.
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "storm";

int
main(int argc, char *argv[])
{
	struct pollfd *pfd;
	unsigned opened = 0, refused = 0, closed = 0, open_now = 0;
	char c;
	time_t end;
	ssize_t r;
	int i, n, rc;

	if (argc != 5 || (n = atoi(argv[3])) < 1)
		die(prog, EX_ERR, "usage: storm HOST PORT N SECONDS");
	if ((pfd = calloc((size_t)n, sizeof(*pfd))) == NULL)
		die(prog, EX_ERR, "out of memory");
	for (i = 0; i < n; i++) {
		pfd[i].fd = net_dial(argv[1], argv[2]);
		pfd[i].events = POLLIN;
		if (pfd[i].fd == -1) {
			refused++;
			continue;
		}
		opened++;
		(void)send(pfd[i].fd, "x", 1, MSG_NOSIGNAL);
	}
	end = time(NULL) + atoi(argv[4]);
	while (time(NULL) < end) {
		if ((rc = poll(pfd, (nfds_t)n, 200)) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			/* Data is an echo; the end or a reset counts. */
			r = recv(pfd[i].fd, &c, 1, MSG_DONTWAIT);
			if (r == 0 || (r == -1 && errno != EAGAIN)) {
				(void)close(pfd[i].fd);
				pfd[i].fd = -1;
				closed++;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (pfd[i].fd != -1) {
			open_now++;
			(void)close(pfd[i].fd);
		}
	}
	printf("opened=%u refused=%u closed=%u open=%u\n", opened, refused,
	    closed, open_now);
	free(pfd);
	return EX_OK;
}
