#ifndef CONFIG_H
#define CONFIG_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stdatomic.h>
#include <stddef.h>

#include "log.h"
#include "stats.h"

struct tls_ctx;

/* unix: is plaintext, on a unix socket: host is the path ("@name" for
   the abstract namespace) and port is empty. */
enum scheme { SCHEME_TCP, SCHEME_TLS, SCHEME_UNIX };

struct addr {
	enum scheme	 scheme;
	char		 host[256];	/* without brackets */
	char		 port[8];
	char		 text[300];	/* as written, for logs */
};

enum verify { VERIFY_NONE, VERIFY_OPTIONAL, VERIFY_REQUIRE, VERIFY_PIN };

/* The PROXY protocol header a route sends to its next hop. */
enum send_proxy { SEND_PROXY_NONE, SEND_PROXY_V1, SEND_PROXY_V2 };

/* An address block of allow_from or proxy_from (IPv4 as itself). */
struct cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];
	unsigned	 bits;
};

/*
 * A route's count of live sessions, shared by the routes of the same name
 * across reloads so that max_sessions counts old sessions too. n belongs
 * to relay.c.
 */
struct route_live {
	atomic_uint	 refs;
	atomic_uint	 n;
	struct stats_route stats;	/* stats.c's counters */
};

/* The keys a route may carry; also the index of its line in key_line[]. */
enum key {
	K_ACCEPT, K_CONNECT, K_CERT, K_KEY, K_CA, K_VERIFY, K_SERVER_NAME,
	K_ALLOW_PEERS, K_PRIORITY, K_PSK_FILE, K_PSK_IDENTITY, K_RESUMPTION,
	K_CONNECT_TIMEOUT, K_HANDSHAKE_TIMEOUT, K_IDLE_TIMEOUT,
	K_MAX_SESSIONS, K_CRL, K_CRL_EXPIRED, K_PIN_SHA256, K_SEND_PROXY,
	K_ACCEPT_PROXY, K_ALLOW_FROM, K_PROXY_FROM, K_UNIX_MODE, K_UNIX_OWNER,
	K_REUSE_PORT, K_COUNT
};

/*
 * A route, immutable once loaded and shared by every session that uses it
 * (read-only from any thread). Sessions hold a reference: the route and its
 * TLS context outlive the configuration that loaded it until the last
 * session ends (reload).
 */
struct route {
	atomic_uint	 refs;
	char		*name;
	int		 line;			/* of the [section] */
	int		 key_line[K_COUNT];	/* 0: not set in the file */
	struct addr	 accept;
	struct addr	 connect;
	char		*cert, *key, *ca;	/* NULL when not set */
	enum verify	 verify;
	char		*server_name;
	char	       **allow_peers;		/* NULL-terminated, or NULL */
	char		*priority;
	char		*psk_file, *psk_identity;
	int		 resumption;
	char		*crl;			/* NULL when not set */
	int		 crl_refuse;		/* crl_expired = refuse */
	char	       **pins;			/* pin_sha256, or NULL */
	enum send_proxy	 send_proxy;
	int		 accept_proxy;
	int		 reuse_port;		/* SO_REUSEPORT on the accept socket */
	struct cidr	*allow_from, *proxy_from;	/* NULL: anyone */
	size_t		 nallow_from, nproxy_from;
	unsigned	 unix_mode;		/* a unix: accept's socket */
	int		 unix_owner;		/* unix_uid and unix_gid set */
	uid_t		 unix_uid;
	gid_t		 unix_gid;
	unsigned	 connect_timeout;	/* seconds */
	unsigned	 handshake_timeout;
	unsigned	 idle_timeout;		/* 0: never */
	unsigned	 max_sessions;
	struct tls_ctx	*tls;			/* NULL on a tcp->tcp route */
	struct route_live *live;
};

struct config {
	char		*path;
	enum log_level	 log_level;
	int		 log_level_set;		/* given in the file */
	unsigned	 max_sessions;
	unsigned	 shutdown_grace;
	int		 drop;			/* user given: uid, gid valid */
	uid_t		 uid;
	gid_t		 gid;
	int		 require_drop;
	char		*stats;			/* the stats socket's path */
	unsigned	 stats_mode;
	char		*ticket_key_file;	/* or NULL */
	unsigned	 ticket_keys;		/* it holds: 1 or 2 */
	unsigned	 ticket_key_mode;	/* its permission bits */
	int		 ticket_key_line;
	struct route   **routes;
	size_t		 nroutes;
};

/* Errors, one line each: "FILE:LINE: [section] key: reason". */
struct config_errors {
	char		**lines;
	size_t		  n;
};

/*
 * Read, validate and load everything PATH names (certificates, keys, CAs,
 * priority strings) into a new configuration. On failure return NULL with
 * every error found in errs.
 */
struct config *config_load(const char *path, struct config_errors *errs);
void config_free(struct config *c);	/* drops its route references */

/* The same, loading the files keys name only if load is set (fuzzing). */
struct config *config_read(const char *path, int load,
    struct config_errors *errs);

/* Parse "SCHEME://HOST:PORT" into a; returns NULL or what is wrong. */
const char *config_parse_addr(const char *s, struct addr *a);

/*
 * Each weakening of a loaded configuration, as one line "FILE:LINE:
 * [route] key: what" through fn: verify = none or optional, plaintext
 * accepted from or sent to another host than this one, and what
 * tls_warnings() finds. Returns how many.
 */
typedef void config_warn_fn(void *arg, const char *line);
unsigned config_warnings(const struct config *c, config_warn_fn *fn,
    void *arg);

/* After a reload: routes of next that old also has count their sessions
   together. */
void config_inherit(struct config *next, const struct config *old);

void config_errors_clear(struct config_errors *errs);

/* The name of a key, e.g. "server_name". */
const char *config_key_name(enum key k);

/* Whether host is an IPv4 or IPv6 address (not a name). */
int config_is_ip(const char *host);

/* The unix socket address of a unix: address ("@name": abstract). */
struct sockaddr_un;
void config_unix_addr(const struct addr *a, struct sockaddr_un *sun,
    socklen_t *len);

/*
 * Whether sa (IPv4, IPv6 or IPv4-mapped IPv6) is in one of the n blocks
 * of list; a unix socket's address is in none.
 */
struct sockaddr;
int config_cidr_match(const struct cidr *list, size_t n,
    const struct sockaddr *sa);

/* Sessions take and drop references; the last one frees the route. */
struct route *config_route_ref(struct route *r);
void config_route_unref(struct route *r);

#endif
