/*
 * pp.c: the PROXY protocol, versions 1 and 2, as haproxy specifies it
 * (doc/proxy-protocol.txt): parsing the header a route with accept_proxy
 * reads first, and building the one a route with send_proxy sends.
 * Pure functions on buffers: the sockets are stage.c's.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pp.h"

#define V1_PREFIX	"PROXY "
#define V2_HEADER	16

/* v2 address families and protocols (byte 13), commands (byte 12). */
#define V2_TCP4		0x11
#define V2_TCP6		0x21
#define V2_UNSPEC	0x00
#define V2_LOCAL	0x20
#define V2_PROXY	0x21

/* v2 TLVs (haproxy's names). */
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

/* Do the len bytes of buf begin like the n bytes of what, as far as
   they go? */
static int
starts(const unsigned char *buf, size_t len, const char *what, size_t n)
{
	return memcmp(buf, what, len < n ? len : n) == 0;
}

/* One field of a v1 line: an address of family af, or a port. */
static int
v1_addr(const char *s, int af, union pp_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->sa.sa_family = (sa_family_t)af;
	return inet_pton(af, s, af == AF_INET ? (void *)&a->in.sin_addr :
	    (void *)&a->in6.sin6_addr) == 1 ? 0 : -1;
}

static int
v1_port(const char *s, union pp_addr *a)
{
	char *ep;
	long n;

	if (*s < '0' || *s > '9' || strlen(s) > 5)
		return -1;
	n = strtol(s, &ep, 10);
	if (*ep != '\0' || n > 65535)
		return -1;
	if (a->sa.sa_family == AF_INET)
		a->in.sin_port = htons((uint16_t)n);
	else
		a->in6.sin6_port = htons((uint16_t)n);
	return 0;
}

/* "PROXY TCP4 SRC DST SPORT DPORT\r\n", whole, in line (NUL for CR). */
static long
v1_parse(char *line, long len, union pp_addr *src, union pp_addr *dst,
    char *why, size_t whylen)
{
	char *f[6], *save = NULL;
	int n = 0, af;

	for (f[n] = strtok_r(line, " ", &save); f[n] != NULL && n < 5;
	    f[n] = strtok_r(NULL, " ", &save))
		n++;
	if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0) {	/* the rest is ignored */
		memset(src, 0, sizeof(*src));
		memset(dst, 0, sizeof(*dst));
		return len;
	}
	if (n < 2 || (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0)) {
		snprintf(why, whylen, "v1: unknown protocol (TCP4 or TCP6 "
		    "expected)");
		return -1;
	}
	af = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (n != 5 || f[5] == NULL || strtok_r(NULL, " ", &save) != NULL) {
		snprintf(why, whylen, "v1: malformed (PROXY %s SRC DST SPORT "
		    "DPORT)", f[1]);
		return -1;
	}
	if (v1_addr(f[2], af, src) == -1 || v1_addr(f[3], af, dst) == -1) {
		snprintf(why, whylen, "v1: bad %s address", f[1]);
		return -1;
	}
	if (v1_port(f[4], src) == -1 || v1_port(f[5], dst) == -1) {
		snprintf(why, whylen, "v1: bad port");
		return -1;
	}
	return len;
}

long
pp_parse(const unsigned char *buf, size_t len, union pp_addr *src,
    union pp_addr *dst, char *why, size_t whylen)
{
	char line[PP_V1_MAX + 1];
	const unsigned char *crlf;
	size_t n;
	int own;

	if (len == 0)
		return 0;
	if (starts(buf, len, V1_PREFIX, 6)) {
		n = len < PP_V1_MAX ? len : PP_V1_MAX;
		if ((crlf = memmem(buf, n, "\r\n", 2)) == NULL) {
			if (len < PP_V1_MAX)
				return 0;
			snprintf(why, whylen, "v1 header longer than %d bytes",
			    PP_V1_MAX);
			return -1;
		}
		n = (size_t)(crlf - buf);
		if (n < 6 || memchr(buf, '\0', n) != NULL) {
			snprintf(why, whylen, "v1: malformed");
			return -1;
		}
		memcpy(line, buf, n);
		line[n] = '\0';
		return v1_parse(line, (long)n + 2, src, dst, why, whylen);
	}
	if (!starts(buf, len, PP_V2_SIG, 12)) {
		snprintf(why, whylen, "missing (the connection starts "
		    "with %s)", buf[0] == 0x16 ? "a TLS handshake" :
		    "something else");
		return -1;
	}
	if (len < V2_HEADER)
		return 0;
	n = V2_HEADER + ((size_t)buf[14] << 8 | buf[15]);
	if ((buf[12] & 0xf0) != 0x20) {
		snprintf(why, whylen, "v2: unknown version %u", buf[12] >> 4);
		return -1;
	}
	if (buf[12] != V2_PROXY && buf[12] != V2_LOCAL) {
		snprintf(why, whylen, "v2: unknown command %u", buf[12] & 0xf);
		return -1;
	}
	/* LOCAL, or UNSPEC: no client address, the connection's own stand */
	own = buf[12] == V2_LOCAL || buf[13] == V2_UNSPEC;
	if (!own && buf[13] != V2_TCP4 && buf[13] != V2_TCP6) {
		snprintf(why, whylen, "v2: unsupported address family and "
		    "protocol 0x%02x (TCP over IPv4 or IPv6 expected)", buf[13]);
		return -1;
	}
	if (n > PP_MAX) {
		snprintf(why, whylen, "v2 header of %zu bytes, more than %d", n,
		    PP_MAX);
		return -1;
	}
	if (!own && n - V2_HEADER < (buf[13] == V2_TCP4 ? 12u : 36u)) {
		snprintf(why, whylen, "v2: addresses cut short");
		return -1;
	}
	if (len < n)
		return 0;
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	if (own)	/* its addresses, if any, are ignored */
		return (long)n;
	if (buf[13] == V2_TCP4) {
		src->in.sin_family = dst->in.sin_family = AF_INET;
		memcpy(&src->in.sin_addr, buf + 16, 4);
		memcpy(&dst->in.sin_addr, buf + 20, 4);
		memcpy(&src->in.sin_port, buf + 24, 2);
		memcpy(&dst->in.sin_port, buf + 26, 2);
	} else {
		src->in6.sin6_family = dst->in6.sin6_family = AF_INET6;
		memcpy(&src->in6.sin6_addr, buf + 16, 16);
		memcpy(&dst->in6.sin6_addr, buf + 32, 16);
		memcpy(&src->in6.sin6_port, buf + 48, 2);
		memcpy(&dst->in6.sin6_port, buf + 50, 2);
	}
	return (long)n;
}

/* An IPv4-mapped IPv6 address as IPv4; others as they are. */
static void
unmap(const union pp_addr *in, union pp_addr *out)
{
	*out = *in;
	if (in->sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&in->in6.sin6_addr)) {
		memset(out, 0, sizeof(*out));
		out->in.sin_family = AF_INET;
		memcpy(&out->in.sin_addr, in->in6.sin6_addr.s6_addr + 12, 4);
		out->in.sin_port = in->in6.sin6_port;
	}
}

/* An IPv4 address as IPv4-mapped IPv6. */
static void
map6(union pp_addr *a)
{
	struct sockaddr_in in = a->in;

	if (a->sa.sa_family != AF_INET)
		return;
	memset(a, 0, sizeof(*a));
	a->in6.sin6_family = AF_INET6;
	a->in6.sin6_addr.s6_addr[10] = a->in6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(a->in6.sin6_addr.s6_addr + 12, &in.sin_addr, 4);
	a->in6.sin6_port = in.sin_port;
}

/* A TLV of type t and n bytes of v at *o in buf; -1 if it does not fit. */
static int
tlv(unsigned char *buf, size_t len, size_t *o, unsigned t, const void *v,
    size_t n)
{
	if (n > 0xffff || *o + 3 + n > len)
		return -1;
	buf[(*o)++] = (unsigned char)t;
	buf[(*o)++] = (unsigned char)(n >> 8);
	buf[(*o)++] = (unsigned char)n;
	if (n > 0)
		memcpy(buf + *o, v, n);
	*o += n;
	return 0;
}

static int
tlv_str(unsigned char *buf, size_t len, size_t *o, unsigned t, const char *s)
{
	return s == NULL ? 0 : tlv(buf, len, o, t, s, strlen(s));
}

/* The TLS TLVs of v2 at *o. */
static int
v2_tls(const struct pp_tls *tls, unsigned char *buf, size_t len, size_t *o)
{
	size_t start, body;
	unsigned char client = PP2_CLIENT_SSL;

	if (tlv_str(buf, len, o, PP2_TYPE_AUTHORITY, tls->sni) == -1)
		return -1;
	if (tls->cert)
		client |= tls->resumed ? PP2_CLIENT_CERT_SESS :
		    PP2_CLIENT_CERT_CONN;
	start = *o;
	if (*o + 3 + 5 > len)
		return -1;
	*o += 3;		/* type and length, once the length is known */
	buf[(*o)++] = client;
	/* verify: 0 when a certificate was presented and verified */
	buf[(*o)++] = 0;
	buf[(*o)++] = 0;
	buf[(*o)++] = 0;
	buf[(*o)++] = tls->cert && tls->verified ? 0 : 1;
	if (tlv_str(buf, len, o, PP2_SUBTYPE_SSL_VERSION, tls->version) == -1 ||
	    tlv_str(buf, len, o, PP2_SUBTYPE_SSL_CIPHER, tls->cipher) == -1 ||
	    tlv_str(buf, len, o, PP2_SUBTYPE_SSL_CN, tls->cn) == -1)
		return -1;
	body = *o - start - 3;
	if (body > 0xffff)
		return -1;
	buf[start] = PP2_TYPE_SSL;
	buf[start + 1] = (unsigned char)(body >> 8);
	buf[start + 2] = (unsigned char)body;
	return 0;
}

long
pp_build(int v, const union pp_addr *src, const union pp_addr *dst,
    const struct pp_tls *tls, unsigned char *buf, size_t len)
{
	union pp_addr s, d;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	size_t o, al;
	int n, af;

	unmap(src, &s);
	unmap(dst, &d);
	af = s.sa.sa_family;
	if ((af != AF_INET && af != AF_INET6) ||
	    (d.sa.sa_family != AF_INET && d.sa.sa_family != AF_INET6))
		af = AF_UNSPEC;
	else if (af != d.sa.sa_family) {
		map6(&s);	/* one of each: both as IPv6 */
		map6(&d);
		af = AF_INET6;
	}
	if (v == 1) {
		if (af == AF_UNSPEC)
			n = snprintf((char *)buf, len, "PROXY UNKNOWN\r\n");
		else
			n = snprintf((char *)buf, len, "PROXY %s %s %s %u %u\r\n",
			    af == AF_INET ? "TCP4" : "TCP6",
			    inet_ntop(af, af == AF_INET ? (void *)&s.in.sin_addr :
			    (void *)&s.in6.sin6_addr, a, sizeof(a)),
			    inet_ntop(af, af == AF_INET ? (void *)&d.in.sin_addr :
			    (void *)&d.in6.sin6_addr, b, sizeof(b)),
			    ntohs(af == AF_INET ? s.in.sin_port :
			    s.in6.sin6_port), ntohs(af == AF_INET ?
			    d.in.sin_port : d.in6.sin6_port));
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	if (len < V2_HEADER + 36)
		return -1;
	memcpy(buf, PP_V2_SIG, 12);
	buf[12] = V2_PROXY;
	o = V2_HEADER;
	buf[13] = af == AF_INET ? V2_TCP4 : af == AF_INET6 ? V2_TCP6 :
	    V2_UNSPEC;
	if (af != AF_UNSPEC) {	/* addresses, then ports, in network order */
		al = af == AF_INET ? 4 : 16;
		memcpy(buf + o, af == AF_INET ? (void *)&s.in.sin_addr :
		    (void *)&s.in6.sin6_addr, al);
		memcpy(buf + o + al, af == AF_INET ? (void *)&d.in.sin_addr :
		    (void *)&d.in6.sin6_addr, al);
		memcpy(buf + o + 2 * al, af == AF_INET ? &s.in.sin_port :
		    &s.in6.sin6_port, 2);
		memcpy(buf + o + 2 * al + 2, af == AF_INET ? &d.in.sin_port :
		    &d.in6.sin6_port, 2);
		o += 2 * al + 4;
	}
	if (tls != NULL && v2_tls(tls, buf, len, &o) == -1)
		return -1;
	if (o - V2_HEADER > 0xffff)
		return -1;
	buf[14] = (unsigned char)((o - V2_HEADER) >> 8);
	buf[15] = (unsigned char)(o - V2_HEADER);
	return (long)o;
}
