#ifndef TLS_H
#define TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <time.h>

#include <gnutls/gnutls.h>

struct tls_ctx;
struct tls_tickets;

enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRE,
	TLS_VERIFY_PIN };

/*
 * A route's TLS side as configured: what tls_ctx_new() loads. The strings
 * are the caller's and must outlive the context (they are the route's).
 */
struct tls_conf {
	const char	*name;		/* the route's: log lines, ticket key */
	int		 server;	/* accepts TLS; else connects with it */
	const char	*cert, *key;	/* NULL when not set */
	const char	*ca;		/* a file, "system", or NULL */
	enum tls_verify	 verify;
	const char	*server_name;	/* connect side: the name to verify */
	int		 sni;		/* send server_name (not an address) */
	char *const	*allow_peers;	/* NULL-terminated, or NULL */
	const char	*priority;	/* NULL: the default */
	const char	*psk_file, *psk_identity;
	int		 resumption;
	const char	*crl;		/* NULL when not set */
	int		 crl_refuse;	/* refuse peers while it is expired */
	char *const	*pins;		/* pin_sha256 (base64), or NULL */
	/* ticket_key_file's keys, or NULL: the process's own key */
	const struct tls_tickets *tickets;
};

/*
 * Called once per problem found while loading: which key of the route
 * ("cert", "priority", ...) and why.
 */
typedef void tls_err_fn(void *arg, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Load the credentials, trust anchors, PSK keys and priorities of a
 * route's TLS side. On failure report each problem through err and return
 * -1. The context is read-only afterwards (but for the tickets a connect
 * side keeps, under its own lock) and may be shared by every thread.
 */
int tls_ctx_new(const struct tls_conf *conf, struct tls_ctx **out,
    tls_err_fn *err, void *arg);
void tls_ctx_free(struct tls_ctx *c);

/*
 * A TLS session's read-ahead buffer: storage the caller provides (it
 * lives in the relay's session) for as long as the GnuTLS session.
 */
struct tls_rbuf {
	int		 fd;
	int		 dontwait;	/* the socket is used non-blocking */
	int		 nowait;	/* empty: EAGAIN, not recv() */
	int		 held;		/* tls_wait met an end or error: */
	int		 held_errno;	/* pull reports it next */
	ssize_t		 held_ret;
	size_t		 off, len;
	size_t		 used;		/* the most data has ever held */
	unsigned char	 data[32 * 1024];
};

/*
 * A handshake in progress, step by step on a non-blocking socket: the
 * caller's storage, from tls_session_new() until tls_open_step() says it
 * is over.
 */
struct tls_open {
	const struct tls_ctx	*ctx;
	int			 step;
	int			 alerted;	/* the peer was told why */
	int			 known;		/* its PSK identity is ours */
	unsigned		 vstatus;	/* why its chain failed */
	int			 resumed;	/* done: a resumed session */
	int			 probe;		/* ended before sending a byte */
	char			 identity[256];	/* the PSK identity it gave */
	char			 peer[384];	/* as logged: peer=... */
};

/*
 * A GnuTLS session on fd for a route's TLS side (server side on a tls
 * accept), receiving through rb; op is set up for tls_open_step(). The
 * session sends and receives without waiting (MSG_DONTWAIT, whatever
 * the socket's own mode) while rb->dontwait is set, as it is at first:
 * clear it once the session is open, for blocking use.
 */
int tls_session_new(const struct tls_ctx *c, int fd, struct tls_rbuf *rb,
    struct tls_open *op, gnutls_session_t *out, char *why, size_t whylen);

/* What tls_open_step() returns. */
enum { TLS_OPEN_DONE, TLS_OPEN_READ, TLS_OPEN_WRITE, TLS_OPEN_FAILED };

/*
 * Take the opening of s as far as its non-blocking socket allows: a
 * server first looks at the client's first bytes (plaintext on a TLS port
 * is refused with a reason that says so), then the handshake, then the
 * one authorization decision (the peer against the route, full handshake
 * or resumed), then a server's session ticket, only now that the client
 * is accepted. TLS_OPEN_READ or TLS_OPEN_WRITE: call again when the socket
 * is readable or writable. TLS_OPEN_DONE: desc holds the log fields
 * ("version=... cipher=... peer=..."). TLS_OPEN_FAILED: why says why (and
 * op->alerted whether the peer was told).
 */
int tls_open_step(gnutls_session_t s, struct tls_open *op, char *why,
    size_t whylen, char *desc, size_t desclen);

/*
 * Client side, resumption on: keep the session's ticket for the route's
 * next connection. Call from the thread that receives on s (a TLS 1.3
 * ticket arrives after the handshake); returns 0 while there is none yet,
 * 1 once done (or nothing to do).
 */
int tls_keep_ticket(const struct tls_ctx *c, gnutls_session_t s);

/* Whether c keeps tickets (a connect side with resumption). */
int tls_keeps_tickets(const struct tls_ctx *c);

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

/*
 * What a PROXY v2 header tells of the client's TLS on s (an unwrap route
 * with send_proxy): version, cipher suite, SNI, the client's CN; verifies
 * says the route verified the certificate it let in (verify is not none).
 * The strings are kept in buf, which must outlive pt.
 */
struct pp_tls;
#define TLS_PP_BUF	700
void tls_proxy_info(gnutls_session_t s, int verifies, struct pp_tls *pt,
    char buf[TLS_PP_BUF]);

/* When the route's own certificate expires; (time_t)-1 if it has none. */
time_t tls_cert_expiry(const struct tls_ctx *c);

/*
 * Each weakening found in the route's TLS side, through warn with the key
 * it is about: a priority string that allows what the default does not
 * (older protocols, CBC ciphers, RSA key exchange, SHA-1 signatures, as
 * GnuTLS enables them), a key or PSK file open to group or others, a
 * certificate that has expired or expires within 30 days, or whose
 * extended key usage does not allow the route's side, a CRL past its next
 * update.
 */
void tls_warnings(const struct tls_ctx *c, tls_err_fn *warn, void *arg);

/* What --check prints of a route's TLS identity, as log-style fields. */
int tls_identity(const struct tls_ctx *c, char *buf, size_t len);

/*
 * The pin_sha256 of the first certificate of a PEM file (the base64
 * SHA-256 of its SubjectPublicKeyInfo) into buf; -1 with why set.
 */
int tls_pin_file(const char *path, char *buf, size_t len, char *why,
    size_t whylen);

/*
 * Session-ticket keys shared by processes and hosts (ticket_key_file): a
 * text file of one or two keys, each 64 bytes in base64 on a line of its
 * own, the current key first and the previous one after it; lines that
 * start with # and empty lines are skipped. Load fills *out (-1 with why
 * set); keys says how many, mode the file's permission bits.
 */
int tls_tickets_load(const char *path, struct tls_tickets **out,
    unsigned *keys, unsigned *mode, char *why, size_t whylen);
void tls_tickets_free(struct tls_tickets *t);	/* wiped */

/*
 * tlsgate --gen-ticket-key: write a new current key to path (mode 0600,
 * by rename, so that a reader sees the old file or the new one), with
 * the current key of the file it replaces, if any, as the previous one.
 * kept says whether there was one. -1 with why set.
 */
int tls_tickets_generate(const char *path, int *kept, char *why,
    size_t whylen);

/* When the route's CRL soonest needs its next update; -1 if none. */
time_t tls_crl_next_update(const struct tls_ctx *c);

/* The route's default priority string. */
const char *tls_default_priority(void);

#endif
