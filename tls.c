/*
 * tls.c: GnuTLS credentials, sessions and peer verification.
 *
 * A struct tls_ctx holds what a route's TLS side needs (certificate
 * credentials, PSK keys, priorities, the ticket key). It is built once per
 * load, read-only afterwards, and freed with its route when the last
 * session using it ends: GnuTLS keeps pointers to credentials for the life
 * of every session that uses them.
 */
#include <sys/stat.h>

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "log.h"
#include "pp.h"
#include "tls.h"

/* TLS 1.2 and 1.3, AEAD ciphers and ECDHE only, AES-GCM first. */
#define DEFAULT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:" \
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:" \
	"+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:" \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:%SERVER_PRECEDENCE"
/* PSK with (EC)DHE only, so that forward secrecy holds. */
#define PSK_PRIORITY ":+ECDHE-PSK:+DHE-PSK"

#define PSK_MAX	64	/* bytes of key */

/* What gnutls_session_ticket_enable_server() takes: 64 bytes. */
#define TICKET_KEY_SIZE	64

/*
 * Session tickets a wrap route keeps: each is used once and every session
 * brings a new one, so connections that start together can all resume as
 * long as the pool holds as many as start at once.
 */
#define TICKETS	64

/*
 * A chain verified against a context: its digest, and until when the
 * result stands: VERIFIED_MS at most (monotonic), and never past the
 * expiry of any certificate of the chain (wall clock).
 */
#define VERIFIED	64
#define VERIFIED_MS	60000

struct verified {
	unsigned char	 digest[32];
	int64_t		 until;		/* ms, monotonic; 0: empty */
	time_t		 not_after;
};

/*
 * A CRL, indexed: its issuer, when it needs its next update, and the
 * serials it revokes, sorted (leading zero bytes dropped). GnuTLS looks
 * a serial up in a CRL entry by entry, on every verification: about
 * 1.5 ms a handshake for 10,000 entries; here it is a binary search.
 */
#define SERIAL_MAX	32

struct serial {
	unsigned char	 len;
	unsigned char	 b[SERIAL_MAX];
};

struct crl {
	gnutls_datum_t	 issuer;	/* raw DN */
	time_t		 next_update;	/* (time_t)-1: none given */
	struct serial	*serials;
	size_t		 n;
};

/*
 * Status bits of our own checks, above GnuTLS's: the peer's key is not
 * pinned; a CRL that covers the peer has expired (crl_expired = refuse).
 */
#define STATUS_PIN		(1u << 30)
#define STATUS_CRL_EXPIRED	(1u << 29)

struct psk {
	char		*identity;
	unsigned char	 key[PSK_MAX];
	size_t		 keylen;
};

struct tls_ctx {
	struct tls_conf			 conf;	/* its strings are the route's */
	int				 server;
	time_t				 cert_expiry;	/* or -1 */
	/* What tls_warnings() says, found while loading. */
	unsigned			 key_mode, psk_mode;	/* 0: fine */
	int				 cert_purpose_ok;
	char				 weaker[256];	/* than the default */
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t	 psk_server;
	gnutls_psk_client_credentials_t	 psk_client;
	gnutls_priority_t		 prio;
	/*
	 * Server side with resumption: the route's ticket key (below), and
	 * the datum GnuTLS is given, pointing to it; empty without. With a
	 * previous key in ticket_key_file, the route's key from it too.
	 */
	unsigned char			 ticket_key[TICKET_KEY_SIZE];
	gnutls_datum_t			 ticket;
	unsigned char			 ticket_prev_key[TICKET_KEY_SIZE];
	gnutls_datum_t			 ticket_prev;
	struct psk			*psk;
	size_t				 npsk;
	/*
	 * What the peer's certificate is checked against: its chain, its
	 * name (connect side) and its purpose. nvdata is 0 when the route
	 * does not verify. With in_handshake (verify = require, or any
	 * verification on a connect), GnuTLS checks a full handshake's peer
	 * before the handshake completes, so a server that fails is refused
	 * before the client certificate and Finished go out; everything
	 * else (verify = optional, and every resumed session) is checked
	 * after the handshake, by authorize().
	 */
	gnutls_typed_vdata_st		 vdata[2];
	unsigned			 nvdata;
	int				 in_handshake;
	/*
	 * Client side with resumption: the newest session tickets, each
	 * used once. The only mutable part, under lock.
	 */
	int				 resume;
	pthread_mutex_t			 lock;
	gnutls_datum_t			 tickets[TICKETS];
	size_t				 ntickets;
	/*
	 * Peer chains this context has verified lately (verify_chain), under
	 * lock: a chain is verified once, not at every handshake or
	 * resumption of the same peer (an ECDSA verification a side: about
	 * a quarter of a full handshake's CPU, half of a resumed one's).
	 */
	struct verified			 verified[VERIFIED];
	unsigned			 nextv;
	/* crl and pin_sha256: checked after the chain, or instead of it. */
	struct crl			*crls;
	size_t				 ncrls;
	time_t				 crl_next;	/* soonest; or -1 */
	unsigned char			(*pins)[32];
	size_t				 npins;
};

/*
 * GnuTLS reads a record in two reads, its header and then its body. The
 * session's read-ahead buffer takes whatever the socket holds in one
 * recv() instead, and GnuTLS's reads are served from it: for bulk data,
 * one system call brings in two records rather than two calls one.
 */
static ssize_t
pull(gnutls_transport_ptr_t ptr, void *buf, size_t n)
{
	struct tls_rbuf *rb = ptr;
	ssize_t r;

	if (rb->len == 0) {
		if (rb->held) {
			rb->held = 0;
			errno = rb->held_errno;
			return rb->held_ret;
		}
		if (rb->nowait) {
			errno = EAGAIN;
			return -1;
		}
		if ((r = recv(rb->fd, rb->data, sizeof(rb->data),
		    rb->dontwait ? MSG_DONTWAIT : 0)) <= 0)
			return r;	/* errno tells GnuTLS why */
		rb->off = 0;
		rb->len = (size_t)r;
		if (rb->len > rb->used)
			rb->used = rb->len;
	}
	if (n > rb->len)
		n = rb->len;
	memcpy(buf, rb->data + rb->off, n);
	rb->off += n;
	rb->len -= n;
	return (ssize_t)n;
}

/* GnuTLS's sending: one sendmsg(), without SIGPIPE, and without waiting
   while the session is being opened. */
static ssize_t
push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	const struct tls_rbuf *rb = ptr;
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)(uintptr_t)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	return sendmsg(rb->fd, &msg, MSG_NOSIGNAL |
	    (rb->dontwait ? MSG_DONTWAIT : 0));
}

/*
 * GnuTLS's wait for data: > 0 ready, 0 timed out, -1 error. Handshakes run
 * on non-blocking sockets with no GnuTLS timeout, and the relay sets no
 * record timeout: only gnutls_session_get_data2() would wait here.
 */
static int
pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	const struct tls_rbuf *rb = ptr;
	struct pollfd pfd = { rb->fd, POLLIN, 0 };
	int rc;

	if (rb->len > 0)
		return 1;
	while ((rc = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 :
	    (int)ms)) == -1 && errno == EINTR)
		;
	return rc;
}

/*
 * Session tickets (server side). A ticket is a session's state sealed
 * with its route's ticket key, and whoever presents it resumes without a
 * certificate: it is issued only once the peer has passed every check of
 * the route (tls_open_step), every resumed session is checked again
 * (authorize), and a route's key is its own and bound to the route's
 * trust settings. The key is HMAC-SHA-512 under a master key made once
 * per process, of the route's name and a digest of verify, allow_peers,
 * pin_sha256 and what ca, psk_file and crl hold. So a ticket never resumes on another
 * route; a reload that leaves a route's trust settings as they were keeps
 * its key (its clients go on resuming), and one that changes any of them
 * gives it a new key, which refuses every ticket issued before.
 *
 * With ticket_key_file, the master key is the file's current key, so
 * every process that reads the file, on any host, makes the same route
 * keys and resumes the others' tickets; the file's previous key, if any,
 * makes each route a previous key too (ticket_pick).
 */
struct tls_tickets {
	unsigned char	 key[2][TICKET_KEY_SIZE];	/* current, previous */
	unsigned	 n;
};

static unsigned char	 ticket_master[TICKET_KEY_SIZE];
static pthread_once_t	 ticket_master_once = PTHREAD_ONCE_INIT;
static int		 ticket_master_ret;

static void
ticket_master_make(void)
{
	ticket_master_ret = gnutls_rnd(GNUTLS_RND_KEY, ticket_master,
	    sizeof(ticket_master));
}

/* A field's length, before the field, so that fields cannot run into
   each other. */
static void
digest_len(gnutls_hash_hd_t h, uint64_t len)
{
	unsigned char n[8];
	size_t i;

	for (i = 0; i < sizeof(n); i++)
		n[i] = (unsigned char)(len >> (8 * i));
	(void)gnutls_hash(h, n, sizeof(n));
}

static void
digest_field(gnutls_hash_hd_t h, const void *data, size_t len)
{
	digest_len(h, len);
	(void)gnutls_hash(h, data, len);
}

/* What a file holds, into the digest (the buffer wiped: it may be keys). */
static int
digest_file(gnutls_hash_hd_t h, const char *path)
{
	unsigned char buf[4096];
	struct stat st;
	uint64_t left;
	ssize_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return GNUTLS_E_FILE_ERROR;
	if (fstat(fd, &st) == -1) {
		(void)close(fd);
		return GNUTLS_E_FILE_ERROR;
	}
	digest_len(h, (uint64_t)st.st_size);
	for (left = (uint64_t)st.st_size; left > 0; left -= (uint64_t)n) {
		n = read(fd, buf, left < sizeof(buf) ? (size_t)left :
		    sizeof(buf));
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break;
		(void)gnutls_hash(h, buf, (size_t)n);
	}
	explicit_bzero(buf, sizeof(buf));
	(void)close(fd);
	return left == 0 ? 0 : GNUTLS_E_FILE_ERROR;
}

static int
ticket_key_make(struct tls_ctx *c, const struct tls_conf *r)
{
	const unsigned char *master = ticket_master;
	unsigned char digest[32], msg[64 + 256 + sizeof(digest)];
	const char *label = "tlsgate route ticket key";
	gnutls_hash_hd_t h;
	unsigned char v = (unsigned char)r->verify;
	size_t i, n, len;
	int ret;

	if (r->tickets != NULL)
		master = r->tickets->key[0];
	else if ((ret = pthread_once(&ticket_master_once,
	    ticket_master_make)) != 0)
		return GNUTLS_E_INTERNAL_ERROR;
	else if (ticket_master_ret < 0)
		return ticket_master_ret;
	if ((ret = gnutls_hash_init(&h, GNUTLS_DIG_SHA256)) < 0)
		return ret;
	digest_field(h, &v, 1);
	for (i = 0; r->allow_peers != NULL && r->allow_peers[i] != NULL; i++)
		digest_field(h, r->allow_peers[i], strlen(r->allow_peers[i]));
	digest_field(h, "ca", 2);
	if (r->ca != NULL && strcmp(r->ca, "system") == 0)
		digest_field(h, "system", 6);
	else if (r->ca != NULL)
		ret = digest_file(h, r->ca);
	digest_field(h, "psk", 3);
	if (ret == 0 && r->psk_file != NULL)
		ret = digest_file(h, r->psk_file);
	digest_field(h, "crl", 3);
	if (ret == 0 && r->crl != NULL)
		ret = digest_file(h, r->crl);
	digest_field(h, "pins", 4);
	for (i = 0; i < c->npins; i++)
		digest_field(h, c->pins[i], 32);
	gnutls_hash_deinit(h, digest);
	if (ret < 0)
		return ret;
	len = strlen(label) + 1;
	memcpy(msg, label, len);
	n = strlen(r->name) + 1;
	if (n > 256)
		return GNUTLS_E_INVALID_REQUEST;
	memcpy(msg + len, r->name, n);
	len += n;
	memcpy(msg + len, digest, sizeof(digest));
	len += sizeof(digest);
	ret = gnutls_hmac_fast(GNUTLS_MAC_SHA512, master, TICKET_KEY_SIZE,
	    msg, len, c->ticket_key);
	if (ret < 0)
		return ret;
	c->ticket.data = c->ticket_key;
	c->ticket.size = sizeof(c->ticket_key);
	if (r->tickets == NULL || r->tickets->n < 2)
		return 0;
	ret = gnutls_hmac_fast(GNUTLS_MAC_SHA512, r->tickets->key[1],
	    TICKET_KEY_SIZE, msg, len, c->ticket_prev_key);
	if (ret < 0)
		return ret;
	c->ticket_prev.data = c->ticket_prev_key;
	c->ticket_prev.size = sizeof(c->ticket_prev_key);
	return 0;
}

/*
 * Which of a route's keys GnuTLS gets for a session, when the route has a
 * previous key: GnuTLS takes one key per session, so it is chosen by the
 * ticket the ClientHello offers (its first PSK identity). GnuTLS seals a
 * ticket with a key it derives from the one it is given and the time:
 * the SHA3-512 of the number of TICKET_WINDOW periods since the epoch
 * (64 bits, big-endian) and the key, whose first 16 bytes (the key's
 * name) begin the ticket; it opens tickets of this period and the one
 * before. Should GnuTLS derive its keys otherwise one day, a ticket of
 * the previous key would get a full handshake, nothing worse. The new
 * ticket of a session is sealed with the key it resumed with: GnuTLS
 * takes no second key in a session.
 */
#define TICKET_WINDOW	(21600 * 3)	/* GnuTLS: expire_time x 3, in s */
#define TICKET_NAME	16

struct offered {
	unsigned char	 name[TICKET_NAME];
	int		 found;
};

/* gnutls_ext_raw_parse(): the pre_shared_key extension's first identity. */
static int
first_identity(void *arg, unsigned id, const unsigned char *data,
    unsigned len)
{
	struct offered *o = arg;

	/* identities<7..2^16-1>, each an identity<1..2^16-1> and its age */
	if (id == 41 && len >= 4 + TICKET_NAME &&
	    (((unsigned)data[2] << 8) | data[3]) >= TICKET_NAME) {
		memcpy(o->name, data + 4, TICKET_NAME);
		o->found = 1;
	}
	return 0;
}

/* Is name the name GnuTLS gives key now, or in the period before? */
static int
ticket_named(const unsigned char *key, const unsigned char *name)
{
	unsigned char in[8 + TICKET_KEY_SIZE], out[64];
	uint64_t t = (uint64_t)time(NULL) / TICKET_WINDOW;
	int i, k, match = 0;

	memcpy(in + 8, key, TICKET_KEY_SIZE);
	for (k = 0; k < 2 && !match; k++, t--) {
		for (i = 0; i < 8; i++)
			in[i] = (unsigned char)(t >> (56 - 8 * i));
		if (gnutls_hash_fast(GNUTLS_DIG_SHA3_512, in, sizeof(in),
		    out) == 0)
			match = memcmp(out, name, TICKET_NAME) == 0;
	}
	explicit_bzero(in, sizeof(in));
	explicit_bzero(out, sizeof(out));
	return match;
}

/* The ClientHello's hook: give the session the key of its ticket. */
static int
ticket_pick(gnutls_session_t s, unsigned type, unsigned when,
    unsigned incoming, const gnutls_datum_t *msg)
{
	struct tls_open *op = gnutls_session_get_ptr(s);
	struct offered o = { { 0 }, 0 };

	(void)type;
	(void)when;
	(void)incoming;
	if (op == NULL)
		return 0;
	if (gnutls_ext_raw_parse(&o, first_identity, msg,
	    GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO) < 0)
		o.found = 0;
	/* A second ClientHello (after HelloRetryRequest): already set. */
	(void)gnutls_session_ticket_enable_server(s, o.found &&
	    ticket_named(op->ctx->ticket_prev_key, o.name) ?
	    &op->ctx->ticket_prev : &op->ctx->ticket);
	return 0;
}

/* Tickets hold key material: wipe them. */
static void
ticket_free(gnutls_datum_t *t)
{
	if (t->data == NULL)
		return;
	gnutls_memset(t->data, 0, t->size);
	gnutls_free(t->data);
	t->data = NULL;
}

const char *
tls_default_priority(void)
{
	return DEFAULT_PRIORITY;
}

/*
 * A file's bytes, read at once into one buffer of the file's size (so
 * that no copy of a key is left behind by a buffer that grew), with a
 * NUL after them. file_free() wipes it.
 */
struct file {
	unsigned char	*data;
	size_t		 len;
	mode_t		 mode;
};

#define FILE_MAX	(64 * 1024 * 1024)

static void
file_free(struct file *f)
{
	if (f->data != NULL) {
		explicit_bzero(f->data, f->len + 1);
		free(f->data);
	}
	f->data = NULL;
	f->len = 0;
}

/*
 * Read path for key k of the route. Names the cause the way open(2)
 * does; with pem set, the file must also hold a PEM block of that kind.
 * f->mode tells who else may read it.
 */
static int
file_load(const char *path, const char *pem, tls_err_fn *err, void *arg,
    const char *k, struct file *f)
{
	char buf[128];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, e = 0;

	memset(f, 0, sizeof(*f));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		e = errno;
	else if (fstat(fd, &st) == -1)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	else if (st.st_size > FILE_MAX)
		e = EFBIG;
	else if ((f->data = malloc((size_t)st.st_size + 1)) == NULL)
		e = ENOMEM;
	while (e == 0 && got < (size_t)st.st_size) {
		if ((n = read(fd, f->data + got, (size_t)st.st_size - got)) ==
		    -1 && errno == EINTR)
			continue;
		if (n == -1)
			e = errno;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (fd != -1)
		(void)close(fd);
	if (e != 0) {
		f->len = got;
		file_free(f);
		err(arg, k, "cannot read %s: %s", path,
		    log_strerror(e, buf, sizeof(buf)));
		return -1;
	}
	f->len = got;
	f->data[got] = '\0';
	f->mode = st.st_mode;
	if (pem != NULL && (memmem(f->data, f->len, "-----BEGIN ", 11) ==
	    NULL || memmem(f->data, f->len, pem, strlen(pem)) == NULL)) {
		file_free(f);
		err(arg, k, "no PEM %s in %s", pem[0] == 'C' ? "certificate" :
		    pem[0] == 'X' ? "CRL" : "private key", path);
		return -1;
	}
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One "identity:hexkey" line into p; returns NULL or what is wrong. */
static const char *
psk_parse_line(char *line, struct psk *p)
{
	char *colon, *hex, *e;
	size_t i, n;

	if ((colon = strrchr(line, ':')) == NULL)
		return "expected identity:hexkey";
	*colon = '\0';
	hex = colon + 1;
	for (e = hex + strlen(hex); e > hex && (e[-1] == '\n' ||
	    e[-1] == '\r' || e[-1] == ' '); )
		*--e = '\0';
	n = strlen(hex);
	if (line[0] == '\0')
		return "empty identity";
	if (strlen(line) > 255)
		return "identity longer than 255 bytes";
	if (n == 0 || n % 2 != 0 || n / 2 > PSK_MAX)
		return "key must be 2 to 128 hex digits, an even count";
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return "key is not hex";
		p->key[i] = (unsigned char)(hi << 4 | lo);
	}
	p->keylen = n / 2;
	if ((p->identity = strdup(line)) == NULL)
		return "out of memory";
	return NULL;
}

static int
psk_load(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	struct file f;
	char *line, *next, *end;
	const char *why;
	size_t n = 1;
	int lineno = 0, bad = 0;

	if (file_load(r->psk_file, NULL, err, arg, "psk_file", &f) ==
	    -1)
		return -1;
	if ((f.mode & 077) != 0)
		c->psk_mode = (unsigned)(f.mode & 07777);
	/* One array for every line: never moved, so no copy is left. */
	for (line = (char *)f.data; (line = strchr(line, '\n')) != NULL;
	    line++)
		n++;
	if ((c->psk = calloc(n, sizeof(*c->psk))) == NULL) {
		file_free(&f);
		err(arg, "psk_file", "out of memory");
		return -1;
	}
	end = (char *)f.data + f.len;
	for (line = (char *)f.data; line < end; line = next) {
		if ((next = memchr(line, '\n', (size_t)(end - line))) != NULL)
			*next++ = '\0';
		else
			next = end;
		lineno++;
		if (line[0] == '\0' || line[0] == '#' || line[0] == '\r')
			continue;
		if (strlen(line) > 300) {
			err(arg, "psk_file", "%s:%d: line too long",
			    r->psk_file, lineno);
			bad = -1;
			continue;
		}
		if ((why = psk_parse_line(line, &c->psk[c->npsk])) != NULL) {
			/* What was decoded of a bad line goes too. */
			explicit_bzero(&c->psk[c->npsk], sizeof(c->psk[0]));
			err(arg, "psk_file", "%s:%d: %s", r->psk_file, lineno,
			    why);
			bad = -1;
		} else
			c->npsk++;
	}
	file_free(&f);
	if (bad == 0 && c->npsk == 0) {
		err(arg, "psk_file", "no key in %s", r->psk_file);
		bad = -1;
	}
	return bad;
}

static const struct psk *
psk_find(const struct tls_ctx *c, const char *identity)
{
	size_t i;

	for (i = 0; i < c->npsk; i++)
		if (strcmp(c->psk[i].identity, identity) == 0)
			return &c->psk[i];
	return NULL;
}

/*
 * GnuTLS asks for the key of a client's identity (server side, during
 * the handshake; the session pointer is its struct tls_open).
 */
static int
psk_server_key(gnutls_session_t s, const gnutls_datum_t *user,
    gnutls_datum_t *key)
{
	struct tls_open *seen = gnutls_session_get_ptr(s);
	const struct psk *p;

	if (seen == NULL || user->size >= sizeof(seen->identity))
		return -1;
	memcpy(seen->identity, user->data, user->size);
	seen->identity[user->size] = '\0';
	if ((p = psk_find(seen->ctx, seen->identity)) == NULL)
		return 1;	/* unknown: GnuTLS fails it like a bad key */
	seen->known = 1;
	if ((key->data = gnutls_malloc(p->keylen)) == NULL)
		return -1;
	memcpy(key->data, p->key, p->keylen);
	key->size = (unsigned)p->keylen;
	return 0;
}

static int
psk_setup(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	const struct psk *p;
	gnutls_datum_t key;
	int ret;

	if (psk_load(c, r, err, arg) == -1)
		return -1;
	if (c->server) {
		if ((ret = gnutls_psk_allocate_server_credentials(
		    &c->psk_server)) < 0)
			goto gnutls_fail;
		gnutls_psk_set_server_credentials_function2(c->psk_server,
		    psk_server_key);
		return 0;
	}
	p = (r->psk_identity != NULL) ? psk_find(c, r->psk_identity) :
	    &c->psk[0];
	if (p == NULL) {
		err(arg, "psk_identity", "no identity \"%s\" in %s",
		    r->psk_identity, r->psk_file);
		return -1;
	}
	if ((ret = gnutls_psk_allocate_client_credentials(
	    &c->psk_client)) < 0)
		goto gnutls_fail;
	key.data = (unsigned char *)(uintptr_t)p->key;
	key.size = (unsigned)p->keylen;
	if ((ret = gnutls_psk_set_client_credentials(c->psk_client,
	    p->identity, &key, GNUTLS_PSK_KEY_RAW)) < 0)
		goto gnutls_fail;
	return 0;
gnutls_fail:
	err(arg, "psk_file", "%s", gnutls_strerror(ret));
	return -1;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/*
 * The DER of the first "-----BEGIN ...PRIVATE KEY-----" block of a PEM
 * file, decoded here into a buffer that is wiped after use: GnuTLS's own
 * PEM decoder leaves a copy of the base64 text in memory it frees without
 * wiping. Returns NULL or what is wrong.
 */
static const char *
pem_key_der(const struct file *f, struct file *der)
{
	const char *p = (const char *)f->data, *end = p + f->len, *q, *lbl;
	unsigned v = 0;
	int bits = 0, c;

	memset(der, 0, sizeof(*der));
	for (;;) {
		if ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) ==
		    NULL)
			return "no PEM private key";
		lbl = p + 11;
		if ((q = memmem(lbl, (size_t)(end - lbl), "-----", 5)) == NULL)
			return "no PEM private key";
		p = q + 5;
		if (q - lbl >= 11 && memcmp(q - 11, "PRIVATE KEY", 11) == 0)
			break;
	}
	if ((q = memmem(p, (size_t)(end - p), "-----END ", 9)) == NULL)
		return "PEM private key without its END line";
	if (memchr(p, ':', (size_t)(q - p)) != NULL)
		return "encrypted PEM private keys are not supported";
	if ((der->data = malloc((size_t)(q - p) * 3 / 4 + 1)) == NULL)
		return "out of memory";
	for (; p < q; p++) {
		if (*p == '=' || *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n')
			continue;
		if ((c = b64val((unsigned char)*p)) == -1) {
			file_free(der);
			return "bad base64 in the PEM private key";
		}
		v = v << 6 | (unsigned)c;
		if ((bits += 6) >= 8) {
			bits -= 8;
			der->data[der->len++] = (unsigned char)(v >> bits);
		}
	}
	return NULL;
}

/*
 * The route's certificate chain and key, if any. The key's PEM is
 * decoded here (pem_key_der) and given to GnuTLS as DER.
 */
static int
x509_load_cert(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	struct file crt, key, der = { NULL, 0, 0 };
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t pk = NULL;
	gnutls_datum_t d;
	const char *why = NULL;
	unsigned i, n = 0;
	int ret = 0, bad;

	if (r->cert == NULL || r->key == NULL)	/* reported by config.c */
		return 0;
	bad = file_load(r->cert, "CERTIFICATE", err, arg, "cert", &crt) |
	    file_load(r->key, "PRIVATE KEY", err, arg, "key", &key);
	if (bad == 0 && (key.mode & 077) != 0)
		c->key_mode = (unsigned)(key.mode & 07777);
	if (bad == 0 && (why = pem_key_der(&key, &der)) != NULL)
		err(arg, "key", "%s: %s", r->key, why);
	if (bad == 0 && why == NULL) {
		d.data = crt.data;
		d.size = (unsigned)crt.len;
		if ((ret = gnutls_x509_crt_list_import2(&crts, &n, &d,
		    GNUTLS_X509_FMT_PEM, 0)) < 0)
			err(arg, "cert", "cannot load %s: %s", r->cert,
			    gnutls_strerror(ret));
	}
	if (bad == 0 && why == NULL && ret >= 0) {
		d.data = der.data;
		d.size = (unsigned)der.len;
		if ((ret = gnutls_x509_privkey_init(&pk)) < 0 ||
		    (ret = gnutls_x509_privkey_import2(pk, &d,
		    GNUTLS_X509_FMT_DER, NULL, 0)) < 0)
			err(arg, "key", "cannot load %s: %s", r->key,
			    gnutls_strerror(ret));
		else if ((ret = gnutls_certificate_set_x509_key(c->x509,
		    crts, n, pk)) == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
			err(arg, "key", "%s does not match the certificate "
			    "in %s", r->key, r->cert);
		else if (ret < 0)
			err(arg, "cert", "cannot load %s with key %s: %s",
			    r->cert, r->key, gnutls_strerror(ret));
		else {
			c->cert_expiry =
			    gnutls_x509_crt_get_expiration_time(crts[0]);
			c->cert_purpose_ok = gnutls_x509_crt_check_key_purpose(
			    crts[0], c->server ? GNUTLS_KP_TLS_WWW_SERVER :
			    GNUTLS_KP_TLS_WWW_CLIENT, 0) != 0;
		}
	}
	if (pk != NULL)
		gnutls_x509_privkey_deinit(pk);
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	file_free(&der);
	file_free(&crt);
	file_free(&key);
	return (bad || why != NULL || ret < 0) ? -1 : 0;
}

/* The route's trust anchors, if any: a file, or the system's. */
static int
x509_load_ca(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	struct file f;
	gnutls_datum_t d;
	int ret;

	if (r->ca == NULL)
		return 0;
	if (strcmp(r->ca, "system") == 0) {
		ret = gnutls_certificate_set_x509_system_trust(c->x509);
		if (ret <= 0) {
			err(arg, "ca", "no system trust store: %s",
			    ret < 0 ? gnutls_strerror(ret) :
			    "no certificates");
			return -1;
		}
		return 0;
	}
	if (file_load(r->ca, "CERTIFICATE", err, arg, "ca", &f) == -1)
		return -1;
	d.data = f.data;
	d.size = (unsigned)f.len;
	ret = gnutls_certificate_set_x509_trust_mem(c->x509, &d,
	    GNUTLS_X509_FMT_PEM);
	file_free(&f);
	if (ret <= 0) {
		err(arg, "ca", "no CA certificate in %s%s%s", r->ca,
		    ret < 0 ? ": " : "", ret < 0 ? gnutls_strerror(ret) : "");
		return -1;
	}
	return 0;
}

/* A serial as the index keeps it: leading zero bytes dropped. */
static int
serial_set(struct serial *sr, const unsigned char *b, size_t len)
{
	while (len > 1 && b[0] == 0) {
		b++;
		len--;
	}
	if (len > SERIAL_MAX)
		return -1;
	sr->len = (unsigned char)len;
	memcpy(sr->b, b, len);
	return 0;
}

static int
serial_cmp(const void *x, const void *y)
{
	const struct serial *a = x, *b = y;

	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->b, b->b, a->len);
}

/* Is crl signed by a CA of c's trust anchors? */
static int
crl_signed(const struct tls_ctx *c, gnutls_x509_crl_t crl,
    const gnutls_datum_t *issuer)
{
	gnutls_x509_trust_list_t tl;
	gnutls_x509_trust_list_iter_t it = NULL;
	gnutls_x509_crt_t ca;
	gnutls_datum_t dn;
	/* dates are judged by crl_expired, not here; GnuTLS marks a CRL
	 * past its next update INVALID as well as SUPERSEDED */
	unsigned st, when = GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED |
	    GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE;
	int ok = 0;

	gnutls_certificate_get_trust_list(c->x509, &tl);
	while (!ok && gnutls_x509_trust_list_iter_get_ca(tl, &it, &ca) == 0) {
		if (gnutls_x509_crt_get_raw_dn(ca, &dn) == 0) {
			ok = dn.size == issuer->size &&
			    memcmp(dn.data, issuer->data, dn.size) == 0 &&
			    gnutls_x509_crl_verify(crl, &ca, 1, 0, &st) >= 0 &&
			    (st & ~(when | GNUTLS_CERT_INVALID)) == 0 &&
			    ((st & GNUTLS_CERT_INVALID) == 0 || (st & when) != 0);
			gnutls_free(dn.data);
		}
		gnutls_x509_crt_deinit(ca);
	}
	if (it != NULL)
		gnutls_x509_trust_list_iter_deinit(it);
	return ok;
}

/* Index one CRL of the route's file into x; NULL or what is wrong. */
static const char *
crl_index(const struct tls_ctx *c, gnutls_x509_crl_t crl, struct crl *x)
{
	gnutls_x509_crl_iter_t it = NULL;
	unsigned char b[64];
	size_t size, i;
	time_t t;
	int n, ret;

	if (gnutls_x509_crl_get_raw_issuer_dn(crl, &x->issuer) < 0)
		return "no issuer";
	if (!crl_signed(c, crl, &x->issuer))
		return "not signed by a CA of ca";
	x->next_update = gnutls_x509_crl_get_next_update(crl);
	if ((n = gnutls_x509_crl_get_crt_count(crl)) < 0)
		n = 0;
	if (n > 0 && (x->serials = calloc((size_t)n,
	    sizeof(*x->serials))) == NULL)
		return "out of memory";
	for (i = 0; i < (size_t)n; i++) {
		size = sizeof(b);
		ret = gnutls_x509_crl_iter_crt_serial(crl, &it, b, &size, &t);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (ret < 0 || serial_set(&x->serials[x->n], b, size) == -1) {
			gnutls_x509_crl_iter_deinit(it);
			return "a serial number it cannot read";
		}
		x->n++;
	}
	if (it != NULL)
		gnutls_x509_crl_iter_deinit(it);
	if (x->n > 1)
		qsort(x->serials, x->n, sizeof(*x->serials), serial_cmp);
	return NULL;
}

/* The route's CRLs (crl), checked against its trust anchors and indexed. */
static int
crl_load(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	gnutls_x509_crl_t *list = NULL;
	gnutls_datum_t d;
	struct file f;
	const char *why;
	unsigned n = 0, i;
	int ret, bad = 0;

	if (r->crl == NULL)
		return 0;
	if (file_load(r->crl, "X509 CRL", err, arg, "crl", &f) == -1)
		return -1;
	d.data = f.data;
	d.size = (unsigned)f.len;
	ret = gnutls_x509_crl_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM,
	    0);
	file_free(&f);
	if (ret < 0 || n == 0) {
		err(arg, "crl", "cannot load %s: %s", r->crl, ret < 0 ?
		    gnutls_strerror(ret) : "no CRL");
		return -1;
	}
	if ((c->crls = calloc(n, sizeof(*c->crls))) == NULL) {
		err(arg, "crl", "out of memory");
		bad = -1;
	}
	c->crl_next = (time_t)-1;
	for (i = 0; bad == 0 && i < n; i++, c->ncrls++) {
		if ((why = crl_index(c, list[i], &c->crls[i])) != NULL) {
			err(arg, "crl", "%s: CRL %u: %s", r->crl, i + 1, why);
			bad = -1;
		} else if (c->crls[i].next_update != (time_t)-1 &&
		    (c->crl_next == (time_t)-1 ||
		    c->crls[i].next_update < c->crl_next))
			c->crl_next = c->crls[i].next_update;
	}
	for (i = 0; i < n; i++)
		gnutls_x509_crl_deinit(list[i]);
	gnutls_free(list);
	return bad;
}

static void
crl_free(struct tls_ctx *c)
{
	size_t i;

	for (i = 0; i < c->ncrls; i++) {
		gnutls_free(c->crls[i].issuer.data);
		free(c->crls[i].serials);
	}
	free(c->crls);
}

/* pin_sha256: each the base64 of a SHA-256 digest. */
static int
pins_load(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	gnutls_datum_t in, out;
	size_t n, i;
	int bad = 0;

	for (n = 0; r->pins != NULL && r->pins[n] != NULL; n++)
		;
	if (n == 0)
		return 0;
	if ((c->pins = calloc(n, sizeof(*c->pins))) == NULL) {
		err(arg, "pin_sha256", "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		in.data = (unsigned char *)(uintptr_t)r->pins[i];
		in.size = (unsigned)strlen(r->pins[i]);
		out.data = NULL;
		if (gnutls_base64_decode2(&in, &out) < 0 || out.size != 32) {
			err(arg, "pin_sha256", "not the base64 of a SHA-256 "
			    "digest: \"%s\"", r->pins[i]);
			bad = -1;
		} else
			memcpy(c->pins[c->npins++], out.data, 32);
		gnutls_free(out.data);
	}
	return bad;
}

static int
x509_setup(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	int ret, bad;

	if ((ret = gnutls_certificate_allocate_credentials(&c->x509)) < 0) {
		err(arg, "cert", "%s", gnutls_strerror(ret));
		return -1;
	}
	/* All, so that an error in one does not hide one in another. */
	bad = x509_load_cert(c, r, err, arg) | x509_load_ca(c, r, err, arg);
	return bad ? -1 : crl_load(c, r, err, arg);
}

/* Is v one of the n values of list? */
static int
listed(const unsigned *list, int n, unsigned v)
{
	int i;

	for (i = 0; i < n; i++)
		if (list[i] == v)
			return 1;
	return 0;
}

/* The cipher suites a priority enables, by index; their count. */
static int
suites(gnutls_priority_t p, unsigned *out, int max)
{
	unsigned i, sidx;
	int n = 0, ret;

	for (i = 0; n < max; i++) {
		ret = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (ret == 0)
			out[n++] = sidx;
	}
	return n;
}

/*
 * What priority p allows that the default priority does not, asked of
 * GnuTLS (the protocols, cipher suites and signature algorithms each
 * string enables), in words: "TLS1.1, CBC ciphers, RSA key exchange,
 * SHA-1 signatures" and the like; empty when nothing.
 */
static void
prio_weaker(gnutls_priority_t p, int psk, char *out, size_t len)
{
	gnutls_priority_t def = NULL;
	const unsigned *pl, *dl;
	unsigned ps[512], ds[512];
	gnutls_kx_algorithm_t kx;
	gnutls_mac_algorithm_t mac;
	gnutls_cipher_algorithm_t cipher;
	char what[64];
	size_t o = 0;
	int np, nd, i, cbc = 0, rsa = 0, other = 0, sha1 = 0, tls12 = 0;
	char *s = NULL;

	out[0] = '\0';
	if (asprintf(&s, "%s%s", DEFAULT_PRIORITY, psk ? PSK_PRIORITY : "") ==
	    -1)
		return;
	if (gnutls_priority_init(&def, s, NULL) < 0) {
		free(s);
		return;
	}
	free(s);
	/* Protocols. */
	np = gnutls_priority_protocol_list(p, &pl);
	nd = gnutls_priority_protocol_list(def, &dl);
	for (i = 0; i < np; i++) {
		if (strncmp(gnutls_protocol_get_name(pl[i]), "DTLS", 4) == 0)
			continue;
		if (pl[i] != GNUTLS_TLS1_3)
			tls12 = 1;
		if (!listed(dl, nd, pl[i]) && o + 16 < len)
			o += (size_t)snprintf(out + o, len - o, "%s%s",
			    o ? ", " : "", gnutls_protocol_get_name(pl[i]));
	}
	/* Cipher suites. */
	np = suites(p, ps, 512);
	nd = suites(def, ds, 512);
	for (i = 0; i < np; i++) {
		if (listed(ds, nd, ps[i]) || gnutls_cipher_suite_info(ps[i],
		    NULL, &kx, &cipher, &mac, NULL) == NULL)
			continue;
		if (mac != GNUTLS_MAC_AEAD)
			cbc = 1;
		else if (kx == GNUTLS_KX_RSA || kx == GNUTLS_KX_RSA_PSK)
			rsa = 1;
		else
			other = 1;
		if (kx == GNUTLS_KX_RSA || kx == GNUTLS_KX_RSA_PSK)
			rsa = 1;
	}
	/* Signature algorithms: TLS 1.3 refuses SHA-1 in handshakes. */
	np = tls12 ? gnutls_priority_sign_list(p, &pl) : 0;
	nd = gnutls_priority_sign_list(def, &dl);
	for (i = 0; i < np; i++)
		if (!listed(dl, nd, pl[i]) && gnutls_sign_get_hash_algorithm(
		    pl[i]) == GNUTLS_DIG_SHA1)
			sha1 = 1;
	gnutls_priority_deinit(def);
	for (i = 0; i < 4; i++) {
		if (!(i == 0 ? cbc : i == 1 ? rsa : i == 2 ? sha1 : other))
			continue;
		snprintf(what, sizeof(what), "%s", i == 0 ?
		    "CBC ciphers" : i == 1 ? "RSA key exchange" : i == 2 ?
		    "SHA-1 signatures" : "other cipher suites");
		if (o + strlen(what) + 3 < len)
			o += (size_t)snprintf(out + o, len - o, "%s%s",
			    o ? ", " : "", what);
	}
}

static int
prio_setup(struct tls_ctx *c, const struct tls_conf *r, tls_err_fn *err,
    void *arg)
{
	char *s = NULL;
	const char *pos = NULL;
	int ret;

	if (r->priority != NULL)
		s = strdup(r->priority);
	else if (asprintf(&s, "%s%s", DEFAULT_PRIORITY,
	    r->psk_file != NULL ? PSK_PRIORITY : "") == -1)
		s = NULL;
	if (s == NULL) {
		err(arg, "priority", "out of memory");
		return -1;
	}
	ret = gnutls_priority_init(&c->prio, s, &pos);
	if (ret >= 0)
		prio_weaker(c->prio, r->psk_file != NULL, c->weaker,
		    sizeof(c->weaker));
	if (ret < 0) {
		if (ret == GNUTLS_E_INVALID_REQUEST && pos != NULL)
			err(arg, "priority", "bad priority string at "
			    "position %td: \"%s\"", pos - s, pos);
		else
			err(arg, "priority", "%s", gnutls_strerror(ret));
		free(s);
		return -1;
	}
	free(s);
	return 0;
}

int
tls_ctx_new(const struct tls_conf *r, struct tls_ctx **out, tls_err_fn *err,
    void *arg)
{
	struct tls_ctx *c;
	int bad = 0, ret;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err(arg, "cert", "out of memory");
		return -1;
	}
	c->conf = *r;
	c->server = r->server;
	c->cert_expiry = (time_t)-1;
	c->crl_next = (time_t)-1;
	c->resume = !c->server && r->resumption;
	if ((ret = pthread_mutex_init(&c->lock, NULL)) != 0) {
		free(c);
		err(arg, "cert", "mutex: %d", ret);
		return -1;
	}
	if (r->cert != NULL || r->ca != NULL || r->verify == TLS_VERIFY_PIN)
		bad |= x509_setup(c, r, err, arg);
	bad |= pins_load(c, r, err, arg);
	if (r->psk_file != NULL)
		bad |= psk_setup(c, r, err, arg);
	bad |= prio_setup(c, r, err, arg);
	if (bad == 0 && c->server && r->resumption &&
	    (ret = ticket_key_make(c, r)) < 0) {
		err(arg, "resumption", "ticket key: %s", gnutls_strerror(ret));
		bad = -1;
	}
	if (bad) {
		tls_ctx_free(c);
		return -1;
	}
	if (c->x509 != NULL && r->verify != TLS_VERIFY_NONE) {
		if (!c->server && r->verify != TLS_VERIFY_PIN) {
			c->vdata[c->nvdata].type = GNUTLS_DT_DNS_HOSTNAME;
			c->vdata[c->nvdata++].data =
			    (unsigned char *)(uintptr_t)r->server_name;
		}
		c->vdata[c->nvdata].type = GNUTLS_DT_KEY_PURPOSE_OID;
		c->vdata[c->nvdata++].data = (unsigned char *)(c->server ?
		    GNUTLS_KP_TLS_WWW_CLIENT : GNUTLS_KP_TLS_WWW_SERVER);
		c->in_handshake = r->verify == TLS_VERIFY_REQUIRE ||
		    r->verify == TLS_VERIFY_PIN || !c->server;
	}
	*out = c;
	return 0;
}

void
tls_ctx_free(struct tls_ctx *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->x509 != NULL)
		gnutls_certificate_free_credentials(c->x509);
	if (c->psk_server != NULL)
		gnutls_psk_free_server_credentials(c->psk_server);
	if (c->psk_client != NULL)
		gnutls_psk_free_client_credentials(c->psk_client);
	if (c->prio != NULL)
		gnutls_priority_deinit(c->prio);
	gnutls_memset(c->ticket_key, 0, sizeof(c->ticket_key));
	gnutls_memset(c->ticket_prev_key, 0, sizeof(c->ticket_prev_key));
	for (i = 0; i < c->npsk; i++) {
		explicit_bzero(c->psk[i].key, sizeof(c->psk[i].key));
		free(c->psk[i].identity);
	}
	free(c->psk);
	crl_free(c);
	free(c->pins);
	for (i = 0; i < c->ntickets; i++)
		ticket_free(&c->tickets[i]);
	(void)pthread_mutex_destroy(&c->lock);
	free(c);
}

static void resume_take(struct tls_ctx *, gnutls_session_t);
static int verify_in_handshake(gnutls_session_t);

/* The steps of tls_open_step(). */
enum { STEP_SNIFF, STEP_HANDSHAKE, STEP_TICKET, STEP_OVER };

int
tls_session_new(const struct tls_ctx *c, int fd, struct tls_rbuf *rb,
    struct tls_open *op, gnutls_session_t *out, char *why, size_t whylen)
{
	const struct tls_conf *r = &c->conf;
	gnutls_session_t s = NULL;
	unsigned flags = GNUTLS_NO_SIGNAL;
	int ret;

	/*
	 * A server sends its TLS 1.3 tickets only once the client has
	 * passed every check (tls_open_step). TLS 1.2 sends its ticket
	 * inside the handshake, before allow_peers or verify = optional
	 * could refuse the client: no TLS 1.2 tickets on accept.
	 */
	flags |= c->server ? GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET |
	    GNUTLS_NO_TICKETS_TLS12 : GNUTLS_CLIENT;
	if ((ret = gnutls_init(&s, flags)) < 0)
		goto fail;
	if ((ret = gnutls_priority_set(s, c->prio)) < 0)
		goto fail;
	if (c->x509 != NULL && (ret = gnutls_credentials_set(s,
	    GNUTLS_CRD_CERTIFICATE, c->x509)) < 0)
		goto fail;
	if (c->psk_server != NULL && (ret = gnutls_credentials_set(s,
	    GNUTLS_CRD_PSK, c->psk_server)) < 0)
		goto fail;
	if (c->psk_client != NULL && (ret = gnutls_credentials_set(s,
	    GNUTLS_CRD_PSK, c->psk_client)) < 0)
		goto fail;
	if (c->server) {
		gnutls_certificate_server_set_request(s,
		    r->verify == TLS_VERIFY_REQUIRE ||
		    r->verify == TLS_VERIFY_PIN ? GNUTLS_CERT_REQUIRE :
		    r->verify == TLS_VERIFY_OPTIONAL ? GNUTLS_CERT_REQUEST :
		    GNUTLS_CERT_IGNORE);
		if (c->ticket_prev.data != NULL)
			gnutls_handshake_set_hook_function(s,
			    GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
			    ticket_pick);
		else if (c->ticket.data != NULL &&
		    (ret = gnutls_session_ticket_enable_server(s,
		    &c->ticket)) < 0)
			goto fail;
	} else {
		if (r->sni && (ret = gnutls_server_name_set(s, GNUTLS_NAME_DNS,
		    r->server_name, strlen(r->server_name))) < 0)
			goto fail;
		if (c->resume)
			resume_take((struct tls_ctx *)(uintptr_t)c, s);
	}
	if (c->in_handshake)
		gnutls_session_set_verify_function(s, verify_in_handshake);
	rb->fd = fd;
	rb->dontwait = 1;
	rb->nowait = rb->held = 0;
	rb->off = rb->len = rb->used = 0;
	/* Receive through rb, send with push(). */
	gnutls_transport_set_ptr(s, rb);
	gnutls_transport_set_pull_function(s, pull);
	gnutls_transport_set_vec_push_function(s, push);
	gnutls_transport_set_pull_timeout_function(s, pull_timeout);
	/* The caller bounds the handshake; GnuTLS must never wait itself. */
	gnutls_handshake_set_timeout(s, 0);
	memset(op, 0, sizeof(*op));
	op->ctx = c;
	op->step = c->server ? STEP_SNIFF : STEP_HANDSHAKE;
	gnutls_session_set_ptr(s, op);
	*out = s;
	return 0;
fail:
	snprintf(why, whylen, "tls session: %s", gnutls_strerror(ret));
	if (s != NULL)
		gnutls_deinit(s);
	return -1;
}

/* Offer the route's newest ticket, once: a ticket is not reused. */
static void
resume_take(struct tls_ctx *c, gnutls_session_t s)
{
	gnutls_datum_t t = { NULL, 0 };

	pthread_mutex_lock(&c->lock);
	if (c->ntickets > 0)
		t = c->tickets[--c->ntickets];
	pthread_mutex_unlock(&c->lock);
	if (t.data == NULL)
		return;
	(void)gnutls_session_set_data(s, t.data, t.size);
	ticket_free(&t);
}

int
tls_keeps_tickets(const struct tls_ctx *c)
{
	return c->resume;
}

int
tls_keep_ticket(const struct tls_ctx *cc, gnutls_session_t s)
{
	/* The ticket pool is the one part that changes, under its lock. */
	struct tls_ctx *c = (struct tls_ctx *)(uintptr_t)cc;
	gnutls_datum_t t = { NULL, 0 }, old = { NULL, 0 };

	if (!c->resume)
		return 1;
	/* TLS 1.3 tickets come after the handshake; without one,
	   gnutls_session_get_data2() would read the socket itself. */
	if (gnutls_protocol_get_version(s) == GNUTLS_TLS1_3 &&
	    !(gnutls_session_get_flags(s) & GNUTLS_SFLAGS_SESSION_TICKET))
		return 0;
	if (gnutls_session_get_data2(s, &t) < 0)
		return 1;
	pthread_mutex_lock(&c->lock);
	if (c->ntickets == TICKETS) {	/* full: drop the oldest */
		old = c->tickets[0];
		memmove(&c->tickets[0], &c->tickets[1],
		    (TICKETS - 1) * sizeof(c->tickets[0]));
		c->ntickets--;
	}
	c->tickets[c->ntickets++] = t;
	pthread_mutex_unlock(&c->lock);
	ticket_free(&old);
	return 1;
}

/* The SHA-256 of crt's SubjectPublicKeyInfo (its pin_sha256). */
static int
spki_sha256(gnutls_x509_crt_t crt, unsigned char *out)
{
	gnutls_pubkey_t pk = NULL;
	gnutls_datum_t der = { NULL, 0 };
	int ret;

	if ((ret = gnutls_pubkey_init(&pk)) >= 0 &&
	    (ret = gnutls_pubkey_import_x509(pk, crt, 0)) >= 0 &&
	    (ret = gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der)) >= 0)
		ret = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size,
		    out);
	gnutls_free(der.data);
	if (pk != NULL)
		gnutls_pubkey_deinit(pk);
	return ret < 0 ? -1 : 0;
}

/* The pin_sha256 of a DER certificate, in base64, into buf. */
static int
pin_text(const gnutls_datum_t *der, char *buf, size_t len)
{
	gnutls_x509_crt_t crt;
	unsigned char pin[32];
	gnutls_datum_t raw = { pin, sizeof(pin) }, b64 = { NULL, 0 };
	int ok;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	ok = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0 &&
	    spki_sha256(crt, pin) == 0 && gnutls_base64_encode2(&raw, &b64) >=
	    0 && b64.size < len;
	gnutls_x509_crt_deinit(crt);
	if (ok) {
		memcpy(buf, b64.data, b64.size);
		buf[b64.size] = '\0';
	}
	gnutls_free(b64.data);
	return ok ? 0 : -1;
}

int
tls_pin_file(const char *path, char *buf, size_t len, char *why,
    size_t whylen)
{
	gnutls_x509_crt_t *crts = NULL;
	gnutls_datum_t d, der = { NULL, 0 };
	unsigned n = 0, i;
	char eb[128];
	int ret;

	if ((ret = gnutls_load_file(path, &d)) < 0) {
		snprintf(why, whylen, "cannot read %s: %s", path, errno ?
		    log_strerror(errno, eb, sizeof(eb)) : gnutls_strerror(ret));
		return -1;
	}
	ret = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM,
	    0);
	gnutls_free(d.data);
	if (ret >= 0 && n > 0)
		ret = gnutls_x509_crt_export2(crts[0], GNUTLS_X509_FMT_DER, &der);
	if (ret >= 0 && n > 0 && pin_text(&der, buf, len) == -1)
		ret = GNUTLS_E_INTERNAL_ERROR;
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	gnutls_free(der.data);
	if (ret < 0 || n == 0) {
		snprintf(why, whylen, "%s: %s", path, n == 0 && ret >= 0 ?
		    "no PEM certificate" : gnutls_strerror(ret));
		return -1;
	}
	return 0;
}

/* --- ticket_key_file ----------------------------------------------------- */

#define TICKETS_FILE_MAX	4096	/* bytes: two keys and comments */

/* The keys of the text in buf (NUL-terminated) into t; -1 with why set. */
static int
tickets_parse(char *buf, struct tls_tickets *t, char *why, size_t whylen)
{
	gnutls_datum_t b64, key = { NULL, 0 };
	char *line, *next, *end;
	int lineno = 0, ret;

	t->n = 0;
	for (line = buf; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		end = line + strlen(line);
		while (end > line && (end[-1] == '\r' || end[-1] == ' ' ||
		    end[-1] == '\t'))
			*--end = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if (t->n == 2) {
			snprintf(why, whylen, "line %d: a third key (the file "
			    "holds the current key and the previous one)",
			    lineno);
			return -1;
		}
		b64.data = (unsigned char *)line;
		b64.size = (unsigned)(end - line);
		ret = gnutls_base64_decode2(&b64, &key);
		if (ret < 0 || key.size != TICKET_KEY_SIZE) {
			if (key.data != NULL) {
				gnutls_memset(key.data, 0, key.size);
				gnutls_free(key.data);
			}
			snprintf(why, whylen, "line %d: not a ticket key (64 "
			    "bytes in base64, as tlsgate --gen-ticket-key "
			    "writes)", lineno);
			return -1;
		}
		memcpy(t->key[t->n++], key.data, TICKET_KEY_SIZE);
		gnutls_memset(key.data, 0, key.size);
		gnutls_free(key.data);
		key.data = NULL;
	}
	if (t->n == 0) {
		snprintf(why, whylen, "no key in it");
		return -1;
	}
	return 0;
}

int
tls_tickets_load(const char *path, struct tls_tickets **out, unsigned *keys,
    unsigned *mode, char *why, size_t whylen)
{
	struct tls_tickets *t;
	char buf[TICKETS_FILE_MAX + 1], eb[128], what[200];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(why, whylen, "%s: %s", path, log_strerror(errno, eb,
		    sizeof(eb)));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	while (len < sizeof(buf) && ((n = read(fd, buf + len,
	    sizeof(buf) - len)) > 0 || (n == -1 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	(void)close(fd);
	if (!S_ISREG(st.st_mode) || len > TICKETS_FILE_MAX) {
		snprintf(why, whylen, "%s: %s", path, !S_ISREG(st.st_mode) ?
		    "not a file" : "longer than a ticket key file (4 KiB)");
		goto out;
	}
	buf[len] = '\0';
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (tickets_parse(buf, t, what, sizeof(what)) == -1) {
		snprintf(why, whylen, "%s: %s", path, what);
		tls_tickets_free(t);
		goto out;
	}
	*out = t;
	*keys = t->n;
	*mode = (unsigned)st.st_mode & 07777;
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

void
tls_tickets_free(struct tls_tickets *t)
{
	if (t == NULL)
		return;
	explicit_bzero(t, sizeof(*t));
	free(t);
}

/* Key k as a line of base64, to f. */
static int
ticket_line(FILE *f, const unsigned char *k)
{
	gnutls_datum_t raw = { (unsigned char *)(uintptr_t)k,
	    TICKET_KEY_SIZE }, b64 = { NULL, 0 };
	int ret;

	if ((ret = gnutls_base64_encode2(&raw, &b64)) < 0)
		return ret;
	ret = fprintf(f, "%.*s\n", (int)b64.size, (char *)b64.data) < 0 ?
	    GNUTLS_E_FILE_ERROR : 0;
	gnutls_memset(b64.data, 0, b64.size);
	gnutls_free(b64.data);
	return ret;
}

int
tls_tickets_generate(const char *path, int *kept, char *why, size_t whylen)
{
	struct tls_tickets *old = NULL, t;
	char tmp[4096], eb[128];
	unsigned keys, mode;
	FILE *f = NULL;
	int fd, ret;

	*kept = 0;
	if (access(path, F_OK) == 0) {
		if (tls_tickets_load(path, &old, &keys, &mode, why, whylen) ==
		    -1)
			return -1;	/* not ours: left alone */
		*kept = 1;
	}
	memset(&t, 0, sizeof(t));
	if ((ret = gnutls_rnd(GNUTLS_RND_KEY, t.key[0], TICKET_KEY_SIZE)) <
	    0) {
		tls_tickets_free(old);
		snprintf(why, whylen, "random: %s", gnutls_strerror(ret));
		return -1;
	}
	if (old != NULL) {
		memcpy(t.key[1], old->key[0], TICKET_KEY_SIZE);
		tls_tickets_free(old);
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    sizeof(tmp)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	/* mkstemp: mode 0600, whatever the umask */
	if ((fd = mkstemp(tmp)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(why, whylen, "%s: %s", tmp, log_strerror(errno, eb,
		    sizeof(eb)));
		if (fd != -1) {
			(void)close(fd);
			(void)unlink(tmp);
		}
		explicit_bzero(&t, sizeof(t));
		return -1;
	}
	ret = fprintf(f, "# tlsgate session-ticket keys (ticket_key_file): "
	    "the current key,\n# then the previous one. Secret.\n") < 0 ?
	    GNUTLS_E_FILE_ERROR : 0;
	if (ret == 0)
		ret = ticket_line(f, t.key[0]);
	if (ret == 0 && *kept)
		ret = ticket_line(f, t.key[1]);
	explicit_bzero(&t, sizeof(t));
	if (ret == 0 && (fflush(f) != 0 || fsync(fileno(f)) == -1))
		ret = GNUTLS_E_FILE_ERROR;
	if (fclose(f) != 0)
		ret = GNUTLS_E_FILE_ERROR;
	if (ret == 0 && rename(tmp, path) == -1)
		ret = GNUTLS_E_FILE_ERROR;
	if (ret < 0) {
		snprintf(why, whylen, "%s: %s", path, ret == GNUTLS_E_FILE_ERROR
		    ? log_strerror(errno, eb, sizeof(eb)) : gnutls_strerror(ret));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* Is a CRL of c past its next update? */
static int
crl_stale(const struct tls_ctx *c)
{
	return c->crl_next != (time_t)-1 && time(NULL) >= c->crl_next;
}

/* Does a CRL of c revoke crt, or cover it though expired? Status bits. */
static unsigned
crl_check(const struct tls_ctx *c, gnutls_x509_crt_t crt)
{
	gnutls_datum_t idn = { NULL, 0 };
	unsigned char b[64];
	struct serial key;
	size_t size = sizeof(b), j;
	unsigned st = 0;

	if (gnutls_x509_crt_get_raw_issuer_dn(crt, &idn) < 0 ||
	    gnutls_x509_crt_get_serial(crt, b, &size) < 0 ||
	    serial_set(&key, b, size) == -1) {
		gnutls_free(idn.data);
		return GNUTLS_CERT_INVALID;
	}
	for (j = 0; j < c->ncrls; j++) {
		const struct crl *x = &c->crls[j];

		if (x->issuer.size != idn.size ||
		    memcmp(x->issuer.data, idn.data, idn.size) != 0)
			continue;
		if (x->n > 0 && bsearch(&key, x->serials, x->n,
		    sizeof(*x->serials), serial_cmp) != NULL)
			st |= GNUTLS_CERT_REVOKED | GNUTLS_CERT_INVALID;
		else if (c->conf.crl_refuse && x->next_update != (time_t)-1 &&
		    time(NULL) >= x->next_update)
			st |= STATUS_CRL_EXPIRED | GNUTLS_CERT_INVALID;
	}
	gnutls_free(idn.data);
	return st;
}

/*
 * The checks after the chain's: the peer's key against pin_sha256, and
 * every certificate of its chain against the CRLs. Status bits; 0: passed.
 */
static unsigned
peer_checks(const struct tls_ctx *c, const gnutls_datum_t *certs, unsigned n)
{
	gnutls_x509_crt_t crt;
	unsigned char pin[32];
	unsigned i, st = 0;
	size_t k;

	for (i = 0; i < n && (c->ncrls > 0 || (i == 0 && c->npins > 0));
	    i++) {
		if (gnutls_x509_crt_init(&crt) < 0)
			return GNUTLS_CERT_INVALID;
		if (gnutls_x509_crt_import(crt, &certs[i],
		    GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crt);
			return GNUTLS_CERT_INVALID;
		}
		if (i == 0 && c->npins > 0) {
			k = 0;
			if (spki_sha256(crt, pin) == 0)
				while (k < c->npins &&
				    memcmp(c->pins[k], pin, 32) != 0)
					k++;
			if (k == c->npins)
				st |= STATUS_PIN | GNUTLS_CERT_INVALID;
		}
		if (c->ncrls > 0)
			st |= crl_check(c, crt);
		gnutls_x509_crt_deinit(crt);
	}
	return st;
}

/* A short reason for a certificate verification status. */
static void
status_reason(gnutls_session_t s, unsigned st, const char *name, char *why,
    size_t whylen)
{
	static const struct {
		unsigned	 flag;
		const char	*text;
	} reasons[] = {
		{ GNUTLS_CERT_SIGNER_NOT_FOUND, "certificate signer not found" },
		{ GNUTLS_CERT_SIGNER_NOT_CA, "certificate signer is not a CA" },
		{ GNUTLS_CERT_EXPIRED, "certificate expired" },
		{ GNUTLS_CERT_NOT_ACTIVATED, "certificate not yet valid" },
		{ GNUTLS_CERT_REVOKED, "certificate revoked" },
		{ GNUTLS_CERT_SIGNATURE_FAILURE, "certificate signature "
		    "invalid" },
		{ GNUTLS_CERT_INSECURE_ALGORITHM, "certificate uses an "
		    "insecure algorithm" },
		{ GNUTLS_CERT_PURPOSE_MISMATCH, "certificate not for this "
		    "purpose (key usage)" },
		{ STATUS_CRL_EXPIRED, "certificate revocation list expired "
		    "(crl_expired = refuse)" },
	};
	const gnutls_datum_t *certs;
	gnutls_datum_t out = { NULL, 0 };
	char pin[64];
	unsigned n = 0;
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (st & reasons[i].flag) {
			snprintf(why, whylen, "%s", reasons[i].text);
			return;
		}
	}
	if (st & STATUS_PIN) {
		certs = gnutls_certificate_get_peers(s, &n);
		if (n > 0 && pin_text(&certs[0], pin, sizeof(pin)) == 0)
			snprintf(why, whylen, "key not pinned: the peer's "
			    "pin_sha256 is %s", pin);
		else
			snprintf(why, whylen, "key not pinned");
		return;
	}
	if (st & GNUTLS_CERT_UNEXPECTED_OWNER) {
		snprintf(why, whylen, "certificate name mismatch: not valid "
		    "for %s", name != NULL ? name : "-");
		return;
	}
	if (gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509,
	    &out, 0) == 0) {
		snprintf(why, whylen, "certificate not trusted: %s", out.data);
		gnutls_free(out.data);
	} else
		snprintf(why, whylen, "certificate not trusted");
}

static int
name_eq(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

/* Does the certificate carry one of the allowed names? */
static int
peer_allowed(gnutls_x509_crt_t crt, char *const *allow)
{
	char buf[1024];
	size_t size, j;
	unsigned i;
	int type;

	for (i = 0;; i++) {
		size = sizeof(buf);
		type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size,
		    NULL);
		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (type < 0)
			break;
		for (j = 0; allow[j] != NULL; j++) {
			if (type == GNUTLS_SAN_DNSNAME &&
			    name_eq(buf, size, allow[j]))
				return 1;
			if (type == GNUTLS_SAN_URI && size == strlen(allow[j]) &&
			    memcmp(buf, allow[j], size) == 0)
				return 1;
		}
	}
	size = sizeof(buf);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    0, buf, &size) == 0)
		for (j = 0; allow[j] != NULL; j++)
			if (name_eq(buf, size, allow[j]))
				return 1;
	return 0;
}

/* The digest of a peer's chain, every certificate with its length. */
static int
chain_digest(const gnutls_datum_t *certs, unsigned n, unsigned char *out)
{
	gnutls_hash_hd_t h;
	unsigned i;

	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return -1;
	for (i = 0; i < n; i++)
		digest_field(h, certs[i].data, certs[i].size);
	gnutls_hash_deinit(h, out);
	return 0;
}

/* Has c verified this chain lately, and does the result still stand? */
static int
verified_lately(const struct tls_ctx *cc, const unsigned char *digest)
{
	struct tls_ctx *c = (struct tls_ctx *)(uintptr_t)cc;
	int64_t now = mono_ms();
	time_t wall = time(NULL);
	unsigned i;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < VERIFIED && !hit; i++)
		hit = c->verified[i].until > now &&
		    wall < c->verified[i].not_after &&
		    memcmp(c->verified[i].digest, digest, 32) == 0;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

/* c has just verified this chain: remember it (the oldest goes). */
static void
verified_now(const struct tls_ctx *cc, const unsigned char *digest,
    const gnutls_datum_t *certs, unsigned n)
{
	struct tls_ctx *c = (struct tls_ctx *)(uintptr_t)cc;
	gnutls_x509_crt_t crt;
	time_t t, not_after = (time_t)-1;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (gnutls_x509_crt_init(&crt) < 0)
			return;
		t = gnutls_x509_crt_import(crt, &certs[i],
		    GNUTLS_X509_FMT_DER) == 0 ?
		    gnutls_x509_crt_get_expiration_time(crt) : (time_t)-1;
		gnutls_x509_crt_deinit(crt);
		if (t == (time_t)-1)
			return;		/* unknown: not remembered */
		if (not_after == (time_t)-1 || t < not_after)
			not_after = t;
	}
	pthread_mutex_lock(&c->lock);
	i = c->nextv++ % VERIFIED;
	memcpy(c->verified[i].digest, digest, 32);
	c->verified[i].until = mono_ms() + VERIFIED_MS;
	c->verified[i].not_after = not_after;
	pthread_mutex_unlock(&c->lock);
}

/*
 * Verify the peer's chain (name and purpose too) against c, unless c has
 * verified the same chain lately. Returns 0, a GnuTLS error, or
 * GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR with *status set.
 */
static int
verify_chain(const struct tls_ctx *c, gnutls_session_t s,
    const gnutls_datum_t *certs, unsigned n, unsigned *status)
{
	unsigned char digest[32];
	int ret, known;

	*status = 0;
	known = chain_digest(certs, n, digest) == 0;
	/* The same chain, the same context: it stands (but for time). */
	if (known && verified_lately(c, digest) &&
	    !(c->conf.crl_refuse && crl_stale(c)))
		return 0;
	if (c->conf.verify != TLS_VERIFY_PIN &&
	    (ret = gnutls_certificate_verify_peers(s,
	    (gnutls_typed_vdata_st *)(uintptr_t)c->vdata, c->nvdata,
	    status)) < 0)
		return ret;
	if (*status == 0)
		*status = peer_checks(c, certs, n);
	if (*status != 0)
		return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
	if (known)
		verified_now(c, digest, certs, n);
	return 0;
}

/*
 * GnuTLS's check of the peer's chain inside a full handshake (verify =
 * require, or any verification on a connect side), once the peer's
 * certificate has come: a server that fails is refused before the
 * client's certificate and Finished go out. The peer's signature over
 * the handshake is GnuTLS's, always; the chain is verify_chain()'s.
 */
static int
verify_in_handshake(gnutls_session_t s)
{
	struct tls_open *op = gnutls_session_get_ptr(s);
	const gnutls_datum_t *certs;
	unsigned n = 0;
	int ret;

	if (op == NULL)
		return GNUTLS_E_INTERNAL_ERROR;
	if ((certs = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0)
		return GNUTLS_E_NO_CERTIFICATE_FOUND;
	ret = verify_chain(op->ctx, s, certs, n, &op->vstatus);
	return ret;
}

/*
 * The one authorization decision, made after every handshake, full or
 * resumed, against the route as it is now; describes the peer in peer.
 * A resumed session carries the identity of the handshake that made its
 * ticket, which GnuTLS does not check again: it is checked here like any
 * other (chain, name, purpose, allow_peers, PSK identity). Returns 0, or
 * -1 with why set.
 */
static int
authorize(const struct tls_ctx *c, gnutls_session_t s, char *why,
    size_t whylen, char *peer, size_t peerlen)
{
	const struct tls_conf *r = &c->conf;
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t dn = { NULL, 0 };
	char idbuf[300];
	const char *id;
	unsigned n = 0, st = 0;
	int ret = -1, check, chain;

	snprintf(peer, peerlen, "-");
	if (gnutls_auth_get_type(s) == GNUTLS_CRD_PSK) {
		id = c->server ? gnutls_psk_server_get_username(s) :
		    r->psk_identity != NULL ? r->psk_identity :
		    c->psk[0].identity;
		snprintf(idbuf, sizeof(idbuf), "psk:%s", id ? id : "");
		log_quote(idbuf, peer, peerlen);
		if (c->server && (id == NULL || psk_find(c, id) == NULL)) {
			snprintf(why, whylen, "psk identity %s: unknown "
			    "identity", log_quote(id ? id : "", idbuf,
			    sizeof(idbuf)));
			return -1;
		}
		return 0;
	}
	check = r->verify != TLS_VERIFY_NONE;
	chain = check && (!c->in_handshake || gnutls_session_is_resumed(s));
	certs = gnutls_certificate_get_peers(s, &n);
	/* Parsing the certificate is costly: only for the log or a check. */
	if ((log_enabled(LOG_INFO) || (check && r->allow_peers != NULL)) &&
	    certs != NULL && n > 0 && gnutls_x509_crt_init(&crt) == 0 &&
	    gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0)
		log_quote((const char *)dn.data, peer, peerlen);
	if (!check)
		goto ok;
	if (certs == NULL || n == 0) {
		if (r->verify == TLS_VERIFY_OPTIONAL && r->allow_peers == NULL)
			goto ok;
		snprintf(why, whylen, c->server ? "no client certificate" :
		    "no server certificate");
		goto out;
	}
	if (chain && (ret = verify_chain(c, s, certs, n, &st)) != 0) {
		if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
			status_reason(s, st, r->server_name, why, whylen);
		else
			snprintf(why, whylen, "certificate verification "
			    "failed: %s", gnutls_strerror(ret));
		ret = -1;
		goto out;
	}
	if (r->allow_peers != NULL &&
	    (crt == NULL || !peer_allowed(crt, r->allow_peers))) {
		snprintf(why, whylen, "peer not in allow_peers: %s",
		    dn.data != NULL ? (const char *)dn.data : "?");
		goto out;
	}
ok:
	ret = 0;
out:
	gnutls_free(dn.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

int
tls_peer_closed(gnutls_session_t s)
{
	const struct tls_rbuf *rb = gnutls_transport_get_ptr(s);
	char c;
	ssize_t n;

	if (rb->len > 0)
		return 0;
	n = recv(rb->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR);
}

void
tls_wait(gnutls_session_t s)
{
	struct tls_rbuf *rb = gnutls_transport_get_ptr(s);
	ssize_t r;

	if (rb->len > 0 || rb->held || gnutls_record_check_pending(s) > 0)
		return;
	/*
	 * Again after EINTR (a stop and continue of the process, a
	 * debugger): returning would send the thread into GnuTLS's own read,
	 * which waits holding a record buffer of 16 KiB.
	 */
	while ((r = recv(rb->fd, rb->data, sizeof(rb->data), 0)) == -1 &&
	    errno == EINTR)
		;
	if (r > 0) {
		rb->off = 0;
		rb->len = (size_t)r;
		if (rb->len > rb->used)
			rb->used = rb->len;
	} else {
		rb->held = 1;
		rb->held_ret = r;
		rb->held_errno = errno;
	}
}

ssize_t
tls_recv_buffered(gnutls_session_t s, void *buf, size_t len)
{
	struct tls_rbuf *rb = gnutls_transport_get_ptr(s);
	ssize_t n;

	if (rb->len == 0 && gnutls_record_check_pending(s) == 0)
		return GNUTLS_E_AGAIN;
	rb->nowait = 1;
	n = gnutls_record_recv(s, buf, len);
	rb->nowait = 0;
	return n;
}

/* Why a handshake failed, in words for the log. */
static void
handshake_reason(gnutls_session_t s, int ret, unsigned vstatus,
    const char *name, char *why, size_t whylen)
{
	switch (ret) {
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_REQUIRED:
		snprintf(why, whylen, "no client certificate");
		break;
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
		status_reason(s, vstatus, name, why, whylen);
		break;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		snprintf(why, whylen, "handshake: peer sent alert: %s",
		    gnutls_alert_get_name(gnutls_alert_get(s)));
		break;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		snprintf(why, whylen, "handshake: connection closed by peer");
		break;
	default:
		snprintf(why, whylen, "handshake: %s", gnutls_strerror(ret));
		break;
	}
}

/*
 * Server side: look at the client's first bytes without taking them, so
 * that a client speaking plaintext to a TLS port gets a reason that says
 * so. 1: a TLS handshake record; 0: nothing yet; -1 with why set, and
 * probe set if the client ended (or reset) its connection before sending
 * a byte: a port probe or a balancer's health check.
 */
static int
sniff(gnutls_session_t s, int *probe, char *why, size_t whylen)
{
	static const char *const methods[] = { "GET ", "POST", "HEAD", "PUT ",
	    "DELE", "OPTI", "CONN", "PATC", "TRAC" };
	const struct tls_rbuf *rb = gnutls_transport_get_ptr(s);
	unsigned char b[4];
	ssize_t n;
	size_t i;

	while ((n = recv(rb->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT)) ==
	    -1 && errno == EINTR)
		;
	if (n == -1 && errno == EAGAIN)
		return 0;
	if (n == 0 || (n == -1 && errno == ECONNRESET)) {
		*probe = 1;
		snprintf(why, whylen, "closed before sending anything");
		return -1;
	}
	if (n < 0) {
		snprintf(why, whylen, "handshake: connection closed by peer");
		return -1;
	}
	if (b[0] == 0x16)		/* a TLS handshake record */
		return 1;
	for (i = 0; n == 4 && i < sizeof(methods) / sizeof(*methods); i++)
		if (memcmp(b, methods[i], 4) == 0)
			break;
	if (n == 4 && i < sizeof(methods) / sizeof(*methods))
		snprintf(why, whylen, "not TLS: a plain HTTP request");
	else
		snprintf(why, whylen, "not TLS: first byte 0x%02x", b[0]);
	return -1;
}

/* Which way the socket must go before GnuTLS can go on. */
static int
blocked(gnutls_session_t s)
{
	return gnutls_record_get_direction(s) ? TLS_OPEN_WRITE : TLS_OPEN_READ;
}

int
tls_open_step(gnutls_session_t s, struct tls_open *op, char *why,
    size_t whylen, char *desc, size_t desclen)
{
	const struct tls_ctx *c = op->ctx;
	char idbuf[300];
	int ret;

	switch (op->step) {
	case STEP_SNIFF:
		if ((ret = sniff(s, &op->probe, why, whylen)) <= 0)
			goto out;
		op->step = STEP_HANDSHAKE;
		/* FALLTHROUGH */
	case STEP_HANDSHAKE:
		do {
			ret = gnutls_handshake(s);
		} while (ret < 0 && ret != GNUTLS_E_AGAIN &&
		    ret != GNUTLS_E_INTERRUPTED &&
		    gnutls_error_is_fatal(ret) == 0);
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
			return blocked(s);
		if (ret < 0) {
			/* Tell the peer why, unless the connection failed. */
			if (ret != GNUTLS_E_PREMATURE_TERMINATION &&
			    ret != GNUTLS_E_PULL_ERROR &&
			    ret != GNUTLS_E_PUSH_ERROR &&
			    ret != GNUTLS_E_FATAL_ALERT_RECEIVED)
				(void)gnutls_alert_send_appropriate(s, ret);
			handshake_reason(s, ret, op->vstatus,
			    c->conf.server_name, why, whylen);
			if (op->identity[0] != '\0' &&
			    (ret == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER ||
			    ret == GNUTLS_E_DECRYPTION_FAILED))
				snprintf(why, whylen, "psk identity %s: %s",
				    log_quote(op->identity, idbuf,
				    sizeof(idbuf)), op->known ? "wrong key" :
				    "unknown identity");
			op->alerted = 1;
			ret = -1;
			goto out;
		}
		if (authorize(c, s, why, whylen, op->peer,
		    sizeof(op->peer)) == -1) {
			(void)gnutls_alert_send(s, GNUTLS_AL_FATAL,
			    GNUTLS_A_BAD_CERTIFICATE);
			op->alerted = 1;
			ret = -1;
			goto out;
		}
		op->step = STEP_TICKET;
		/* FALLTHROUGH */
	case STEP_TICKET:
		/* Accepted: now, and only now, a ticket to resume with. */
		if (c->ticket.data != NULL &&
		    gnutls_protocol_get_version(s) == GNUTLS_TLS1_3) {
			ret = gnutls_session_ticket_send(s, 1, 0);
			if (ret == GNUTLS_E_AGAIN ||
			    ret == GNUTLS_E_INTERRUPTED)
				return blocked(s);
			if (ret < 0) {
				handshake_reason(s, ret, op->vstatus,
				    c->conf.server_name, why, whylen);
				goto out;
			}
		}
		op->step = STEP_OVER;
		op->resumed = gnutls_session_is_resumed(s) != 0;
		snprintf(desc, desclen, "version=%s cipher=%s peer=%s%s",
		    gnutls_protocol_get_name(gnutls_protocol_get_version(s)),
		    gnutls_cipher_get_name(gnutls_cipher_get(s)), op->peer,
		    gnutls_session_is_resumed(s) ? " resumed=yes" : "");
		gnutls_session_set_ptr(s, NULL);
		return TLS_OPEN_DONE;
	default:
		snprintf(why, whylen, "handshake: over already");
		ret = -1;
		break;
	}
out:
	if (ret == 0)
		return TLS_OPEN_READ;
	op->step = STEP_OVER;
	gnutls_session_set_ptr(s, NULL);
	return TLS_OPEN_FAILED;
}

void
tls_proxy_info(gnutls_session_t s, int verifies, struct pp_tls *pt,
    char buf[TLS_PP_BUF])
{
	char *version = buf, *cipher = buf + 16, *sni = buf + 112,
	    *cn = buf + 368;
	const char *name = gnutls_protocol_get_name(
	    gnutls_protocol_get_version(s)), *suite = gnutls_ciphersuite_get(s);
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt;
	unsigned n = 0, type;
	size_t size;

	memset(pt, 0, sizeof(*pt));
	memset(buf, 0, TLS_PP_BUF);
	/* "TLSv1.3", as haproxy names it */
	if (name != NULL && strncmp(name, "TLS", 3) == 0)
		snprintf(version, 16, "TLSv%s", name + 3);
	pt->version = version[0] ? version : NULL;
	if (suite != NULL)
		snprintf(cipher, 96, "%s", suite);
	pt->cipher = cipher[0] ? cipher : NULL;
	size = 255;
	if (gnutls_server_name_get(s, sni, &size, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS)
		pt->sni = sni;
	pt->resumed = gnutls_session_is_resumed(s);
	certs = gnutls_certificate_get_peers(s, &n);
	pt->cert = certs != NULL && n > 0;
	/* authorize() let it in: verified, if the route verifies */
	pt->verified = pt->cert && verifies;
	if (pt->cert && gnutls_x509_crt_init(&crt) == 0) {
		size = 255;
		if (gnutls_x509_crt_import(crt, &certs[0],
		    GNUTLS_X509_FMT_DER) == 0 &&
		    gnutls_x509_crt_get_dn_by_oid(crt,
		    GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) == 0)
			pt->cn = cn;
		gnutls_x509_crt_deinit(crt);
	}
}

time_t
tls_cert_expiry(const struct tls_ctx *c)
{
	return c->cert_expiry;
}

void
tls_warnings(const struct tls_ctx *c, tls_err_fn *warn, void *arg)
{
	const struct tls_conf *r = &c->conf;
	time_t now = time(NULL);

	if (c->weaker[0] != '\0')
		warn(arg, "priority", "allows what the default does not: %s",
		    c->weaker);
	if (c->key_mode != 0)
		warn(arg, "key", "%s is open to group or others (mode %04o)",
		    r->key, c->key_mode);
	if (c->psk_mode != 0)
		warn(arg, "psk_file", "%s is open to group or others (mode "
		    "%04o)", r->psk_file, c->psk_mode);
	if (c->cert_expiry != (time_t)-1 && c->cert_expiry <= now)
		warn(arg, "cert", "%s has expired", r->cert);
	else if (c->cert_expiry != (time_t)-1 &&
	    c->cert_expiry - now < 30 * 86400)
		warn(arg, "cert", "%s expires in %lld days", r->cert,
		    (long long)((c->cert_expiry - now) / 86400));
	if (c->cert_expiry != (time_t)-1 && !c->cert_purpose_ok)
		warn(arg, "cert", "%s is not for TLS %s (its extended key "
		    "usage)", r->cert, c->server ? "servers" : "clients");
	if (crl_stale(c))
		warn(arg, "crl", "%s is past its next update: %s", r->crl,
		    r->crl_refuse ? "the peers it covers are refused "
		    "(crl_expired = refuse)" : "peers are still checked "
		    "against it");
}

time_t
tls_crl_next_update(const struct tls_ctx *c)
{
	return c->ncrls > 0 ? c->crl_next : (time_t)-1;
}

int
tls_identity(const struct tls_ctx *c, char *buf, size_t len)
{
	const struct tls_conf *r = &c->conf;
	gnutls_datum_t der = { NULL, 0 }, dn = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	char q[512];
	int n;

	q[0] = '\0';
	if (c->x509 != NULL && r->cert != NULL &&
	    gnutls_certificate_get_crt_raw(c->x509, 0, 0, &der) == 0 &&
	    gnutls_x509_crt_init(&crt) == 0 &&
	    gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0)
		log_quote((const char *)dn.data, q, sizeof(q));
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	gnutls_free(dn.data);
	n = snprintf(buf, len, "cert=%s ca=%s verify=%s", q[0] ? q : "-",
	    r->ca ? r->ca : "-", r->verify == TLS_VERIFY_REQUIRE ? "require" :
	    r->verify == TLS_VERIFY_OPTIONAL ? "optional" :
	    r->verify == TLS_VERIFY_PIN ? "pin" : "none");
	if (n > 0 && (size_t)n < len && r->crl != NULL)
		n += snprintf(buf + n, len - (size_t)n, " crl=%s", r->crl);
	if (n > 0 && (size_t)n < len && c->npins > 0)
		n += snprintf(buf + n, len - (size_t)n, " pins=%zu", c->npins);
	if (n > 0 && (size_t)n < len && !c->server)
		n += snprintf(buf + n, len - (size_t)n, " server_name=%s",
		    r->server_name);
	if (n > 0 && (size_t)n < len && c->npsk > 0)
		n += snprintf(buf + n, len - (size_t)n, " psk=%s",
		    c->server ? "any identity in psk_file" :
		    (r->psk_identity ? r->psk_identity : c->psk[0].identity));
	return 0;
}
