/*
 * ppsink [-d DIR] HOST PORT
 * ppsink -c [-s OFFSET] [-w MS] [-k] HOST PORT FILE
 *
 * The PROXY protocol (haproxy's doc/proxy-protocol.txt, versions 1 and 2)
 * seen from outside tlsgate, with a parser of its own.
 *
 * Server (default): accept connections on HOST:PORT, each in a thread.
 * Read the PROXY header a connection starts with (no further than its
 * end) and decode it into lines "key=value":
 *   conn=N                 the connection's number, from 1
 *   peer=ADDR:PORT         who connected (the sender of the header)
 *   version=1|2|none       none: the stream starts with no header
 *   command=PROXY|LOCAL|0xN   (v2)
 *   family=TCP4|TCP6|UDP4|UDP6|UNIX|UNIX_DGRAM|UNSPEC|UNKNOWN|0xNN
 *   src=ADDR:PORT dst=ADDR:PORT   (IPv6 as [ADDR]:PORT)
 *   tlv.authority=S tlv.alpn=S tlv.unique_id=HEX tlv.noop=N tlv.0xNN=HEX
 *   ssl.client=0xNN ssl.verify=N ssl.version=S ssl.cipher=S ssl.cn=S
 *   ssl.sig_alg=S ssl.key_alg=S ssl.0xNN=HEX
 *   tlvs=T,T,...           the TLV types in order (ssl sub-TLVs as 20.NN)
 *   header_len=N           the header's bytes, all of it
 *   error=WHY              the header is malformed (then the connection
 *                          is closed, nothing echoed)
 * then echo every byte after the header back to the connection, and shut
 * its write side at its end (a half-close goes through). With -d DIR, a
 * connection's lines go to the file DIR/N (written whole: it appears
 * complete); else to standard output, one block after another. Standard
 * error gets "ppsink: accept PEER" for each connection and "ppsink: conn N
 * eof after B bytes" (or "reset ...", "error ...") when its echo ends.
 * Runs until killed.
 *
 * Client (-c): connect to HOST:PORT and send FILE (a header, good or bad,
 * and whatever follows it): with -s OFFSET, its first OFFSET bytes, then a
 * pause of -w MS milliseconds (default 200), then the rest. Then shut the
 * write side, or with -k keep it open (send nothing more), and copy what
 * comes back to standard output until the end. Standard error tells how it
 * ended ("ppsink: eof after N bytes", "reset after N bytes").
 * Exit: 0 a clean end, 2 cannot connect, 3 reset by the peer, 4 send
 * failed, 1 other errors.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "ppsink";
static const char *outdir;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long nconn;

static const unsigned char v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* --- output: a connection's lines, gathered then written at once ------ */

struct out {
	char	*buf;
	size_t	 len, cap;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			die(prog, EX_ERR, "vsnprintf failed");
		if ((size_t)n < o->cap - o->len)
			break;
		o->cap = (o->cap + (size_t)n) * 2;
		if ((o->buf = realloc(o->buf, o->cap)) == NULL)
			die(prog, EX_ERR, "out of memory");
	}
	o->len += (size_t)n;
}

static void
put_hex(struct out *o, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		put(o, "%02x", p[i]);
}

/* A TLV value as text: printable bytes as they are, others as \xNN. */
static void
put_text(struct out *o, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] >= 0x21 && p[i] < 0x7f && p[i] != '\\')
			put(o, "%c", p[i]);
		else
			put(o, "\\x%02x", p[i]);
	}
}

static void
flush_out(struct out *o, unsigned long id)
{
	char path[4096], tmp[4112];
	FILE *fp;

	if (outdir == NULL) {
		pthread_mutex_lock(&out_lock);
		fwrite(o->buf, 1, o->len, stdout);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
		return;
	}
	snprintf(path, sizeof(path), "%s/%lu", outdir, id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL ||
	    fwrite(o->buf, 1, o->len, fp) != o->len || fclose(fp) != 0 ||
	    rename(tmp, path) == -1)
		die(prog, EX_ERR, "cannot write %s", path);
}

/* --- reading ------------------------------------------------------------ */

/* Read exactly n bytes: 0, or -1 at the end or an error (errno, 0 at EOF). */
static int
read_full(int fd, unsigned char *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = read(fd, p, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static const char *
read_err(void)
{
	return errno == 0 ? "the connection ended inside the header" :
	    strerror(errno);
}

static void
put_addr(struct out *o, const char *key, int af, const void *addr,
    unsigned port)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(af, addr, a, sizeof(a));
	if (af == AF_INET6)
		put(o, "%s=[%s]:%u\n", key, a, port);
	else
		put(o, "%s=%s:%u\n", key, a, port);
}

/* --- version 1 ------------------------------------------------------------ */

/* A v1 port: 1 to 5 digits, at most 65535, no sign, no leading zero. */
static int
v1_port(const char *s, unsigned *port)
{
	size_t n = strlen(s), i;
	unsigned long v = 0;

	if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/*
 * The bytes "PROXY " have been read into line: read to the CRLF (107 bytes
 * at most in all) and decode. 0, or -1 after an error= line.
 */
static int
v1(int fd, unsigned char *line, struct out *o)
{
	char *f[7], *p;
	size_t n = 6;
	unsigned sport, dport;
	unsigned char sa[16], da[16];
	int nf = 0, af;

	for (;;) {
		if (n >= 107) {
			put(o, "error=v1: no CRLF in 107 bytes\n");
			return -1;
		}
		if (read_full(fd, line + n, 1) == -1) {
			put(o, "error=v1: %s\n", read_err());
			return -1;
		}
		n++;
		if (line[n - 1] == '\n') {
			if (line[n - 2] != '\r') {
				put(o, "error=v1: LF without CR\n");
				return -1;
			}
			break;
		}
	}
	put(o, "version=1\n");
	put(o, "header_len=%zu\n", n);
	line[n - 2] = '\0';
	if (memchr(line, '\0', n - 2) != NULL) {
		put(o, "error=v1: a NUL byte in the line\n");
		return -1;
	}
	/* Fields separated by exactly one space. */
	p = (char *)line;
	f[nf++] = p;
	while ((p = strchr(p, ' ')) != NULL && nf < 7) {
		*p++ = '\0';
		f[nf++] = p;
	}
	if (strcmp(f[0], "PROXY") != 0 || nf < 2) {
		put(o, "error=v1: malformed\n");
		return -1;
	}
	if (strcmp(f[1], "UNKNOWN") == 0) {
		put(o, "family=UNKNOWN\n");
		return 0;
	}
	if (strcmp(f[1], "TCP4") == 0)
		af = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		af = AF_INET6;
	else {
		put(o, "error=v1: protocol \"%s\"\n", f[1]);
		return -1;
	}
	put(o, "family=%s\n", f[1]);
	if (nf != 6) {
		put(o, "error=v1: %d fields, 6 expected\n", nf);
		return -1;
	}
	if (inet_pton(af, f[2], sa) != 1 || inet_pton(af, f[3], da) != 1) {
		put(o, "error=v1: bad address\n");
		return -1;
	}
	if (v1_port(f[4], &sport) == -1 || v1_port(f[5], &dport) == -1) {
		put(o, "error=v1: bad port\n");
		return -1;
	}
	put_addr(o, "src", af, sa, sport);
	put_addr(o, "dst", af, da, dport);
	return 0;
}

/* --- version 2 ------------------------------------------------------------ */

static const char *
family_name(unsigned f)
{
	switch (f) {
	case 0x00: return "UNSPEC";
	case 0x11: return "TCP4";
	case 0x12: return "UDP4";
	case 0x21: return "TCP6";
	case 0x22: return "UDP6";
	case 0x31: return "UNIX";
	case 0x32: return "UNIX_DGRAM";
	default: return NULL;
	}
}

/* The sub-TLVs of PP2_TYPE_SSL after its 5 fixed bytes. */
static int
ssl_subs(const unsigned char *p, size_t n, struct out *o, struct out *types)
{
	size_t l;
	unsigned t;

	while (n > 0) {
		if (n < 3) {
			put(o, "error=v2: an SSL sub-TLV cut short\n");
			return -1;
		}
		t = p[0];
		l = (size_t)p[1] << 8 | p[2];
		if (l > n - 3) {
			put(o, "error=v2: SSL sub-TLV 0x%02x of %zu bytes "
			    "overruns the SSL TLV\n", t, l);
			return -1;
		}
		put(types, ",20.%02x", t);
		switch (t) {
		case 0x21: put(o, "ssl.version="); break;
		case 0x22: put(o, "ssl.cn="); break;
		case 0x23: put(o, "ssl.cipher="); break;
		case 0x24: put(o, "ssl.sig_alg="); break;
		case 0x25: put(o, "ssl.key_alg="); break;
		default:
			put(o, "ssl.0x%02x=", t);
			put_hex(o, p + 3, l);
			put(o, "\n");
			p += 3 + l;
			n -= 3 + l;
			continue;
		}
		put_text(o, p + 3, l);
		put(o, "\n");
		p += 3 + l;
		n -= 3 + l;
	}
	return 0;
}

static int
tlvs(const unsigned char *p, size_t n, struct out *o)
{
	struct out types = { NULL, 0, 0 };
	size_t l;
	unsigned t;
	int rc = 0;

	put(&types, "tlvs=");
	while (n > 0) {
		if (n < 3) {
			put(o, "error=v2: a TLV cut short (%zu bytes left)\n",
			    n);
			rc = -1;
			break;
		}
		t = p[0];
		l = (size_t)p[1] << 8 | p[2];
		if (l > n - 3) {
			put(o, "error=v2: TLV 0x%02x of %zu bytes overruns "
			    "the header\n", t, l);
			rc = -1;
			break;
		}
		put(&types, "%s%02x", types.len > 5 ? "," : "", t);
		switch (t) {
		case 0x01:
			put(o, "tlv.alpn=");
			put_text(o, p + 3, l);
			put(o, "\n");
			break;
		case 0x02:
			put(o, "tlv.authority=");
			put_text(o, p + 3, l);
			put(o, "\n");
			break;
		case 0x04:
			put(o, "tlv.noop=%zu\n", l);
			break;
		case 0x05:
			put(o, "tlv.unique_id=");
			put_hex(o, p + 3, l);
			put(o, "\n");
			break;
		case 0x20:
			if (l < 5) {
				put(o, "error=v2: SSL TLV of %zu bytes\n", l);
				rc = -1;
				break;
			}
			put(o, "ssl.client=0x%02x\n", p[3]);
			put(o, "ssl.verify=%lu\n", (unsigned long)p[4] << 24 |
			    (unsigned long)p[5] << 16 |
			    (unsigned long)p[6] << 8 | p[7]);
			if (ssl_subs(p + 8, l - 5, o, &types) == -1)
				rc = -1;
			break;
		default:
			put(o, "tlv.0x%02x=", t);
			put_hex(o, p + 3, l);
			put(o, "\n");
			break;
		}
		if (rc == -1)
			break;
		p += 3 + l;
		n -= 3 + l;
	}
	put(&types, "\n");
	put(o, "%s", types.buf);
	free(types.buf);
	return rc;
}

/* The first 6 bytes, the start of the signature, are in hdr already. */
static int
v2(int fd, unsigned char *hdr, struct out *o)
{
	unsigned char *body;
	const char *fam;
	size_t len, alen;
	int rc = 0;

	if (read_full(fd, hdr + 6, 10) == -1) {
		put(o, "error=v2: %s\n", read_err());
		return -1;
	}
	if (memcmp(hdr, v2sig, 12) != 0) {
		put(o, "error=v2: bad signature\n");
		return -1;
	}
	put(o, "version=%u\n", hdr[12] >> 4);
	if (hdr[12] >> 4 != 2) {
		put(o, "error=v2: version %u\n", hdr[12] >> 4);
		return -1;
	}
	switch (hdr[12] & 0x0f) {
	case 0: put(o, "command=LOCAL\n"); break;
	case 1: put(o, "command=PROXY\n"); break;
	default: put(o, "command=0x%x\n", hdr[12] & 0x0f); break;
	}
	if ((fam = family_name(hdr[13])) != NULL)
		put(o, "family=%s\n", fam);
	else
		put(o, "family=0x%02x\n", hdr[13]);
	len = (size_t)hdr[14] << 8 | hdr[15];
	put(o, "header_len=%zu\n", 16 + len);
	if ((body = malloc(len + 1)) == NULL)
		die(prog, EX_ERR, "out of memory");
	if (read_full(fd, body, len) == -1) {
		put(o, "error=v2: %s\n", read_err());
		free(body);
		return -1;
	}
	switch (hdr[13]) {
	case 0x11: case 0x12: alen = 12; break;
	case 0x21: case 0x22: alen = 36; break;
	case 0x31: case 0x32: alen = 216; break;
	default: alen = 0; break;
	}
	if (len < alen) {
		put(o, "error=v2: %zu bytes for addresses of %zu\n", len, alen);
		free(body);
		return -1;
	}
	if (alen == 12) {
		put_addr(o, "src", AF_INET, body, (unsigned)body[8] << 8 |
		    body[9]);
		put_addr(o, "dst", AF_INET, body + 4,
		    (unsigned)body[10] << 8 | body[11]);
	} else if (alen == 36) {
		put_addr(o, "src", AF_INET6, body,
		    (unsigned)body[32] << 8 | body[33]);
		put_addr(o, "dst", AF_INET6, body + 16,
		    (unsigned)body[34] << 8 | body[35]);
	} else if (alen == 216) {
		put(o, "src=%.108s\n", (const char *)body);
		put(o, "dst=%.108s\n", (const char *)body + 108);
	}
	if (tlvs(body + alen, len - alen, o) == -1)
		rc = -1;
	free(body);
	return rc;
}

/* --- a connection ------------------------------------------------------- */

struct conn {
	int		fd;
	unsigned long	id;
	char		peer[INET6_ADDRSTRLEN + 8];
};

static void *
serve(void *arg)
{
	struct conn *c = arg;
	struct out o = { NULL, 0, 0 };
	unsigned char hdr[128], buf[16384];
	unsigned long long total = 0;
	size_t have = 0;
	ssize_t n;
	int rc = 0;

	put(&o, "conn=%lu\npeer=%s\n", c->id, c->peer);
	/* Six bytes tell v1 ("PROXY ") from v2 (\r\n\r\n\0\r) from none. */
	while (have < 6) {
		n = read(c->fd, hdr + have, 6 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (memcmp(hdr, "PROXY ", have) != 0 &&
		    memcmp(hdr, v2sig, have) != 0)
			break;
	}
	if (have == 6 && memcmp(hdr, "PROXY ", 6) == 0)
		rc = v1(c->fd, hdr, &o);
	else if (have == 6 && memcmp(hdr, v2sig, 6) == 0)
		rc = v2(c->fd, hdr, &o);
	else {
		put(&o, "version=none\nheader_len=0\n");
		/* Those bytes are the stream's: echoed below. */
		if (have > 0 && net_write_all(c->fd, (char *)hdr, have) == -1)
			rc = -1;
		total = have;
	}
	flush_out(&o, c->id);
	free(o.buf);
	if (rc == -1) {
		fprintf(stderr, "%s: conn %lu: bad header, closed\n", prog,
		    c->id);
		close(c->fd);
		free(c);
		return NULL;
	}
	for (;;) {
		n = read(c->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (unsigned long long)n;
		if (net_write_all(c->fd, (char *)buf, (size_t)n) == -1)
			break;
	}
	if (n == 0) {
		shutdown(c->fd, SHUT_WR);
		fprintf(stderr, "%s: conn %lu eof after %llu bytes\n", prog,
		    c->id, total);
	} else
		fprintf(stderr, "%s: conn %lu %s after %llu bytes: %s\n", prog,
		    c->id, errno == ECONNRESET ? "reset" : "error", total,
		    strerror(errno));
	close(c->fd);
	free(c);
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
		snprintf(buf, len, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else
		snprintf(buf, len, "?");
}

static int
server(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	struct conn *c;
	socklen_t sl;
	pthread_t t;
	int fd, lfd;

	if ((lfd = net_listen(host, port, 64)) == -1)
		die(prog, EX_ERR, "listen %s:%s: %s", host, port,
		    strerror(errno));
	for (;;) {
		sl = sizeof(ss);
		fd = accept(lfd, (struct sockaddr *)&ss, &sl);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die(prog, EX_ERR, "accept: %s", strerror(errno));
		}
		if ((c = calloc(1, sizeof(*c))) == NULL)
			die(prog, EX_ERR, "out of memory");
		c->fd = fd;
		c->id = ++nconn;
		peer_name(&ss, c->peer, sizeof(c->peer));
		fprintf(stderr, "%s: accept %s\n", prog, c->peer);
		if (pthread_create(&t, NULL, serve, c) != 0)
			die(prog, EX_ERR, "pthread_create failed");
		pthread_detach(t);
	}
}

/* --- the client ---------------------------------------------------------- */

static int
client(const char *host, const char *port, const char *file, long split,
    long wait_ms, int keep)
{
	static unsigned char data[1 << 20];
	char buf[16384];
	unsigned long long total = 0;
	struct timespec ts;
	size_t len, first;
	ssize_t n;
	FILE *fp;
	int fd;

	if ((fp = fopen(file, "rb")) == NULL)
		die(prog, EX_ERR, "cannot read %s: %s", file, strerror(errno));
	len = fread(data, 1, sizeof(data), fp);
	fclose(fp);
	if ((fd = net_dial(host, port)) == -1)
		die(prog, EX_CONNECT, "connect %s:%s: %s", host, port,
		    strerror(errno));
	first = split >= 0 && (size_t)split < len ? (size_t)split : len;
	if (net_write_all(fd, (char *)data, first) == -1)
		goto send_failed;
	if (first < len) {
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = wait_ms % 1000 * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		if (net_write_all(fd, (char *)data + first, len - first) == -1)
			goto send_failed;
	}
	if (!keep && shutdown(fd, SHUT_WR) == -1 && errno != ENOTCONN)
		die(prog, EX_ERR, "shutdown: %s", strerror(errno));
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die(prog, errno == ECONNRESET ? EX_RESET : EX_ERR,
			    "%s after %llu bytes", errno == ECONNRESET ?
			    "reset" : strerror(errno), total);
		}
		total += (unsigned long long)n;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			die(prog, EX_ERR, "write stdout failed");
	}
	if (fflush(stdout) != 0)
		die(prog, EX_ERR, "write stdout failed");
	fprintf(stderr, "%s: eof after %llu bytes\n", prog, total);
	return EX_OK;
send_failed:
	die(prog, errno == ECONNRESET || errno == EPIPE ? EX_RESET : EX_SEND,
	    "send: %s", strerror(errno));
}

int
main(int argc, char **argv)
{
	long split = -1, wait_ms = 200;
	int c, is_client = 0, keep = 0;

	setvbuf(stderr, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "cd:ks:w:")) != -1) {
		switch (c) {
		case 'c': is_client = 1; break;
		case 'd': outdir = optarg; break;
		case 'k': keep = 1; break;
		case 's': split = atol(optarg); break;
		case 'w': wait_ms = atol(optarg); break;
		default: goto usage;
		}
	}
	if (is_client && argc - optind == 3)
		return client(argv[optind], argv[optind + 1], argv[optind + 2],
		    split, wait_ms, keep);
	if (!is_client && argc - optind == 2) {
		if (outdir != NULL && mkdir(outdir, 0755) == -1 &&
		    errno != EEXIST)
			die(prog, EX_ERR, "mkdir %s: %s", outdir,
			    strerror(errno));
		return server(argv[optind], argv[optind + 1]);
	}
usage:
	fprintf(stderr, "usage: ppsink [-d DIR] HOST PORT\n"
	    "       ppsink -c [-s OFFSET] [-w MS] [-k] HOST PORT FILE\n");
	return EX_ERR;
}
