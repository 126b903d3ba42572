/*
 * netfuzz HOST PORT HELLO SECONDS [SEED]: throw bad input at a TLS port.
 *
 * For SECONDS, connect again and again and send one case: the ClientHello
 * in file HELLO cut at every offset, the ClientHello with a few bytes
 * flipped, random bytes, malformed record headers (huge lengths, wrong
 * content types, an alert, application data before the handshake), or the
 * ClientHello followed by garbage. Each connection is then either
 * half-closed or dropped, and its answer read, briefly, until the gateway
 * closes it. Prints how many cases of each kind were sent; exits 1 if a
 * connection could not be made at all (the gateway died or stopped
 * accepting).
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define MAX_CASE	(64 * 1024)

enum kind { CUT, FLIP, RANDOM, HEADER, TRAILER, NKINDS };

static const char *const kind_names[NKINDS] = {
	"cut", "flip", "random", "header", "trailer",
};

static unsigned char hello[MAX_CASE];
static size_t hello_len;
static uint64_t rng;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t
make_case(enum kind k, size_t *cut, unsigned char *buf)
{
	size_t n, i;

	switch (k) {
	case CUT:		/* every prefix in turn */
		n = *cut;
		*cut = (*cut + 1) % (hello_len + 1);
		memcpy(buf, hello, n);
		return n;
	case FLIP:
		memcpy(buf, hello, hello_len);
		for (i = 1 + next() % 8; i > 0; i--)
			buf[next() % hello_len] ^= (unsigned char)(1 +
			    next() % 255);
		return hello_len;
	case RANDOM:
		n = 1 + next() % 4096;
		for (i = 0; i < n; i++)
			buf[i] = (unsigned char)next();
		return n;
	case HEADER: {
		static const unsigned char types[] = { 0x14, 0x15, 0x16, 0x17,
		    0x18, 0x00, 0xff };

		buf[0] = types[next() % sizeof(types)];
		buf[1] = 3;
		buf[2] = (unsigned char)(next() % 5);
		n = next() % 3 == 0 ? 0xffff : next() % 600;
		buf[3] = (unsigned char)(n >> 8);
		buf[4] = (unsigned char)n;
		n = 5 + next() % 600;
		for (i = 5; i < n; i++)
			buf[i] = (unsigned char)next();
		return n;
	}
	default:		/* TRAILER */
		memcpy(buf, hello, hello_len);
		n = hello_len + 1 + next() % 2048;
		for (i = hello_len; i < n; i++)
			buf[i] = (unsigned char)next();
		return n;
	}
}

/* Send one case, then half-close or drop, and read what comes back. */
static int
one(const char *host, const char *port, const unsigned char *buf, size_t n)
{
	struct timeval tv = { 0, 300000 };
	unsigned char junk[4096];
	ssize_t r;
	int fd;

	if ((fd = net_dial(host, port)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (n > 0)
		(void)send(fd, buf, n, MSG_NOSIGNAL);
	if (next() % 2 == 0) {
		(void)shutdown(fd, SHUT_WR);
		while ((r = recv(fd, junk, sizeof(junk), 0)) > 0)
			;
	}
	(void)close(fd);
	return 0;
}

int
main(int argc, char *argv[])
{
	static unsigned char buf[MAX_CASE];
	unsigned long count[NKINDS] = { 0 };
	size_t cut = 0, n;
	time_t end;
	FILE *fp;
	int k, failures = 0;

	if (argc < 5 || argc > 6)
		die("netfuzz", EX_ERR, "usage: netfuzz HOST PORT HELLO SECONDS "
		    "[SEED]");
	if ((fp = fopen(argv[3], "rb")) == NULL)
		die("netfuzz", EX_ERR, "cannot read %s", argv[3]);
	hello_len = fread(hello, 1, sizeof(hello) - 4096, fp);
	fclose(fp);
	if (hello_len < 6 || hello[0] != 0x16)
		die("netfuzz", EX_ERR, "%s holds no TLS handshake record",
		    argv[3]);
	rng = argc == 6 ? strtoull(argv[5], NULL, 10) : (uint64_t)time(NULL);
	rng |= 1;
	end = time(NULL) + atoi(argv[4]);
	for (k = 0; time(NULL) < end; k = (k + 1) % NKINDS) {
		n = make_case((enum kind)k, &cut, buf);
		if (one(argv[1], argv[2], buf, n) == -1) {
			if (++failures > 20)
				die("netfuzz", EX_CONNECT, "cannot connect to "
				    "%s:%s any more", argv[1], argv[2]);
			usleep(50000);
			continue;
		}
		failures = 0;
		count[k]++;
	}
	for (k = 0; k < NKINDS; k++)
		printf("%s%s=%lu", k ? " " : "", kind_names[k], count[k]);
	printf("\n");
	return EX_OK;
}
