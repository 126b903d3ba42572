/*
 * config.c: read routes.ini with inih, validate every route, and load what
 * it names (through tls.c). Never prints: every problem becomes one line
 * "FILE:LINE: [section] key: reason" in a struct config_errors.
 */
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "log.h"
#include "tls.h"
#include "config.h"

#define LINE_MAX_LEN	4096

/*
 * Debian's libinih cuts lines at ini_max_line (200) unless told otherwise;
 * other builds have a compile-time limit and no such variable. Weak, so
 * that the reference is NULL where the library lacks it.
 */
extern int ini_max_line __attribute__((weak));

static const char *const key_names[K_COUNT] = {
	"accept", "connect", "cert", "key", "ca", "verify", "server_name",
	"allow_peers", "priority", "psk_file", "psk_identity", "resumption",
	"connect_timeout", "handshake_timeout", "idle_timeout", "max_sessions",
	"crl", "crl_expired", "pin_sha256", "send_proxy", "accept_proxy",
	"allow_from", "proxy_from", "unix_mode", "unix_owner", "reuse_port",
};

/* Which keys apply to which side of a route. */
#define TLS_KEYS	((1u << K_CERT) | (1u << K_KEY) | (1u << K_CA) | \
	(1u << K_VERIFY) | (1u << K_ALLOW_PEERS) | (1u << K_PRIORITY) | \
	(1u << K_PSK_FILE) | (1u << K_RESUMPTION) | (1u << K_CRL) | \
	(1u << K_CRL_EXPIRED) | (1u << K_PIN_SHA256))
#define CONNECT_ONLY	((1u << K_SERVER_NAME) | (1u << K_PSK_IDENTITY))
#define UNIX_ONLY	((1u << K_UNIX_MODE) | (1u << K_UNIX_OWNER))

enum { G_LOG_LEVEL, G_MAX_SESSIONS, G_SHUTDOWN_GRACE, G_CONNECT_TIMEOUT,
	G_HANDSHAKE_TIMEOUT, G_IDLE_TIMEOUT, G_USER, G_GROUP, G_REQUIRE_DROP,
	G_STATS, G_STATS_MODE, G_TICKET_KEY_FILE, G_COUNT };

static const char *const gateway_keys[G_COUNT] = {
	"log_level", "max_sessions", "shutdown_grace", "connect_timeout",
	"handshake_timeout", "idle_timeout", "user", "group", "require_drop",
	"stats", "stats_mode", "ticket_key_file",
};

/* A number key's bounds. */
struct bounds {
	long long	 min, max;
};

static const struct bounds timeout_bounds = { 1, 3600 };
static const struct bounds idle_bounds = { 0, 31536000 };	/* a year */
static const struct bounds sessions_bounds = { 1, 1000000 };
static const struct bounds grace_bounds = { 0, 3600 };

/* Where the keys being read go, besides a route section's index. */
#define SEC_NONE	(-3)	/* before any section header */
#define SEC_GATEWAY	(-2)
#define SEC_SKIP	(-1)	/* a section already reported as bad */

/* Raw values of a section, as read; validated once the file is read. */
struct section {
	char		*name;
	int		 line;
	struct addr	 accept;	/* valid if accept_ok */
	int		 accept_ok;
	char		*value[K_COUNT];
	int		 key_line[K_COUNT];
};

struct parse {
	const char	*path;
	FILE		*fp;
	int		 lineno;
	struct config_errors *errs;
	struct section	*sections;
	size_t		 nsections;
	char		*gval[G_COUNT];
	int		 gline[G_COUNT];
	int		 gateway_line;
	long		 cur;		/* a section's index, or SEC_* */
	int		 load;		/* load the files keys name */
	struct tls_tickets *tickets;	/* ticket_key_file's, while loading */
};

const char *
config_key_name(enum key k)
{
	return key_names[k];
}

/* The index of a key's name, or -1. */
static int
key_index(const char *key)
{
	int k;

	for (k = 0; k < K_COUNT; k++)
		if (strcmp(key_names[k], key) == 0)
			return k;
	return -1;
}

static void
add_error(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add_error(struct config_errors *errs, const char *fmt, ...)
{
	char **lines;
	char *s;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n == -1)
		return;		/* out of memory: the error count still fails */
	if ((lines = realloc(errs->lines, (errs->n + 1) * sizeof(*lines))) ==
	    NULL) {
		free(s);
		return;
	}
	errs->lines = lines;
	errs->lines[errs->n++] = s;
}

void
config_errors_clear(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		free(errs->lines[i]);
	free(errs->lines);
	errs->lines = NULL;
	errs->n = 0;
}

/* An error about key k of section sec (k < 0: the section itself). */
static void
sec_error(struct parse *p, const struct section *sec, int k,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
sec_error(struct parse *p, const struct section *sec, int k,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int line;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	line = (k >= 0 && sec->key_line[k] != 0) ? sec->key_line[k] :
	    sec->line;
	if (k >= 0)
		add_error(p->errs, "%s:%d: [%s] %s: %s", p->path, line,
		    sec->name, key_names[k], msg);
	else
		add_error(p->errs, "%s:%d: [%s] %s", p->path, line, sec->name,
		    msg);
}

/* A section header, seen by the reader (inih reports none of its own). */
static void
enter_section(struct parse *p, const char *hdr)
{
	struct section *sec, *secs;
	const char *end = strchr(hdr, ']');
	char name[256];
	size_t i, n = (size_t)(end - hdr - 1);

	p->cur = SEC_SKIP;	/* until the header proves good */
	if (n == 0 || n >= sizeof(name)) {
		add_error(p->errs, "%s:%d: bad section name", p->path,
		    p->lineno);
		return;
	}
	memcpy(name, hdr + 1, n);
	name[n] = '\0';
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != n) {
		add_error(p->errs, "%s:%d: [%s] bad section name: use letters, "
		    "digits, '.', '_' and '-'", p->path, p->lineno, name);
		return;
	}
	if (strcmp(name, "gateway") == 0) {
		if (p->gateway_line != 0) {
			add_error(p->errs, "%s:%d: [gateway] section given "
			    "twice (first at line %d)", p->path, p->lineno,
			    p->gateway_line);
			return;
		}
		p->cur = SEC_GATEWAY;
		p->gateway_line = p->lineno;
		return;
	}
	for (i = 0; i < p->nsections; i++) {
		if (strcmp(p->sections[i].name, name) == 0) {
			add_error(p->errs, "%s:%d: [%s] section given twice "
			    "(first at line %d)", p->path, p->lineno, name,
			    p->sections[i].line);
			return;
		}
	}
	secs = realloc(p->sections, (p->nsections + 1) * sizeof(*secs));
	if (secs == NULL)
		return;
	p->sections = secs;
	sec = &p->sections[p->nsections];
	memset(sec, 0, sizeof(*sec));
	if ((sec->name = strdup(name)) == NULL)
		return;
	sec->line = p->lineno;
	p->cur = (long)p->nsections++;
}

/*
 * The inih reader: one line per call, counted, so that every error has
 * its line whatever the inih build. A line that does not fit is an error
 * rather than silently cut. Leading blanks are dropped so that an
 * indented key is a key, not an inih continuation line. Syntax is checked
 * here since inih reports only the first bad line.
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t n = 0;
	int c, toolong = 0;

	if (num <= 1)
		return NULL;
	while ((c = getc(p->fp)) == ' ' || c == '\t')
		;
	for (; c != EOF; c = getc(p->fp)) {
		if (n + 1 < (size_t)num)
			str[n++] = (char)c;
		else
			toolong = 1;
		if (c == '\n')
			break;
	}
	if (n == 0 && c == EOF)
		return NULL;
	str[n] = '\0';
	if (p->lineno++ == 0 && strncmp(str, "\xef\xbb\xbf", 3) == 0)
		memmove(str, str + 3, n - 2);	/* a UTF-8 byte order mark */
	if (toolong) {
		add_error(p->errs, "%s:%d: line too long (at most %d bytes)",
		    p->path, p->lineno, num - 2);
		str[0] = '\0';	/* inih sees an empty line */
	} else if (str[0] == '[') {
		if (strchr(str, ']') == NULL) {
			add_error(p->errs, "%s:%d: syntax error: section "
			    "header without ']'", p->path, p->lineno);
			str[0] = '\0';
			p->cur = SEC_SKIP;
		} else
			enter_section(p, str);
	} else if (str[0] != '\0' && strchr(";#\r\n", str[0]) == NULL &&
	    (strpbrk(str, "=:") == NULL || str[0] == '=' || str[0] == ':')) {
		add_error(p->errs, "%s:%d: syntax error: expected "
		    "'key = value' or '[section]'", p->path, p->lineno);
		str[0] = '\0';
	}
	return str;
}

static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	struct section *sec;
	char **slot;
	int *lslot, k;

	if (p->cur == SEC_NONE) {
		add_error(p->errs, "%s:%d: %s: key outside any section",
		    p->path, p->lineno, name);
		return 1;
	}
	if (p->cur == SEC_SKIP)
		return 1;	/* in a section already reported */
	if (p->cur == SEC_GATEWAY) {
		for (k = 0; k < G_COUNT; k++)
			if (strcmp(name, gateway_keys[k]) == 0)
				break;
		if (k == G_COUNT) {
			add_error(p->errs, "%s:%d: [gateway] %s: unknown key",
			    p->path, p->lineno, name);
			return 1;
		}
		slot = &p->gval[k];
		lslot = &p->gline[k];
	} else {
		sec = &p->sections[p->cur];
		if ((k = key_index(name)) == -1) {
			add_error(p->errs, "%s:%d: [%s] %s: unknown key",
			    p->path, p->lineno, section, name);
			return 1;
		}
		slot = &sec->value[k];
		lslot = &sec->key_line[k];
	}
	if (*lslot != 0) {
		add_error(p->errs, "%s:%d: [%s] %s: given twice (first at "
		    "line %d)", p->path, p->lineno, section, name, *lslot);
		return 1;
	}
	*lslot = p->lineno;
	/*
	 * "key =" says nothing: an error, never an empty name or path. The
	 * key counts as given (no "missing" on top), with no value.
	 */
	if (value[0] == '\0') {
		add_error(p->errs, "%s:%d: [%s] %s: empty value", p->path,
		    p->lineno, section, name);
		return 1;
	}
	if ((*slot = strdup(value)) == NULL)
		return 0;
	return 1;
}

const char *
config_parse_addr(const char *s, struct addr *a)
{
	const char *host, *end, *port;
	size_t hlen;
	char *ep;
	long n;

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		a->scheme = SCHEME_UNIX;
		if (s[5] != '/' && s[5] != '@')
			return "expected unix:/PATH or unix:@NAME";
		if (s[6] == '\0')
			return "empty unix socket name";
		if (strlen(s + 5) > 107)
			return "unix socket path longer than 107 bytes";
		snprintf(a->host, sizeof(a->host), "%s", s + 5);
		snprintf(a->text, sizeof(a->text), "%s", s);
		return NULL;
	}
	if (strncmp(s, "tcp://", 6) == 0)
		a->scheme = SCHEME_TCP;
	else if (strncmp(s, "tls://", 6) == 0)
		a->scheme = SCHEME_TLS;
	else if (strstr(s, "://") != NULL)
		return "bad scheme: use tcp://, tls:// or unix:/PATH";
	else
		return "expected tcp://HOST:PORT, tls://HOST:PORT or unix:/PATH";
	host = s + 6;
	if (*host == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return "IPv6 address without ']'";
		host++;
		hlen = (size_t)(end - host);
		if (end[1] != ':')
			return "missing :PORT";
		port = end + 2;
	} else {
		if ((end = strrchr(host, ':')) == NULL)
			return "missing :PORT";
		hlen = (size_t)(end - host);
		port = end + 1;
	}
	if (hlen == 0)
		return "missing host";
	if (hlen >= sizeof(a->host))
		return "host name too long";
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	if (host[-1] == '[') {
		struct in6_addr in6;

		if (inet_pton(AF_INET6, a->host, &in6) != 1)
			return "bad IPv6 address";
	} else if (strspn(a->host, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != hlen) {
		return "bad host name (IPv6 addresses go in brackets)";
	}
	errno = 0;
	n = strtol(port, &ep, 10);
	if (*port == '\0' || *ep != '\0' || errno != 0 || n < 1 || n > 65535)
		return "bad port (1-65535)";
	snprintf(a->port, sizeof(a->port), "%ld", n);
	snprintf(a->text, sizeof(a->text), "%s", s);
	return NULL;
}

int
config_is_ip(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1 ||
	    inet_pton(AF_INET6, host, &a6) == 1;
}

void
config_unix_addr(const struct addr *a, struct sockaddr_un *sun,
    socklen_t *len)
{
	size_t n = strlen(a->host);	/* < sizeof(sun_path): parsed so */

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, a->host, n);
	if (a->host[0] == '@')
		sun->sun_path[0] = '\0';	/* abstract: no NUL after */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (a->host[0] != '@'));
}

int
config_cidr_match(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	const struct sockaddr_in6 *in6 = (const void *)sa;
	const struct sockaddr_in *in4 = (const void *)sa;
	const unsigned char *a;
	unsigned char mask;
	int family;
	size_t i;
	unsigned full;

	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		a = (const unsigned char *)&in4->sin_addr;
	} else if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		family = AF_INET;
		a = in6->sin6_addr.s6_addr + 12;
	} else if (sa->sa_family == AF_INET6) {
		family = AF_INET6;
		a = in6->sin6_addr.s6_addr;
	} else
		return 0;
	for (i = 0; i < n; i++) {
		if (list[i].family != family)
			continue;
		full = list[i].bits / 8;
		if (memcmp(list[i].addr, a, full) != 0)
			continue;
		mask = (unsigned char)(0xff00 >> (list[i].bits % 8));
		if (list[i].bits % 8 == 0 || (list[i].addr[full] & mask) ==
		    (a[full] & mask))
			return 1;
	}
	return 0;
}

/*
 * Parse "10.0.0.0/8, ::1, 2001:db8::/32" into *out; returns NULL or what
 * is wrong (quoting the bad item into msg).
 */
static const char *
parse_cidrs(const char *s, struct cidr **out, size_t *nout, char *msg,
    size_t msglen)
{
	char item[128], *slash, *ep;
	struct cidr *v, *c;
	const char *t = s, *e;
	size_t n = 0, cap = 1, len;
	long bits;
	unsigned max;

	for (e = s; *e != '\0'; e++)
		cap += (*e == ',');
	if ((v = calloc(cap, sizeof(*v))) == NULL)
		return "out of memory";
	for (; *t != '\0'; t = *e ? e + 1 : e) {
		t += strspn(t, " \t");
		e = t + strcspn(t, ",");
		len = (size_t)(e - t);
		while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t'))
			len--;
		if (len == 0)
			continue;
		c = &v[n];
		snprintf(item, sizeof(item), "%.*s", (int)len, t);
		if ((slash = strchr(item, '/')) != NULL)
			*slash = '\0';
		if (inet_pton(AF_INET, item, c->addr) == 1) {
			c->family = AF_INET;
			max = 32;
		} else if (inet_pton(AF_INET6, item, c->addr) == 1) {
			c->family = AF_INET6;
			max = 128;
		} else {
			snprintf(msg, msglen, "not an IP address or block: "
			    "\"%.*s\"", (int)len, t);
			free(v);
			return msg;
		}
		bits = max;
		if (slash != NULL) {
			errno = 0;
			bits = strtol(slash + 1, &ep, 10);
			if (slash[1] == '\0' || *ep != '\0' || errno != 0 ||
			    bits < 0 || bits > (long)max) {
				snprintf(msg, msglen, "bad prefix length in "
				    "\"%.*s\" (0-%u)", (int)len, t, max);
				free(v);
				return msg;
			}
		}
		c->bits = (unsigned)bits;
		n++;
	}
	if (n == 0) {
		free(v);
		return "empty list";
	}
	*out = v;
	*nout = n;
	return NULL;
}

/* Parse a number within b; returns NULL or what is wrong. */
static const char *
parse_num(const char *s, const struct bounds *b, unsigned *out)
{
	static __thread char msg[80];
	long long v;
	char *ep;

	errno = 0;
	v = strtoll(s, &ep, 10);
	if (*s == '\0' || *ep != '\0' ||
	    ((*s < '0' || *s > '9') && *s != '-')) {
		snprintf(msg, sizeof(msg), "not a number: \"%s\"", s);
		return msg;
	}
	if (errno == ERANGE || v < b->min || v > b->max) {
		snprintf(msg, sizeof(msg), "out of range (%lld to %lld)",
		    b->min, b->max);
		return msg;
	}
	*out = (unsigned)v;
	return NULL;
}

static int
parse_yesno(const char *s, int *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 ||
	    strcmp(s, "1") == 0 || strcasecmp(s, "on") == 0)
		*out = 1;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 ||
	    strcmp(s, "0") == 0 || strcasecmp(s, "off") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* Split "a, b,c" into a NULL-terminated array. */
static char **
split_list(const char *s)
{
	char **v, *copy, *tok, *save;
	size_t n = 0, cap = 1;
	const char *t;

	for (t = s; *t != '\0'; t++)
		cap += (*t == ',');
	if ((v = calloc(cap + 1, sizeof(*v))) == NULL)
		return NULL;
	if ((copy = strdup(s)) == NULL) {
		free(v);
		return NULL;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		char *e;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*tok != '\0' && (v[n] = strdup(tok)) != NULL)
			n++;
	}
	free(copy);
	return v;
}

static void
live_unref(struct route_live *l)
{
	if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1)
		free(l);
}

static void
route_free(struct route *r)
{
	size_t i;

	if (r == NULL)
		return;
	live_unref(r->live);
	tls_ctx_free(r->tls);
	free(r->name);
	free(r->cert);
	free(r->key);
	free(r->ca);
	free(r->server_name);
	for (i = 0; r->allow_peers != NULL && r->allow_peers[i] != NULL; i++)
		free(r->allow_peers[i]);
	free(r->allow_peers);
	free(r->priority);
	free(r->psk_file);
	free(r->psk_identity);
	free(r->crl);
	for (i = 0; r->pins != NULL && r->pins[i] != NULL; i++)
		free(r->pins[i]);
	free(r->pins);
	free(r->allow_from);
	free(r->proxy_from);
	free(r);
}

struct route *
config_route_ref(struct route *r)
{
	atomic_fetch_add(&r->refs, 1);
	return r;
}

void
config_route_unref(struct route *r)
{
	if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1)
		route_free(r);
}

/* Was key k written in the section (even with an empty value)? */
static int
given(const struct section *sec, enum key k)
{
	return sec->key_line[k] != 0;
}

/* Take a raw value: the route now owns it. */
static char *
take(struct section *sec, enum key k)
{
	char *v = sec->value[k];

	sec->value[k] = NULL;
	return v;
}

/* Reports from tls.c land on the key's line. */
struct tls_report {
	struct parse		*p;
	const struct section	*sec;
};

static void
tls_report(void *arg, const char *key, const char *fmt, ...)
{
	struct tls_report *t = arg;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sec_error(t->p, t->sec, key_index(key), "%s", msg);
}

/* Load route r's TLS side (tls.c): credentials, keys, priorities. */
static int
load_tls(struct route *r, struct tls_report *rep)
{
	struct tls_conf tc;

	memset(&tc, 0, sizeof(tc));
	tc.name = r->name;
	tc.server = (r->accept.scheme == SCHEME_TLS);
	tc.cert = r->cert;
	tc.key = r->key;
	tc.ca = r->ca;
	tc.verify = r->verify == VERIFY_REQUIRE ? TLS_VERIFY_REQUIRE :
	    r->verify == VERIFY_OPTIONAL ? TLS_VERIFY_OPTIONAL :
	    r->verify == VERIFY_PIN ? TLS_VERIFY_PIN : TLS_VERIFY_NONE;
	tc.server_name = r->server_name;
	tc.sni = r->server_name != NULL && !config_is_ip(r->server_name);
	tc.allow_peers = r->allow_peers;
	tc.priority = r->priority;
	tc.psk_file = r->psk_file;
	tc.psk_identity = r->psk_identity;
	tc.resumption = r->resumption;
	tc.crl = r->crl;
	tc.crl_refuse = r->crl_refuse;
	tc.pins = r->pins;
	tc.tickets = rep->p->tickets;
	return tls_ctx_new(&tc, &r->tls, tls_report, rep);
}

/* Keys whose defaults come from [gateway]. */
struct defaults {
	unsigned	 connect_timeout, handshake_timeout, idle_timeout;
	unsigned	 max_sessions;
};

static int
check_number(struct parse *p, struct section *sec, enum key k,
    const struct bounds *b, unsigned *out)
{
	const char *why;

	if (sec->value[k] == NULL)
		return 0;
	if ((why = parse_num(sec->value[k], b, out)) != NULL) {
		sec_error(p, sec, (int)k, "%s", why);
		return -1;
	}
	return 0;
}

/*
 * Check the keys that must, or must not, be there for the route's kind.
 * Every problem is reported; returns -1 if there was one, and -2 if the
 * route has no single TLS side whose keys could be loaded.
 */
static int
check_kind(struct parse *p, struct section *sec, const struct route *r)
{
	int tls_accept = (r->accept.scheme == SCHEME_TLS);
	int tls_connect = (r->connect.scheme == SCHEME_TLS);
	unsigned allowed = 0;
	int k, bad = 0;

	if (tls_accept && tls_connect) {
		sec_error(p, sec, K_CONNECT, "tls->tls routes are not "
		    "supported");
		return -2;
	}
	if (tls_accept || tls_connect)
		allowed |= TLS_KEYS;
	if (tls_connect)
		allowed |= CONNECT_ONLY;
	if (r->accept.scheme == SCHEME_UNIX)
		allowed |= UNIX_ONLY;
	for (k = K_CERT; k < K_COUNT; k++) {
		if (!given(sec, k) || (allowed & (1u << k)) ||
		    !((TLS_KEYS | CONNECT_ONLY | UNIX_ONLY) & (1u << k)))
			continue;
		if (UNIX_ONLY & (1u << k))
			sec_error(p, sec, k, "applies only to a unix: "
			    "accept");
		else if (!tls_accept && !tls_connect)
			sec_error(p, sec, k, "not allowed on a tcp->tcp "
			    "route (no TLS side)");
		else
			sec_error(p, sec, k, "applies only to a tls:// "
			    "connect");
		bad = -1;
	}
	if (!tls_accept && !tls_connect)
		return bad ? -2 : 0;
	if (given(sec, K_CERT) != given(sec, K_KEY)) {
		sec_error(p, sec, given(sec, K_CERT) ? K_KEY : K_CERT,
		    "missing: cert and key go together");
		bad = -1;
	}
	if (tls_accept && !given(sec, K_CERT) && !given(sec, K_KEY) &&
	    !given(sec, K_PSK_FILE)) {
		sec_error(p, sec, K_CERT, "missing: a tls:// accept needs "
		    "cert and key (or psk_file)");
		bad = -1;
	}
	if (tls_connect && given(sec, K_PSK_IDENTITY) &&
	    !given(sec, K_PSK_FILE)) {
		sec_error(p, sec, K_PSK_IDENTITY, "needs psk_file");
		bad = -1;
	}
	return bad;
}

static int
check_tls(struct parse *p, struct section *sec, struct route *r)
{
	int tls_connect = (r->connect.scheme == SCHEME_TLS);
	const char *v;
	int bad = 0;

	r->cert = take(sec, K_CERT);
	r->key = take(sec, K_KEY);
	r->ca = take(sec, K_CA);
	r->priority = take(sec, K_PRIORITY);
	r->psk_file = take(sec, K_PSK_FILE);
	r->psk_identity = take(sec, K_PSK_IDENTITY);
	r->crl = take(sec, K_CRL);
	v = sec->value[K_VERIFY];
	if (tls_connect && r->ca == NULL && r->psk_file == NULL &&
	    (v == NULL || strcmp(v, "pin") != 0) &&
	    (r->ca = strdup("system")) == NULL)
		return -1;
	if (v == NULL)
		r->verify = (tls_connect || r->ca != NULL) ? VERIFY_REQUIRE :
		    VERIFY_NONE;
	else if (strcmp(v, "require") == 0)
		r->verify = VERIFY_REQUIRE;
	else if (strcmp(v, "optional") == 0)
		r->verify = VERIFY_OPTIONAL;
	else if (strcmp(v, "none") == 0)
		r->verify = VERIFY_NONE;
	else if (strcmp(v, "pin") == 0)
		r->verify = VERIFY_PIN;
	else {
		sec_error(p, sec, K_VERIFY, "must be require, optional, pin "
		    "or none, not \"%s\"", v);
		bad = -1;
	}
	if (sec->value[K_PIN_SHA256] != NULL) {
		if ((r->pins = split_list(sec->value[K_PIN_SHA256])) == NULL)
			return -1;
		if (r->pins[0] == NULL) {
			sec_error(p, sec, K_PIN_SHA256, "empty list");
			bad = -1;
		} else if (r->verify == VERIFY_NONE && r->psk_file == NULL) {
			sec_error(p, sec, K_PIN_SHA256, "needs verification "
			    "(verify = require, optional or pin)");
			bad = -1;
		}
	}
	if (r->verify == VERIFY_PIN) {
		if (r->pins == NULL && !given(sec, K_PIN_SHA256)) {
			sec_error(p, sec, K_VERIFY, "pin needs pin_sha256");
			bad = -1;
		}
		if (r->ca != NULL) {
			sec_error(p, sec, K_CA, "not used with verify = pin "
			    "(the key is pinned, the chain not checked)");
			bad = -1;
		}
	}
	if (r->crl != NULL && (r->ca == NULL || r->verify == VERIFY_NONE ||
	    r->verify == VERIFY_PIN)) {
		sec_error(p, sec, K_CRL, "needs chain verification (ca, and "
		    "verify require or optional)");
		bad = -1;
	}
	if ((v = sec->value[K_CRL_EXPIRED]) != NULL) {
		if (strcmp(v, "refuse") == 0)
			r->crl_refuse = 1;
		else if (strcmp(v, "warn") != 0) {
			sec_error(p, sec, K_CRL_EXPIRED, "must be warn or "
			    "refuse, not \"%s\"", v);
			bad = -1;
		}
		if (r->crl == NULL && !given(sec, K_CRL)) {
			sec_error(p, sec, K_CRL_EXPIRED, "needs crl");
			bad = -1;
		}
	}
	if (r->verify != VERIFY_NONE && r->verify != VERIFY_PIN &&
	    r->ca == NULL && sec->value[K_VERIFY] != NULL &&
	    r->psk_file == NULL) {
		sec_error(p, sec, K_VERIFY, "%s needs ca",
		    sec->value[K_VERIFY]);
		bad = -1;
	}
	if (sec->value[K_ALLOW_PEERS] != NULL) {
		if (r->verify == VERIFY_NONE) {
			sec_error(p, sec, K_ALLOW_PEERS, "needs verification "
			    "(ca, and verify not none)");
			bad = -1;
		}
		r->allow_peers = split_list(sec->value[K_ALLOW_PEERS]);
		if (r->allow_peers == NULL)
			return -1;
		if (r->allow_peers[0] == NULL) {
			sec_error(p, sec, K_ALLOW_PEERS, "empty list");
			bad = -1;
		}
	}
	if (tls_connect) {
		r->server_name = take(sec, K_SERVER_NAME);
		if (r->server_name == NULL &&
		    (r->server_name = strdup(r->connect.host)) == NULL)
			return -1;
	}
	r->resumption = 1;
	if (sec->value[K_RESUMPTION] != NULL &&
	    parse_yesno(sec->value[K_RESUMPTION], &r->resumption) == -1) {
		sec_error(p, sec, K_RESUMPTION, "must be yes or no, not \"%s\"",
		    sec->value[K_RESUMPTION]);
		bad = -1;
	}
	return bad;
}

/*
 * The keys of the transport: the PROXY protocol (send_proxy,
 * accept_proxy, proxy_from), allow_from, reuse_port, and a unix:
 * accept's socket (unix_mode, unix_owner). Every problem is reported;
 * -1 if there was one.
 */
static int
check_transport(struct parse *p, struct section *sec, struct route *r)
{
	const struct passwd *pw;
	const struct group *gr;
	char msg[200], *v, *colon, *ep;
	const char *why;
	long mode;
	int bad = 0;

	if ((v = sec->value[K_SEND_PROXY]) != NULL) {
		if (strcmp(v, "v1") == 0)
			r->send_proxy = SEND_PROXY_V1;
		else if (strcmp(v, "v2") == 0)
			r->send_proxy = SEND_PROXY_V2;
		else if (strcmp(v, "no") != 0) {
			sec_error(p, sec, K_SEND_PROXY, "must be v1, v2 or no, "
			    "not \"%s\"", v);
			bad = -1;
		}
	}
	if ((v = sec->value[K_ACCEPT_PROXY]) != NULL &&
	    parse_yesno(v, &r->accept_proxy) == -1) {
		sec_error(p, sec, K_ACCEPT_PROXY, "must be yes or no, not "
		    "\"%s\"", v);
		bad = -1;
	}
	if (r->accept_proxy && r->accept.scheme == SCHEME_UNIX) {
		sec_error(p, sec, K_ACCEPT_PROXY, "not on a unix: accept");
		bad = -1;
	}
	if ((v = sec->value[K_REUSE_PORT]) != NULL &&
	    parse_yesno(v, &r->reuse_port) == -1) {
		sec_error(p, sec, K_REUSE_PORT, "must be yes or no, not \"%s\"",
		    v);
		bad = -1;
	}
	if (r->reuse_port && r->accept.scheme == SCHEME_UNIX) {
		sec_error(p, sec, K_REUSE_PORT, "not on a unix: accept");
		bad = -1;
	}
	if ((v = sec->value[K_ALLOW_FROM]) != NULL) {
		if (r->accept.scheme == SCHEME_UNIX) {
			sec_error(p, sec, K_ALLOW_FROM, "not on a unix: "
			    "accept (use unix_mode and unix_owner)");
			bad = -1;
		} else if ((why = parse_cidrs(v, &r->allow_from,
		    &r->nallow_from, msg, sizeof(msg))) != NULL) {
			sec_error(p, sec, K_ALLOW_FROM, "%s", why);
			bad = -1;
		}
	}
	if ((v = sec->value[K_PROXY_FROM]) != NULL) {
		if (!r->accept_proxy) {
			sec_error(p, sec, K_PROXY_FROM, "needs accept_proxy = "
			    "yes");
			bad = -1;
		} else if ((why = parse_cidrs(v, &r->proxy_from,
		    &r->nproxy_from, msg, sizeof(msg))) != NULL) {
			sec_error(p, sec, K_PROXY_FROM, "%s", why);
			bad = -1;
		}
	}
	r->unix_mode = 0600;
	if ((v = sec->value[K_UNIX_MODE]) != NULL) {
		errno = 0;
		mode = strtol(v, &ep, 8);
		if (*v == '\0' || *ep != '\0' || errno != 0 || mode < 0 ||
		    mode > 0777) {
			sec_error(p, sec, K_UNIX_MODE, "an octal mode from 0 "
			    "to 0777, not \"%s\"", v);
			bad = -1;
		} else
			r->unix_mode = (unsigned)mode;
	}
	if ((v = sec->value[K_UNIX_OWNER]) != NULL) {
		if ((colon = strchr(v, ':')) != NULL)
			*colon = '\0';
		if ((pw = getpwnam(v)) == NULL) {
			sec_error(p, sec, K_UNIX_OWNER, "no such user: %s", v);
			bad = -1;
		} else {
			r->unix_owner = 1;
			r->unix_uid = pw->pw_uid;
			r->unix_gid = pw->pw_gid;
		}
		if (colon != NULL && (gr = getgrnam(colon + 1)) == NULL) {
			sec_error(p, sec, K_UNIX_OWNER, "no such group: %s",
			    colon + 1);
			bad = -1;
		} else if (colon != NULL)
			r->unix_gid = gr->gr_gid;
		if (colon != NULL)
			*colon = ':';
	}
	if (r->accept.scheme == SCHEME_UNIX && r->accept.host[0] == '@' &&
	    (given(sec, K_UNIX_MODE) || given(sec, K_UNIX_OWNER))) {
		sec_error(p, sec, given(sec, K_UNIX_MODE) ? K_UNIX_MODE :
		    K_UNIX_OWNER, "an abstract socket (unix:@NAME) has no "
		    "file mode or owner");
		bad = -1;
	}
	return bad;
}

/* Build a route from a section; NULL when it has errors (reported). */
static struct route *
build_route(struct parse *p, struct section *sec, const struct defaults *d)
{
	struct tls_report rep = { p, sec };
	struct route *r;
	const char *why;
	int bad = 0, k;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	atomic_init(&r->refs, 1);
	if ((r->live = calloc(1, sizeof(*r->live))) == NULL) {
		free(r);
		return NULL;
	}
	atomic_init(&r->live->refs, 1);
	r->line = sec->line;
	memcpy(r->key_line, sec->key_line, sizeof(r->key_line));
	if ((r->name = strdup(sec->name)) == NULL)
		goto fail;
	for (k = K_ACCEPT; k <= K_CONNECT; k++) {
		struct addr *a = (k == K_ACCEPT) ? &r->accept : &r->connect;

		if (sec->value[k] == NULL) {
			if (!given(sec, k))	/* else reported as empty */
				sec_error(p, sec, k, "missing");
			bad = -1;
		} else if ((why = config_parse_addr(sec->value[k], a)) != NULL) {
			sec_error(p, sec, k, "%s: \"%s\"", why,
			    sec->value[k]);
			bad = -1;
		} else if (k == K_ACCEPT && a->scheme != SCHEME_UNIX &&
		    !config_is_ip(a->host)) {
			sec_error(p, sec, k, "listen on an IP address, not "
			    "\"%s\"", a->host);
			bad = -1;
		} else if (k == K_ACCEPT) {
			sec->accept = *a;
			sec->accept_ok = 1;
		}
	}
	/* Go on after an error, so that one does not hide the next. */
	r->connect_timeout = d->connect_timeout;
	r->handshake_timeout = d->handshake_timeout;
	r->idle_timeout = d->idle_timeout;
	r->max_sessions = d->max_sessions;
	bad |= check_number(p, sec, K_CONNECT_TIMEOUT, &timeout_bounds,
	    &r->connect_timeout);
	bad |= check_number(p, sec, K_HANDSHAKE_TIMEOUT, &timeout_bounds,
	    &r->handshake_timeout);
	bad |= check_number(p, sec, K_IDLE_TIMEOUT, &idle_bounds,
	    &r->idle_timeout);
	bad |= check_number(p, sec, K_MAX_SESSIONS, &sessions_bounds,
	    &r->max_sessions);
	if (sec->value[K_ACCEPT] == NULL || sec->value[K_CONNECT] == NULL ||
	    r->accept.text[0] == '\0' || r->connect.text[0] == '\0')
		goto fail;	/* the route's kind is unknown */
	/*
	 * Go on loading the TLS side after a key in the wrong place, so
	 * that a missing file or a bad priority is reported too.
	 */
	if ((k = check_kind(p, sec, r)) == -2)
		goto fail;
	bad |= k;
	bad |= check_transport(p, sec, r);
	if (r->accept.scheme == SCHEME_TLS || r->connect.scheme == SCHEME_TLS) {
		bad |= check_tls(p, sec, r);
		if (p->load && load_tls(r, &rep) == -1)
			bad = -1;
	}
	if (bad)
		goto fail;
	return r;
fail:
	route_free(r);
	return NULL;
}

/* [gateway] user, group and require_drop: whom to run as. */
static int
build_identity(struct parse *p, struct config *c)
{
	const struct passwd *pw;
	const struct group *gr;
	int bad = 0;

	if (p->gval[G_REQUIRE_DROP] != NULL &&
	    parse_yesno(p->gval[G_REQUIRE_DROP], &c->require_drop) == -1) {
		add_error(p->errs, "%s:%d: [gateway] require_drop: must be "
		    "yes or no, not \"%s\"", p->path, p->gline[G_REQUIRE_DROP],
		    p->gval[G_REQUIRE_DROP]);
		bad = -1;
	}
	if (p->gval[G_USER] != NULL) {
		if ((pw = getpwnam(p->gval[G_USER])) == NULL) {
			add_error(p->errs, "%s:%d: [gateway] user: no such "
			    "user: %s", p->path, p->gline[G_USER],
			    p->gval[G_USER]);
			bad = -1;
		} else {
			c->drop = 1;
			c->uid = pw->pw_uid;
			c->gid = pw->pw_gid;
		}
	}
	if (p->gval[G_GROUP] != NULL) {
		if ((gr = getgrnam(p->gval[G_GROUP])) == NULL) {
			add_error(p->errs, "%s:%d: [gateway] group: no such "
			    "group: %s", p->path, p->gline[G_GROUP],
			    p->gval[G_GROUP]);
			bad = -1;
		} else if (p->gval[G_USER] == NULL) {
			add_error(p->errs, "%s:%d: [gateway] group: needs "
			    "user", p->path, p->gline[G_GROUP]);
			bad = -1;
		} else
			c->gid = gr->gr_gid;
	}
	return bad;
}

/* [gateway] stats and stats_mode: the statistics socket. */
static int
build_stats(struct parse *p, struct config *c)
{
	const char *v = p->gval[G_STATS];
	char *ep;
	long mode;
	int bad = 0;

	c->stats_mode = 0600;
	if (v != NULL && (strncmp(v, "unix:", 5) != 0 || v[5] == '\0')) {
		add_error(p->errs, "%s:%d: [gateway] stats: expected "
		    "unix:PATH, not \"%s\"", p->path, p->gline[G_STATS], v);
		bad = -1;
	} else if (v != NULL && strlen(v + 5) >= 108) {
		add_error(p->errs, "%s:%d: [gateway] stats: path longer than "
		    "107 bytes", p->path, p->gline[G_STATS]);
		bad = -1;
	} else if (v != NULL && (c->stats = strdup(v + 5)) == NULL)
		bad = -1;
	if ((v = p->gval[G_STATS_MODE]) == NULL)
		return bad;
	errno = 0;
	mode = strtol(v, &ep, 8);
	if (*v == '\0' || *ep != '\0' || errno != 0 || mode < 0 ||
	    mode > 0777) {
		add_error(p->errs, "%s:%d: [gateway] stats_mode: an octal "
		    "mode from 0 to 0777, not \"%s\"", p->path,
		    p->gline[G_STATS_MODE], v);
		bad = -1;
	} else if (p->gval[G_STATS] == NULL) {
		add_error(p->errs, "%s:%d: [gateway] stats_mode: needs stats",
		    p->path, p->gline[G_STATS_MODE]);
		bad = -1;
	} else
		c->stats_mode = (unsigned)mode;
	return bad;
}

/*
 * [gateway] ticket_key_file: the session-ticket keys the routes' keys are
 * made from, read now (and at each reload, with the rest).
 */
static int
build_tickets(struct parse *p, struct config *c)
{
	const char *v = p->gval[G_TICKET_KEY_FILE];
	char why[512];

	if (v == NULL)
		return 0;
	if ((c->ticket_key_file = strdup(v)) == NULL)
		return -1;
	if (!p->load)
		return 0;
	if (tls_tickets_load(v, &p->tickets, &c->ticket_keys,
	    &c->ticket_key_mode, why, sizeof(why)) == -1) {
		add_error(p->errs, "%s:%d: [gateway] ticket_key_file: %s",
		    p->path, p->gline[G_TICKET_KEY_FILE], why);
		return -1;
	}
	c->ticket_key_line = p->gline[G_TICKET_KEY_FILE];
	return 0;
}

/* [gateway]: global settings and the routes' defaults. */
static int
build_gateway(struct parse *p, struct config *c, struct defaults *d)
{
	static const struct bounds *const bounds[G_USER] = {
		NULL, &sessions_bounds, &grace_bounds, &timeout_bounds,
		&timeout_bounds, &idle_bounds,
	};
	unsigned *const out[G_USER] = {
		NULL, &c->max_sessions, &c->shutdown_grace,
		&d->connect_timeout, &d->handshake_timeout, &d->idle_timeout,
	};
	const char *why;
	int k, bad = 0;

	if (p->gval[G_LOG_LEVEL] != NULL) {
		if (log_level_parse(p->gval[G_LOG_LEVEL], &c->log_level) ==
		    -1) {
			add_error(p->errs, "%s:%d: [gateway] log_level: must "
			    "be error, warn, info or debug, not \"%s\"", p->path,
			    p->gline[G_LOG_LEVEL], p->gval[G_LOG_LEVEL]);
			bad = -1;
		} else
			c->log_level_set = 1;
	}
	for (k = G_MAX_SESSIONS; k < G_USER; k++) {
		if (p->gval[k] == NULL)
			continue;
		if ((why = parse_num(p->gval[k], bounds[k], out[k])) != NULL) {
			add_error(p->errs, "%s:%d: [gateway] %s: %s", p->path,
			    p->gline[k], gateway_keys[k], why);
			bad = -1;
		}
	}
	d->max_sessions = c->max_sessions;
	return bad | build_stats(p, c) | build_identity(p, c) |
	    build_tickets(p, c);
}

/* An accept address in canonical form: "127.0.0.1:5001", "[::1]:5001". */
static const char *
canonical(const struct addr *a, char *buf, size_t len)
{
	unsigned char x[16];
	char host[sizeof(a->host)];
	int v6 = strchr(a->host, ':') != NULL;

	if (a->scheme == SCHEME_UNIX) {
		snprintf(buf, len, "%s", a->text);
		return buf;
	}
	if (inet_pton(v6 ? AF_INET6 : AF_INET, a->host, x) != 1 ||
	    inet_ntop(v6 ? AF_INET6 : AF_INET, x, host, sizeof(host)) == NULL)
		snprintf(host, sizeof(host), "%s", a->host);
	snprintf(buf, len, v6 ? "[%s]:%s" : "%s:%s", host, a->port);
	return buf;
}

/*
 * Whether two accept addresses cannot both be bound: 2 when they are the
 * same, 1 when a wildcard covers the other ("::" covers IPv4 too), else 0.
 */
static int
overlaps(const struct addr *a, const struct addr *b)
{
	char x[300], y[300];
	int wa, wb;

	if (strcmp(a->port, b->port) != 0 ||
	    (a->scheme == SCHEME_UNIX) != (b->scheme == SCHEME_UNIX))
		return 0;
	if (strcmp(canonical(a, x, sizeof(x)), canonical(b, y, sizeof(y))) ==
	    0)
		return 2;
	if (a->scheme == SCHEME_UNIX)
		return 0;
	wa = strncmp(x, "[::]:", 5) == 0 ? 6 :
	    strncmp(x, "0.0.0.0:", 8) == 0 ? 4 : 0;
	wb = strncmp(y, "[::]:", 5) == 0 ? 6 :
	    strncmp(y, "0.0.0.0:", 8) == 0 ? 4 : 0;
	if (wa == 6 || wb == 6)
		return 1;
	return (wa == 4 || wb == 4) && (x[0] == '[') == (y[0] == '[');
}

/* Two routes may not listen on the same address: check every section. */
static void
check_listeners(struct parse *p)
{
	char x[300], y[300];
	size_t i, j;
	int o;

	for (i = 0; i < p->nsections; i++) {
		const struct section *a = &p->sections[i];

		for (j = 0; a->accept_ok && j < i; j++) {
			const struct section *b = &p->sections[j];

			if (!b->accept_ok ||
			    (o = overlaps(&a->accept, &b->accept)) == 0)
				continue;
			canonical(&a->accept, x, sizeof(x));
			if (o == 2)
				sec_error(p, a, K_ACCEPT, "%s is already the "
				    "accept address of [%s]", x, b->name);
			else
				sec_error(p, a, K_ACCEPT, "%s overlaps the "
				    "accept address of [%s] (%s)", x, b->name,
				    canonical(&b->accept, y, sizeof(y)));
			break;
		}
	}
}

/* The line number in an error line "PATH:LINE: ...", 0 if none. */
static long
error_line(const char *s, const char *path)
{
	size_t n = strlen(path);

	if (strncmp(s, path, n) != 0 || s[n] != ':')
		return 0;
	return strtol(s + n + 1, NULL, 10);
}

/* Report errors in file order, whichever check found them (stable). */
static void
sort_errors(struct config_errors *errs, size_t from, const char *path)
{
	size_t i, j;
	char *t;

	for (i = from + 1; i < errs->n; i++) {
		t = errs->lines[i];
		for (j = i; j > from && error_line(errs->lines[j - 1], path) >
		    error_line(t, path); j--)
			errs->lines[j] = errs->lines[j - 1];
		errs->lines[j] = t;
	}
}

static void
parse_free(struct parse *p)
{
	size_t i;
	int k;

	for (i = 0; i < p->nsections; i++) {
		free(p->sections[i].name);
		for (k = 0; k < K_COUNT; k++)
			free(p->sections[i].value[k]);
	}
	free(p->sections);
	for (k = 0; k < G_COUNT; k++)
		free(p->gval[k]);
	tls_tickets_free(p->tickets);
}

static int
read_file(struct parse *p)
{
	char buf[128];
	int ret;

	if ((p->fp = fopen(p->path, "r")) == NULL) {
		add_error(p->errs, "%s: cannot read: %s", p->path,
		    log_strerror(errno, buf, sizeof(buf)));
		return -1;
	}
	if (&ini_max_line != NULL)
		ini_max_line = LINE_MAX_LEN;
	ret = ini_parse_stream(read_line, p, on_key, p);
	if (ferror(p->fp))
		add_error(p->errs, "%s: read error", p->path);
	if (fclose(p->fp) == EOF)
		add_error(p->errs, "%s: read error", p->path);
	p->fp = NULL;
	if (ret == -2)
		add_error(p->errs, "%s: out of memory", p->path);
	else if (ret > 0 && p->errs->n == 0)
		add_error(p->errs, "%s:%d: syntax error", p->path, ret);
	return 0;
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	return config_read(path, 1, errs);
}

struct config *
config_read(const char *path, int load, struct config_errors *errs)
{
	struct parse p;
	struct config *c;
	struct defaults d = { 10, 10, 43200, 0 };
	struct route *r;
	size_t i, from = errs->n;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.errs = errs;
	p.cur = SEC_NONE;
	p.load = load;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(path)) == NULL)
		goto oom;
	c->log_level = LOG_INFO;
	c->max_sessions = 10000;
	c->shutdown_grace = 10;
	if (read_file(&p) == -1)
		goto fail;
	build_gateway(&p, c, &d);
	if ((c->routes = calloc(p.nsections + 1, sizeof(*c->routes))) == NULL)
		goto oom;
	for (i = 0; i < p.nsections; i++)
		if ((r = build_route(&p, &p.sections[i], &d)) != NULL)
			c->routes[c->nroutes++] = r;
	check_listeners(&p);
	if (p.nsections == 0 && errs->n == from)
		add_error(errs, "%s: no routes", path);
	sort_errors(errs, from, path);
	if (errs->n > from)
		goto fail;
	parse_free(&p);
	return c;
oom:
	add_error(errs, "%s: out of memory", path);
fail:
	if (errs->n == from)
		add_error(errs, "%s: out of memory", path);
	parse_free(&p);
	config_free(c);
	return NULL;
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nroutes; i++)
		config_route_unref(c->routes[i]);
	free(c->routes);
	free(c->path);
	free(c->stats);
	free(c->ticket_key_file);
	free(c);
}

/* --- warnings ----------------------------------------------------------- */

/* Where a route's warnings go, and which route. */
struct warner {
	const struct config	*c;
	const struct route	*r;
	config_warn_fn		*fn;
	void			*arg;
	unsigned		 n;
};

static void
warn(struct warner *w, int k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn(struct warner *w, int k, const char *fmt, ...)
{
	char msg[1024], *line;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = asprintf(&line, "%s:%d: [%s] %s: %s", w->c->path,
	    w->r->key_line[k] ? w->r->key_line[k] : w->r->line, w->r->name,
	    key_names[k], msg);
	if (n == -1)
		return;
	w->fn(w->arg, line);
	w->n++;
	free(line);
}

static void
tls_warned(void *arg, const char *key, const char *fmt, ...)
{
	struct warner *w = arg;
	char msg[1024];
	va_list ap;
	int k;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	k = key_index(key);
	warn(w, k != -1 ? k : K_ACCEPT, "%s", msg);
}

/* Is host the loopback (127.0.0.0/8, also v4-mapped; ::1; localhost)? */
static int
loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return strcasecmp(host, "localhost") == 0;
}

/* A host for a message: an IPv6 address in brackets. */
#define V6(a)	strchr((a).host, ':') ? "[" : "", (a).host, \
		strchr((a).host, ':') ? "]" : ""

unsigned
config_warnings(const struct config *c, config_warn_fn *fn, void *arg)
{
	struct warner w = { c, NULL, fn, arg, 0 };
	const struct route *r;
	size_t i;
	int tls_accept, tls_connect, psk_only;
	char *line;

	if (c->ticket_key_file != NULL && (c->ticket_key_mode & 077) != 0 &&
	    asprintf(&line, "%s:%d: [gateway] ticket_key_file: %s is open to "
	    "group or others (mode %04o): whoever reads it "
	    "can make tickets that resume as any client", c->path,
	    c->ticket_key_line, c->ticket_key_file, c->ticket_key_mode) !=
	    -1) {
		fn(arg, line);
		w.n++;
		free(line);
	}
	for (i = 0; i < c->nroutes; i++) {
		w.r = r = c->routes[i];
		tls_accept = r->accept.scheme == SCHEME_TLS;
		tls_connect = r->connect.scheme == SCHEME_TLS;
		psk_only = r->psk_file != NULL && r->cert == NULL &&
		    (r->ca == NULL || tls_connect);
		if ((tls_accept || tls_connect) && !psk_only &&
		    r->verify == VERIFY_NONE)
			warn(&w, r->key_line[K_VERIFY] ? K_VERIFY : K_CA,
			    tls_connect ? "none: the server's certificate is "
			    "not checked" : r->ca == NULL ? "none (no ca): any "
			    "client is accepted" : "none: any client is "
			    "accepted");
		if ((tls_accept || tls_connect) && r->verify == VERIFY_OPTIONAL)
			warn(&w, K_VERIFY, "optional: %s",
			    tls_accept ? "a client without a certificate is "
			    "accepted" : "the server's certificate is checked "
			    "only if it sends one");
		if (r->accept.scheme == SCHEME_TCP &&
		    !loopback(r->accept.host))
			warn(&w, K_ACCEPT, "plaintext accepted from the network "
			    "(%s%s%s), not only from this host", V6(r->accept));
		if (r->connect.scheme == SCHEME_TCP &&
		    !loopback(r->connect.host))
			warn(&w, K_CONNECT, "plaintext sent to %s%s%s, which may "
			    "be another host", V6(r->connect));
		if (r->accept_proxy && r->proxy_from == NULL)
			warn(&w, K_ACCEPT_PROXY, "yes without proxy_from: any "
			    "client may claim any address");
		if (r->tls != NULL)
			tls_warnings(r->tls, tls_warned, &w);
	}
	return w.n;
}

void
config_inherit(struct config *next, const struct config *old)
{
	size_t i, j;

	for (i = 0; i < next->nroutes; i++) {
		struct route *r = next->routes[i];

		for (j = 0; j < old->nroutes; j++) {
			if (strcmp(r->name, old->routes[j]->name) != 0)
				continue;
			live_unref(r->live);
			r->live = old->routes[j]->live;
			atomic_fetch_add(&r->live->refs, 1);
			break;
		}
	}
}
