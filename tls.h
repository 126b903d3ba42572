#ifndef TLS_H
#define TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#include "config.h"

struct tls_ctx;

/*
 * A TLS session's read-ahead buffer: storage the caller provides (it
 * lives in the relay's session) for as long as the GnuTLS session.
 */
struct tls_rbuf {
	int		 fd;
	int		 nowait;	/* empty: EAGAIN, not recv() */
	int		 held;		/* tls_wait met an end or error: */
	int		 held_errno;	/* pull reports it next */
	ssize_t		 held_ret;
	size_t		 off, len;
	unsigned char	 data[32 * 1024];
};

/* Called once per problem found while loading: which key, and why. */
typedef void tls_err_fn(void *arg, enum key k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Load the credentials, trust anchors, PSK keys and priorities of route r's
 * TLS side. On failure report each problem through err and return -1.
 * The context is read-only afterwards and may be shared by every thread.
 */
int tls_ctx_new(const struct route *r, struct tls_ctx **out,
    tls_err_fn *err, void *arg);
void tls_ctx_free(struct tls_ctx *c);

/*
 * A GnuTLS session on fd for route r, server side on a tls accept,
 * receiving through rb.
 */
int tls_session_new(const struct route *r, int fd, struct tls_rbuf *rb,
    gnutls_session_t *out, char *why, size_t whylen);

/*
 * Handshake (bounded by the route's handshake_timeout), then verify the
 * peer and match allow_peers. On success describe the session in desc as
 * log fields ("version=... cipher=... peer=..."); on failure say why.
 * Returns 0, or -1 with why set; -2 when the peer was refused (a
 * verification or allow_peers failure rather than a broken handshake).
 */
int tls_handshake(const struct route *r, gnutls_session_t s,
    char *why, size_t whylen, char *desc, size_t desclen);

/*
 * Client side, resumption on: keep the session's ticket for the route's
 * next connection. Call from the thread that receives on s (a TLS 1.3
 * ticket arrives after the handshake); returns 0 while there is none yet,
 * 1 once done (or nothing to do).
 */
int tls_keep_ticket(const struct route *r, gnutls_session_t s);

/*
 * Has the peer on fd closed or reset the connection? On a blocking socket
 * GnuTLS answers GNUTLS_E_AGAIN, as for a timeout, when a record is cut
 * short: this tells the two apart.
 */
int tls_peer_closed(gnutls_session_t s);

/*
 * Wait until s has something to read (or its socket an end, an error or
 * a timeout, which the next gnutls_record_recv() then reports), before
 * GnuTLS is asked for a record: GnuTLS sets aside a buffer for a whole
 * record (about 17 KiB) before it reads, and would hold it for as long
 * as the peer stays silent.
 */
void tls_wait(gnutls_session_t s);

/*
 * gnutls_record_recv() from what has already been received, never
 * waiting for the socket: GNUTLS_E_AGAIN when that holds no whole
 * record (GnuTLS keeps a partial one for the next call).
 */
ssize_t tls_recv_buffered(gnutls_session_t s, void *buf, size_t len);

/* What --check prints of a route's TLS identity, as log-style fields. */
int tls_identity(const struct route *r, char *buf, size_t len);

/* The route's default priority string. */
const char *tls_default_priority(void);

#endif
