#ifndef PP_H
#define PP_H

#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>

/*
 * The PROXY protocol (haproxy's proxy-protocol.txt), versions 1 and 2:
 * the header a proxy sends first on a connection to say whom it carries.
 */

/* An address in a header: IPv4, IPv6, or AF_UNSPEC for none. */
union pp_addr {
	struct sockaddr		sa;
	struct sockaddr_in	in;
	struct sockaddr_in6	in6;
};

/* The longest header read: v2's 16 bytes and 2032 of addresses and TLVs. */
#define PP_MAX		2048
#define PP_V1_MAX	107	/* v1's own limit, "\r\n" included */
#define PP_V2_SIG	"\r\n\r\n\0\r\nQUIT\n"

/*
 * Look at the len bytes that have come so far (PP_MAX at most are
 * needed). Returns the length of the whole header once they hold it, with
 * its addresses in src and dst; 0 while more must come; or -1 with why
 * set: no header, a malformed one, one too long, an address family other
 * than TCP over IPv4 or IPv6. A v2 LOCAL command, the v2 UNSPEC family
 * and v1 UNKNOWN (a proxy's own connection, such as a health check, or
 * one it cannot describe) leave src and dst AF_UNSPEC: the connection's
 * own addresses stand.
 */
long pp_parse(const unsigned char *buf, size_t len, union pp_addr *src,
    union pp_addr *dst, char *why, size_t whylen);

/* What an unwrap route tells its server of the client's TLS, in v2. */
struct pp_tls {
	const char	*version;	/* e.g. "TLSv1.3" */
	const char	*cipher;	/* e.g. "TLS_AES_128_GCM_SHA256" */
	const char	*sni;		/* or NULL */
	const char	*cn;		/* the verified peer's CN, or NULL */
	int		 cert;		/* the client presented a certificate */
	int		 verified;	/* and it was verified */
	int		 resumed;	/* on a resumed session */
};

/*
 * A header of version v (1 or 2) for src and dst (AF_UNSPEC: unknown,
 * "UNKNOWN" in v1 and AF_UNSPEC in v2), with tls's TLVs in v2 if tls is
 * not NULL. Returns its length, or -1 if it does not fit in len.
 */
long pp_build(int v, const union pp_addr *src, const union pp_addr *dst,
    const struct pp_tls *tls, unsigned char *buf, size_t len);

#endif
