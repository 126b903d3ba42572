/*
 * netfuzz [-p] HOST PORT HELLO SECONDS [SEED]: throw bad input at a TLS
 * port.
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
 *
 * With -p the port reads a PROXY header first (accept_proxy). The cases
 * are then a good header (v1 or v2) cut at every offset, a good header
 * with bytes flipped, random bytes after a v1 or a v2 signature, a v2
 * header with a random version, command, family and length, or a v1 line
 * with one field garbled, each followed by the ClientHello; and a good
 * header followed by one of the TLS cases above.
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

enum kind {
	CUT, FLIP, RANDOM, HEADER, TRAILER, NTLS = TRAILER + 1,
	PP_CUT = NTLS, PP_FLIP, PP_RANDOM, PP_V2, PP_V1, PP_GOOD, NKINDS
};

static const char *const kind_names[NKINDS] = {
	"cut", "flip", "random", "header", "trailer",
	"pp_cut", "pp_flip", "pp_random", "pp_v2", "pp_v1", "pp_good",
};

static const unsigned char v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
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

/* A good PROXY header into buf, v1 or v2 at random; its length. */
static size_t
good_header(unsigned char *buf)
{
	static const unsigned char v2tcp4[16] = {
		0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 7, 127, 0, 0, 1,
		0x10, 0x92, 0x01, 0xbb
	};
	int n;

	if (next() % 2 == 0) {
		memcpy(buf, v2sig, sizeof(v2sig));
		memcpy(buf + sizeof(v2sig), v2tcp4, sizeof(v2tcp4));
		return sizeof(v2sig) + sizeof(v2tcp4);
	}
	n = snprintf((char *)buf, 108, "PROXY TCP4 192.0.2.7 127.0.0.1 %u "
	    "443\r\n", (unsigned)(1 + next() % 65535));
	return (size_t)n;
}

/* The ClientHello after n bytes of buf; the whole length. */
static size_t
then_hello(unsigned char *buf, size_t n)
{
	memcpy(buf + n, hello, hello_len);
	return n + hello_len;
}

static size_t
make_case(enum kind k, size_t *cut, unsigned char *buf)
{
	static const char *const v1bad[] = {
		"PROXY TCP4 192.0.2.7 127.0.0.1 4242\r\n",
		"PROXY TCP4 192.0.2.777 127.0.0.1 4242 443\r\n",
		"PROXY TCP6 192.0.2.7 127.0.0.1 4242 443\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 4242 65536\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 -1 443\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UDP4 192.0.2.7 127.0.0.1 4242 443\r\n",
		"PROXY TCP4 192.0.2.7  127.0.0.1 4242 443\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 4242 443\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 4242 443 \r\n",
		"proxy TCP4 192.0.2.7 127.0.0.1 4242 443\r\n",
	};
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
	case TRAILER:
		memcpy(buf, hello, hello_len);
		n = hello_len + 1 + next() % 2048;
		for (i = hello_len; i < n; i++)
			buf[i] = (unsigned char)next();
		return n;
	case PP_CUT:		/* a header cut short, then silence */
		n = good_header(buf);
		return 1 + next() % (n - 1);
	case PP_FLIP:
		n = good_header(buf);
		for (i = 1 + next() % 4; i > 0; i--)
			buf[next() % n] ^= (unsigned char)(1 + next() % 255);
		return then_hello(buf, n);
	case PP_RANDOM:
		if (next() % 2 == 0) {
			memcpy(buf, v2sig, sizeof(v2sig));
			n = sizeof(v2sig);
		} else {
			memcpy(buf, "PROXY ", 6);
			n = 6;
		}
		for (i = 1 + next() % 300; i > 0; i--)
			buf[n++] = (unsigned char)next();
		return then_hello(buf, n);
	case PP_V2:
		memcpy(buf, v2sig, sizeof(v2sig));
		n = sizeof(v2sig);
		buf[n++] = (unsigned char)next();	/* version, command */
		buf[n++] = (unsigned char)next();	/* family, protocol */
		i = next() % 4 == 0 ? 0xffff : next() % 300;
		buf[n++] = (unsigned char)(i >> 8);
		buf[n++] = (unsigned char)i;
		for (i = next() % 300; i > 0; i--)
			buf[n++] = (unsigned char)next();
		return then_hello(buf, n);
	case PP_V1:
		i = next() % (sizeof(v1bad) / sizeof(v1bad[0]));
		n = strlen(v1bad[i]);
		memcpy(buf, v1bad[i], n);
		return then_hello(buf, n);
	default:		/* PP_GOOD: a good header, then a TLS case */
		n = good_header(buf);
		return n + make_case((enum kind)(next() % NTLS), cut, buf + n);
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
	static unsigned char buf[2 * MAX_CASE];
	unsigned long count[NKINDS] = { 0 };
	size_t cut = 0, n;
	time_t end;
	FILE *fp;
	int k, first = 0, last = NTLS, failures = 0;

	if (argc > 1 && strcmp(argv[1], "-p") == 0) {
		first = NTLS;
		last = NKINDS;
		argc--;
		argv++;
	}
	if (argc < 5 || argc > 6)
		die("netfuzz", EX_ERR, "usage: netfuzz [-p] HOST PORT HELLO "
		    "SECONDS [SEED]");
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
	for (k = first; time(NULL) < end; k = k + 1 < last ? k + 1 : first) {
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
	for (k = first; k < last; k++)
		printf("%s%s=%lu", k > first ? " " : "", kind_names[k],
		    count[k]);
	printf("\n");
	return EX_OK;
}
