/*
 * proxy.c: the command line, the listeners, the accept loop and signals.
 *
 * Signals are blocked in every thread and read from a signalfd polled by
 * the accept loop beside the listeners: no handlers, no async-signal
 * rules. SIGINT/SIGTERM stop accepting and give live sessions
 * shutdown_grace seconds; SIGHUP reloads the configuration.
 */
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "relay.h"
#include "stats.h"
#include "tls.h"

#define VERSION		"0.1.0"
#define MAX_LISTENERS	1024
#define ACCEPT_BURST	64	/* accepts per listener per wakeup */
#define DRAIN_MAX	4096	/* accepts per listener at shutdown */
#define CERTS_EVERY	86400	/* s between event=cert lines */

/* A socket file this process made: removed when done with, if still it. */
struct sockfile {
	dev_t		 dev;
	ino_t		 ino;		/* 0: none made */
};

struct listener {
	int		 fd;
	struct route	*route;		/* the config's reference */
	struct sockfile	 file;		/* a unix: accept's */
};

static struct listener	 listeners[MAX_LISTENERS];
static size_t		 nlisteners;

/* Sockets passed by systemd (LISTEN_FDS), not yet given to a route, and
   their names (FileDescriptorName=). */
static int		 passed[MAX_LISTENERS];
static char		*passed_name[MAX_LISTENERS];
static size_t		 npassed;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: tlsgate [-c FILE] [-t [-v] [--strict]] [-l LEVEL] [-V] "
	    "[-h]\n"
	    "       tlsgate --stats [SOCKET | -c FILE]\n"
	    "       tlsgate --pin CERT.pem\n"
	    "       tlsgate --gen-ticket-key FILE\n"
	    "  -c, --config FILE    routes file (default: ./routes.ini)\n"
	    "  -t, --check          load and validate FILE, its certificates, "
	    "keys and\n"
	    "                       priority strings, print one line per "
	    "route and\n"
	    "                       each weakening (FILE:LINE), exit\n"
	    "  -v, --verbose        with -t: explain each route in a "
	    "sentence\n"
	    "      --strict         with -t: exit 1 if there is a warning\n"
	    "      --stats [SOCKET] print the statistics of a running "
	    "gateway (SOCKET,\n"
	    "                       or [gateway] stats of FILE) as a table\n"
	    "      --pin CERT.pem   print the pin_sha256 of the certificate's "
	    "key, exit\n"
	    "      --gen-ticket-key FILE  write a new session-ticket key to FILE "
	    "(mode\n"
	    "                       0600), keeping its current key as the "
	    "previous one,\n"
	    "                       for [gateway] ticket_key_file; exit\n"
	    "  -l, --log-level L    error | warn | info | debug (overrides "
	    "the file)\n"
	    "  -V, --version        print the version and the GnuTLS "
	    "version, exit 0\n"
	    "  -h, --help           usage, exit 0\n");
}

static const char *
kind(const struct route *r)
{
	if (r->accept.scheme == SCHEME_TLS)
		return "unwrap";
	return r->connect.scheme == SCHEME_TLS ? "wrap" : "forward";
}

static void
print_errors(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->lines[i]);
	config_errors_clear(errs);
}

static void
log_errors(struct config_errors *errs)
{
	char q[1100];
	size_t i;

	for (i = 0; i < errs->n; i++)
		log_event(LOG_ERROR, NULL, 0, "config", "error=%s",
		    log_quote(errs->lines[i], q, sizeof(q)));
	config_errors_clear(errs);
}

/* A weakening of the configuration: logged at start and at each reload. */
static void
log_warning(void *arg, const char *line)
{
	char q[1100];

	(void)arg;
	log_event(LOG_WARN, NULL, 0, "config", "warning=%s",
	    log_quote(line, q, sizeof(q)));
}

/* ... and printed by --check. */
static void
print_warning(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

/* How many days until t, as an event: a warning past it or within
   warn_under days. */
static void
log_days(const char *route, const char *event, const char *key, time_t t,
    long long warn_under)
{
	time_t now = time(NULL);
	long long days;

	days = (long long)(t - now) / 86400;
	if (t < now)
		days = -1 - (long long)(now - t) / 86400;
	log_event(days < warn_under || t <= now ? LOG_WARN : LOG_INFO, route,
	    0, event, "%s=%lld", key, days);
}

/*
 * Each route's certificate and when it expires (a warning within 30
 * days), and its CRL's next update (a warning once past it): at start, at
 * each reload and once a day.
 */
static void
log_certs(const struct config *c)
{
	const struct tls_ctx *t;
	time_t exp;
	size_t i;

	for (i = 0; i < c->nroutes; i++) {
		if ((t = c->routes[i]->tls) == NULL)
			continue;
		if ((exp = tls_cert_expiry(t)) != (time_t)-1)
			log_days(c->routes[i]->name, "cert", "expires_in_days",
			    exp, 30);
		if ((exp = tls_crl_next_update(t)) != (time_t)-1)
			log_days(c->routes[i]->name, "crl",
			    "next_update_in_days", exp, 0);
	}
}

/* An address without its scheme: "127.0.0.1:80", "[::1]:80". */
static const char *
hostport(const struct addr *a)
{
	const char *p = strstr(a->text, "://");

	return p != NULL ? p + 3 : a->text;
}

/* Who may come in on the accept side, for -t -v. */
static void
explain_accept(const struct route *r)
{
	const struct passwd *pw;

	if (r->reuse_port)
		printf(" (a port it may share with other processes)");
	if (r->accept_proxy)
		printf(", after a PROXY header from %s", r->proxy_from ?
		    "a proxy in proxy_from" : "any proxy");
	if (r->allow_from != NULL)
		printf(", for client addresses in allow_from only");
	if (r->accept.scheme == SCHEME_UNIX && r->accept.host[0] == '@')
		printf(" (an abstract socket: any local process may connect)");
	else if (r->accept.scheme == SCHEME_UNIX && !r->unix_owner)
		printf(" (socket mode %04o)", r->unix_mode);
	else if (r->accept.scheme == SCHEME_UNIX) {
		pw = getpwuid(r->unix_uid);
		printf(" (socket mode %04o, owner %s)", r->unix_mode,
		    pw != NULL ? pw->pw_name : "?");
	}
}

/* What the connect side sends first, for -t -v. */
static const char *
explain_proxy(const struct route *r)
{
	return r->send_proxy == SEND_PROXY_V1 ? ", sending a PROXY v1 header "
	    "first" : r->send_proxy == SEND_PROXY_V2 ? ", sending a PROXY v2 "
	    "header first" : "";
}

/* How an unwrap route's tickets are sealed, for -t -v. */
static void
explain_tickets(const struct config *c)
{
	if (c->ticket_key_file == NULL)
		printf("; its session tickets resume on this process only");
	else
		printf("; its session tickets, sealed with a key made from %s "
		    "(%s), resume on every process that reads the file",
		    c->ticket_key_file, c->ticket_keys == 2 ?
		    "its current key; tickets of its previous key resume too" :
		    "its one key");
}

/* The route in words, for -t -v. */
static void
explain(const struct config *c, const struct route *r)
{
	const char *in = hostport(&r->accept), *out = hostport(&r->connect);
	const char *crl = r->crl == NULL ? "" : r->crl_refuse ? ", not revoked "
	    "by its crl (all refused once it is past its next update)" :
	    ", not revoked by its crl";
	const char *pins = r->pins != NULL ? ", with a pinned key" : "";
	char names[512] = "";
	size_t i, n = 0;

	for (i = 0; r->allow_peers != NULL && r->allow_peers[i] != NULL; i++)
		n += (size_t)snprintf(names + n, n < sizeof(names) ?
		    sizeof(names) - n : 0, "%s%s", i ? ", " : "",
		    r->allow_peers[i]);
	printf("  %s: ", r->name);
	if (r->accept.scheme == SCHEME_TLS) {
		printf("accepts TLS on %s", in);
		explain_accept(r);
		printf(" from ");
		if (r->verify == VERIFY_NONE)
			printf("%s", r->psk_file ? "" : "any client");
		else if (r->verify == VERIFY_PIN)
			printf("clients whose key is pinned (pin_sha256)%s%s",
			    names[0] ? " and that name " : "", names);
		else
			printf("clients whose certificate chains to %s%s%s%s%s%s",
			    r->ca, crl, pins, names[0] ? " and names " : "",
			    names, r->verify == VERIFY_OPTIONAL ? " (or that "
			    "send none)" : "");
		if (r->psk_file != NULL)
			printf("%sclients with a key of %s",
			    r->verify == VERIFY_NONE ? "" : ", or ",
			    r->psk_file);
		printf("; then connects in plaintext to %s%s", out,
		    explain_proxy(r));
		if (r->resumption)
			explain_tickets(c);
		printf("\n");
	} else if (r->connect.scheme == SCHEME_TLS) {
		printf("accepts plaintext on %s", in);
		explain_accept(r);
		printf("; then connects with TLS to %s%s", out,
		    explain_proxy(r));
		if (r->verify == VERIFY_PIN)
			printf(", checking that the server's key is pinned "
			    "(pin_sha256)%s%s", names[0] ? " and that it names "
			    : "", names);
		else if (r->verify != VERIFY_NONE)
			printf(", checking that the server's certificate "
			    "chains to %s%s%s and is valid for %s%s%s%s",
			    strcmp(r->ca, "system") == 0 ? "the system's "
			    "trust store" : r->ca, crl, pins, r->server_name,
			    names[0] ? " and names " : "", names,
			    r->verify == VERIFY_OPTIONAL ? " (if it sends "
			    "one)" : "");
		else if (r->psk_file == NULL)
			printf(", without checking the server's certificate");
		if (r->cert != NULL)
			printf(", presenting the certificate of %s", r->cert);
		if (r->psk_file != NULL)
			printf(", with the key of %s", r->psk_identity ?
			    r->psk_identity : "the first identity of the "
			    "psk_file");
		printf("\n");
	} else {
		printf("accepts plaintext on %s", in);
		explain_accept(r);
		printf(" and connects in plaintext to %s%s, without TLS\n", out,
		    explain_proxy(r));
	}
}

static void
print_routes(const struct config *c, int verbose)
{
	char id[1024];
	size_t i;

	for (i = 0; i < c->nroutes; i++) {
		const struct route *r = c->routes[i];

		id[0] = '\0';
		if (r->tls != NULL)
			tls_identity(r->tls, id, sizeof(id));
		printf("%s %s %s -> %s%s%s\n", r->name, kind(r), r->accept.text,
		    r->connect.text, id[0] ? " " : "", id);
		if (verbose)
			explain(c, r);
	}
}

/*
 * tlsgate --stats [SOCKET]: the snapshot of a running gateway, as a table;
 * SOCKET defaults to the stats of the routes file.
 */
static int
print_stats(const char *sock, const char *path)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	int rc;

	if (sock != NULL)
		return stats_print(sock);
	if ((c = config_read(path, 0, &errs)) == NULL) {
		print_errors(&errs);
		return 2;
	}
	if (c->stats == NULL) {
		fprintf(stderr, "tlsgate: %s: no stats socket ([gateway] "
		    "stats)\n", path);
		config_free(c);
		return 2;
	}
	rc = stats_print(c->stats);
	config_free(c);
	return rc;
}

/*
 * Socket activation: the sockets systemd passes (LISTEN_FDS), with the
 * names of their FileDescriptorName= when LISTEN_FDNAMES is set. A name
 * list that does not match the sockets is ignored, with a warning, and the
 * sockets are matched by address alone.
 */
static void
take_passed_fds(void)
{
	char **names = NULL;
	int n, i, named = getenv("LISTEN_FDNAMES") != NULL;

	if ((n = sd_listen_fds_with_names(0, &names)) == -EINVAL && named) {
		n = sd_listen_fds(0);
		log_event(LOG_WARN, NULL, 0, "listen", "reason=\"LISTEN_FDNAMES "
		    "does not name the %d passed sockets; names ignored\"", n);
		named = 0;
	}
	(void)unsetenv("LISTEN_FDS");	/* as sd_listen_fds(1) would */
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDNAMES");
	for (i = 0; i < n && npassed < MAX_LISTENERS; i++) {
		passed_name[npassed] = named && names != NULL ? names[i] : NULL;
		if (passed_name[npassed] == NULL && names != NULL)
			free(names[i]);
		passed[npassed++] = SD_LISTEN_FDS_START + i;
	}
	for (; names != NULL && i < n; i++)
		free(names[i]);
	free(names);		/* the strings are passed_name's now */
}

static void
drop_passed(size_t i)
{
	free(passed_name[i]);
	passed[i] = passed[--npassed];
	passed_name[i] = passed_name[npassed];
}

/*
 * A passed socket for route r: the one named after it (byname), or one
 * bound to its accept address; or -1.
 */
static int
take_passed(const struct route *r, int byname)
{
	struct addrinfo hints, want, *ai = NULL;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	socklen_t len;
	size_t i;
	int fd = -1, flags;

	for (i = 0; byname && i < npassed && fd == -1; i++)
		if (passed_name[i] != NULL &&
		    strcmp(passed_name[i], r->name) == 0) {
			fd = passed[i];
			drop_passed(i);
		}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if (r->accept.scheme == SCHEME_UNIX) {
		config_unix_addr(&r->accept, &sun, &want.ai_addrlen);
		want.ai_addr = (struct sockaddr *)&sun;
		ai = &want;
	} else if (byname || npassed == 0 || getaddrinfo(r->accept.host,
	    r->accept.port, &hints, &ai) != 0)
		ai = NULL;
	for (i = 0; !byname && ai != NULL && i < npassed; i++) {
		memset(&ss, 0, sizeof(ss));
		len = sizeof(ss);
		if (getsockname(passed[i], (struct sockaddr *)&ss, &len) ==
		    -1 || len != ai->ai_addrlen ||
		    memcmp(&ss, ai->ai_addr, len) != 0)
			continue;
		fd = passed[i];
		drop_passed(i);
		break;
	}
	if (ai != NULL && ai != &want)
		freeaddrinfo(ai);
	if (fd == -1)
		return -1;
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	log_event(LOG_INFO, r->name, 0, "listen", "addr=%s from=systemd",
	    r->accept.text);
	return fd;
}

/*
 * A unix socket listening at path ("@name": abstract), made with mode and
 * owned by uid and gid (-1: as it is). A socket file nobody answers on is
 * stale and replaced; a live one, or anything else at path, is an error.
 * made tells which file is ours. -1 with why set.
 */
static int
unix_listen(const struct addr *a, unsigned mode, uid_t uid, gid_t gid,
    struct sockfile *made, char *why, size_t whylen)
{
	const char *path = a->host;
	struct sockaddr_un sun;
	struct stat st;
	socklen_t len;
	char eb[128];
	mode_t mask;
	int fd = -1, probe, err, file = path[0] != '@';

	made->ino = 0;
	config_unix_addr(a, &sun, &len);
	if (file && lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(why, whylen, "%.110s: exists and is not a socket",
			    path);
			return -1;
		}
		if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
		    -1) {
			snprintf(why, whylen, "%.110s: %s", path,
			    log_strerror(errno, eb, sizeof(eb)));
			return -1;
		}
		if (connect(probe, (struct sockaddr *)&sun, len) == 0) {
			(void)close(probe);
			snprintf(why, whylen, "%.110s: in use by another process",
			    path);
			return -1;
		}
		(void)close(probe);
		(void)unlink(path);
	}
	/* Made with its mode at once (threads make no files meanwhile). */
	mask = umask(~mode & 0777);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, len) == -1) {
		err = errno;
		(void)umask(mask);
		goto fail;
	}
	(void)umask(mask);
	if (file && (chmod(path, mode) == -1 || (uid != (uid_t)-1 &&
	    chown(path, uid, gid) == -1) || lstat(path, &st) == -1)) {
		err = errno;
		(void)unlink(path);
		goto fail;
	}
	if (listen(fd, SOMAXCONN) == -1) {
		err = errno;
		if (file)
			(void)unlink(path);
		goto fail;
	}
	if (file) {
		made->dev = st.st_dev;
		made->ino = st.st_ino;
	}
	return fd;
fail:
	snprintf(why, whylen, "%.110s: %s", path, log_strerror(err, eb,
	    sizeof(eb)));
	if (fd != -1)
		(void)close(fd);
	return -1;
}

/* Remove the socket file path if it is still the one made. */
static void
unix_unlink(const char *path, const struct sockfile *made)
{
	struct stat st;
	char eb[128];

	if (made->ino == 0 || lstat(path, &st) == -1 ||
	    st.st_dev != made->dev || st.st_ino != made->ino)
		return;		/* none, gone, or not ours any more */
	if (unlink(path) == -1)
		log_event(LOG_WARN, NULL, 0, "listen", "reason=\"cannot remove "
		    "%s: %s\"", path, log_strerror(errno, eb, sizeof(eb)));
}

/* Bind and listen on a route's accept address; -1 with why set. */
static int
listen_on(const struct config *c, const struct route *r,
    struct sockfile *made, char *why, size_t whylen)
{
	const struct addr *a = &r->accept;
	struct addrinfo hints, *ai = NULL;
	char eb[128];
	int fd = -1, one = 1, v6only, rc;

	made->ino = 0;
	if (a->scheme == SCHEME_UNIX)
		return unix_listen(a, r->unix_mode, r->unix_owner ?
		    r->unix_uid : c->drop ? c->uid : (uid_t)-1,
		    r->unix_owner ? r->unix_gid : c->drop ? c->gid :
		    (gid_t)-1, made, why, whylen);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(a->host, a->port, &hints, &ai)) != 0) {
		snprintf(why, whylen, "%s", gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (r->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
	    sizeof(one)) == -1)
		goto fail;
	/*
	 * [::] means every address, IPv4 too; [::ffff:a.b.c.d] the IPv4
	 * address a.b.c.d; any other IPv6 address only itself.
	 */
	v6only = ai->ai_family == AF_INET6 && strcmp(a->host, "::") != 0 &&
	    !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)(void *)
	    ai->ai_addr)->sin6_addr);
	if (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1)
		goto fail;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, SOMAXCONN) == -1)
		goto fail;
	freeaddrinfo(ai);
	return fd;
fail:
	snprintf(why, whylen, "%s", log_strerror(errno, eb, sizeof(eb)));
	if (fd != -1)
		(void)close(fd);
	freeaddrinfo(ai);
	return -1;
}

static int
same_addr(const struct addr *a, const struct addr *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->port, b->port) == 0;
}

/* n gets the socket already listening on r's address, if there is one. */
static void
keep_listener(struct listener *n, const struct route *r)
{
	size_t j;

	n->fd = -1;
	n->file.ino = 0;
	for (j = 0; j < nlisteners; j++) {
		if (listeners[j].fd == -1 ||
		    !same_addr(&listeners[j].route->accept, &r->accept))
			continue;
		n->fd = listeners[j].fd;
		n->file = listeners[j].file;
		if (listeners[j].route->reuse_port != r->reuse_port)
			log_event(LOG_WARN, r->name, 0, "reload", "reason=\""
			    "reuse_port takes effect at the next start\"");
	}
}

/*
 * Make the listeners match c: keep the sockets of addresses that stay
 * (no connection is refused during a reload), bind the new ones, close
 * the rest. All or nothing: on failure the old set is left as it was.
 */
static int
apply_listeners(const struct config *c)
{
	struct listener next[MAX_LISTENERS];
	char why[256], q[300];
	size_t i, j;
	int kept;

	if (c->nroutes > MAX_LISTENERS) {
		log_event(LOG_ERROR, NULL, 0, "listen", "reason=\"more than "
		    "%d routes\"", MAX_LISTENERS);
		return -1;
	}
	for (i = 0; i < c->nroutes; i++) {
		struct route *r = c->routes[i];

		next[i].route = r;
		keep_listener(&next[i], r);
		if (next[i].fd == -1)
			next[i].fd = take_passed(r, 1);
	}
	/* A socket named after a route is its own, whatever its address. */
	for (i = 0; i < c->nroutes; i++) {
		struct route *r = c->routes[i];

		if (next[i].fd != -1)
			continue;
		if ((next[i].fd = take_passed(r, 0)) != -1)
			continue;
		if ((next[i].fd = listen_on(c, r, &next[i].file, why,
		    sizeof(why))) == -1) {
			log_event(LOG_ERROR, r->name, 0, "listen", "addr=%s "
			    "reason=%s", r->accept.text,
			    log_quote(why, q, sizeof(q)));
			goto undo;
		}
		log_event(LOG_INFO, r->name, 0, "listen", "addr=%s",
		    r->accept.text);
	}
	/* What the sockets each listener accepts start with. */
	for (i = 0; i < c->nroutes; i++)
		if (relay_listener(next[i].fd, next[i].route) == -1)
			log_event(LOG_WARN, next[i].route->name, 0, "listen",
			    "reason=\"socket options: %s\"",
			    log_strerror(errno, why, sizeof(why)));
	for (j = 0; j < nlisteners; j++) {
		for (kept = 0, i = 0; i < c->nroutes; i++)
			kept |= (next[i].fd == listeners[j].fd);
		if (kept)
			continue;
		unix_unlink(listeners[j].route->accept.host,
		    &listeners[j].file);
		if (close(listeners[j].fd) == -1)
			log_event(LOG_WARN, NULL, 0, "listen", "reason=close");
	}
	memcpy(listeners, next, c->nroutes * sizeof(next[0]));
	nlisteners = c->nroutes;
	return 0;
undo:
	for (i = 0; i < c->nroutes; i++) {
		for (kept = 0, j = 0; j < nlisteners; j++)
			kept |= (next[i].fd == listeners[j].fd);
		if (kept || next[i].fd == -1)
			continue;
		unix_unlink(next[i].route->accept.host, &next[i].file);
		(void)close(next[i].fd);
	}
	return -1;
}

static void
close_listeners(void)
{
	size_t i;

	for (i = 0; i < nlisteners; i++) {
		unix_unlink(listeners[i].route->accept.host,
		    &listeners[i].file);
		(void)close(listeners[i].fd);
	}
	nlisteners = 0;
}

/*
 * systemd's readiness protocol (sd_notify): READY=1 once listening,
 * RELOADING=1 and READY=1 around a reload, STOPPING=1 at SIGTERM, and
 * STATUS= with the live sessions. Nothing without NOTIFY_SOCKET.
 */
static int	 notify;	/* NOTIFY_SOCKET was set at start */
static unsigned	 notified_live = (unsigned)-1;

static void
notify_status(const char *state)
{
	unsigned n = relay_count();

	if (!notify || (state == NULL && n == notified_live))
		return;
	notified_live = n;
	(void)sd_notifyf(0, "%s%sSTATUS=%u session%s live", state ? state : "",
	    state ? "\n" : "", n, n == 1 ? "" : "s");
}

/* The stats socket, if [gateway] stats is set: served from now on. */
static char	*stats_path;	/* the socket we made: removed at exit */
static struct sockfile stats_file;
static unsigned	 stats_mode;

static int
open_stats(const struct config *c)
{
	struct addr a;
	char why[256], q[300];
	int fd;

	if (c->stats == NULL)
		return 0;
	memset(&a, 0, sizeof(a));
	a.scheme = SCHEME_UNIX;
	snprintf(a.host, sizeof(a.host), "%s", c->stats);
	if ((fd = unix_listen(&a, c->stats_mode, c->drop ? c->uid :
	    (uid_t)-1, c->drop ? c->gid : (gid_t)-1, &stats_file, why,
	    sizeof(why))) == -1 || stats_serve(fd) == -1) {
		log_event(LOG_ERROR, NULL, 0, "exit", "reason=%s",
		    log_quote(fd == -1 ? why : "stats: no thread", q,
		    sizeof(q)));
		return -1;
	}
	if ((stats_path = strdup(c->stats)) == NULL) {
		(void)unlink(c->stats);
		log_event(LOG_ERROR, NULL, 0, "exit", "reason=\"out of memory\"");
		return -1;
	}
	stats_mode = c->stats_mode;
	log_event(LOG_INFO, NULL, 0, "stats", "socket=%s", c->stats);
	return 0;
}

/*
 * Become [gateway] user and group once every listener is bound and every
 * key read. Refuse to go on as root without them if require_drop is set.
 */
static int
drop_privileges(const struct config *c)
{
	char eb[128];

	if (!c->drop) {
		if (c->require_drop && geteuid() == 0) {
			log_event(LOG_ERROR, NULL, 0, "exit", "reason=\"running "
			    "as root, require_drop = yes and no user set\"");
			return -1;
		}
		return 0;
	}
	if (setgroups(1, &c->gid) == -1 || setgid(c->gid) == -1 ||
	    setuid(c->uid) == -1) {
		log_event(LOG_ERROR, NULL, 0, "exit", "reason=\"cannot drop "
		    "privileges: %s\"", log_strerror(errno, eb, sizeof(eb)));
		return -1;
	}
	if (c->uid != 0 && setuid(0) != -1) {
		log_event(LOG_ERROR, NULL, 0, "exit", "reason=\"privileges "
		    "could be regained\"");
		return -1;
	}
	log_event(LOG_INFO, NULL, 0, "privileges", "uid=%u gid=%u",
	    (unsigned)c->uid, (unsigned)c->gid);
	return 0;
}

/*
 * Accept what is pending on l. Out of descriptors, refuse the waiting
 * connection with the reserve descriptor; if even that fails (or memory
 * is short), leave it queued and pause accepting for a moment.
 * -1 to pause, 1 after a whole burst (more may wait), 0 when none is left.
 */
static int
accept_some(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, i;

	for (i = 0; i < ACCEPT_BURST; i++) {
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd != -1) {
			relay_start(fd, l->route, (struct sockaddr *)&ss, len);
			continue;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
			if (relay_refuse_waiting(l->fd, l->route, errno) == 0)
				continue;
			return -1;	/* pause */
		case ENOBUFS:
		case ENOMEM:
			return -1;	/* pause */
		default:
			return 0;	/* EAGAIN and the rest */
		}
	}
	return 1;
}

/*
 * At shutdown, take what the listeners have queued, so that it is served
 * within the grace rather than reset when they close (with reuse_port,
 * new connections go to the other processes once they have closed; see
 * tcp_migrate_req in the README). At most DRAIN_MAX per listener.
 */
static void
drain_listeners(void)
{
	size_t i;
	int k;

	for (i = 0; i < nlisteners; i++)
		for (k = 0; k < DRAIN_MAX / ACCEPT_BURST &&
		    accept_some(&listeners[i]) == 1; k++)
			;
}

/* Load path again; on success the new routes serve new sessions. */
static void
reload(struct config **cur, int log_level_cli)
{
	struct config_errors errs = { NULL, 0 };
	struct timespec ts;
	struct config *c;

	if (notify) {
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)ts.tv_sec * 1000000 +
		    (unsigned long long)ts.tv_nsec / 1000);
	}
	if ((c = config_load((*cur)->path, &errs)) == NULL) {
		log_errors(&errs);
		notify_status("READY=1");
		stats_loaded(0);
		log_event(LOG_ERROR, NULL, 0, "reload", "result=failed "
		    "reason=\"configuration error; the old one stays\"");
		return;
	}
	config_inherit(c, *cur);
	if (apply_listeners(c) == -1) {
		config_free(c);
		notify_status("READY=1");
		stats_loaded(0);
		log_event(LOG_ERROR, NULL, 0, "reload", "result=failed "
		    "reason=\"cannot listen; the old configuration stays\"");
		return;
	}
	if (!log_level_cli)
		log_set_level(c->log_level);
	relay_set_max_sessions(c->max_sessions);
	if (c->drop != (*cur)->drop || c->uid != (*cur)->uid ||
	    c->gid != (*cur)->gid)
		log_event(LOG_WARN, NULL, 0, "reload", "reason=\"user and "
		    "group take effect at the next start\"");
	if ((c->stats == NULL) != (stats_path == NULL) || (c->stats != NULL &&
	    (strcmp(c->stats, stats_path) != 0 || c->stats_mode != stats_mode)))
		log_event(LOG_WARN, NULL, 0, "reload", "reason=\"stats and "
		    "stats_mode take effect at the next start\"");
	(void)config_warnings(c, log_warning, NULL);
	log_certs(c);
	stats_set_config(c);
	stats_loaded(1);
	config_free(*cur);	/* live sessions keep their routes */
	*cur = c;
	notify_status("READY=1");
	log_event(LOG_INFO, NULL, 0, "reload", "result=ok routes=%zu",
	    c->nroutes);
}

static int
read_signal(int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

/* Stop accepting; give live sessions the grace, then close the rest. */
static void
shut_down(const struct config *c, int sfd, int sig)
{
	struct pollfd pfd = { sfd, POLLIN, 0 };
	long left = (long)c->shutdown_grace * 1000;
	unsigned n;

	drain_listeners();
	close_listeners();
	notify_status("STOPPING=1");
	log_event(LOG_INFO, NULL, 0, "shutdown", "signal=%s sessions=%u "
	    "grace=%u", sig == SIGINT ? "INT" : "TERM", relay_count(),
	    c->shutdown_grace);
	while ((n = relay_wait(left < 200 ? left : 200)) > 0 && left > 0) {
		left -= 200;
		if (poll(&pfd, 1, 0) == 1 && read_signal(sfd) != SIGHUP)
			break;		/* a second signal: don't wait */
	}
	if (n > 0) {
		log_event(LOG_INFO, NULL, 0, "shutdown", "closing=%u", n);
		relay_shutdown_all();
		/* A session still connecting or resolving wakes by itself. */
		if ((n = relay_wait(5000)) > 0)
			log_event(LOG_WARN, NULL, 0, "shutdown", "unfinished=%u",
			    n);
	}
}

static int
serve(struct config **cur, int sfd, int log_level_cli)
{
	struct pollfd pfd[MAX_LISTENERS + 1];
	struct timespec ts;
	int64_t now, certs_at, status_at = 0;
	size_t i;
	long tidy, wait;
	int sig, paused = 0, rc;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	certs_at = (int64_t)ts.tv_sec + CERTS_EVERY;
	for (;;) {
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < nlisteners; i++) {
			pfd[i + 1].fd = paused ? -1 : listeners[i].fd;
			pfd[i + 1].events = POLLIN;
		}
		/* Housekeeping: memory after sessions, and certificates. */
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (int64_t)ts.tv_sec;
		if (now >= certs_at) {
			log_certs(*cur);
			certs_at = now + CERTS_EVERY;
		}
		wait = (long)(certs_at - now) * 1000;
		if ((tidy = relay_tidy()) != -1 && tidy < wait)
			wait = tidy;
		/*
		 * STATUS= when the sessions changed, at most once a second:
		 * the loop wakes at least every second while sessions go on
		 * (relay_tidy), and not at all when nothing happens.
		 */
		if (notify && now >= status_at) {
			notify_status(NULL);
			status_at = now + 1;
		}
		if (paused && wait > 100)
			wait = 100;
		rc = poll(pfd, nlisteners + 1, (int)wait);
		if (rc == -1 && errno != EINTR)
			return -1;
		paused = 0;
		if (rc > 0 && (pfd[0].revents & POLLIN)) {
			sig = read_signal(sfd);
			if (sig == SIGHUP) {
				reload(cur, log_level_cli);
				continue;	/* the listeners changed */
			}
			if (sig == SIGINT || sig == SIGTERM) {
				shut_down(*cur, sfd, sig);
				return 0;
			}
		}
		for (i = 0; rc > 0 && i < nlisteners; i++)
			if ((pfd[i + 1].revents & POLLIN) &&
			    accept_some(&listeners[i]) == -1)
				paused = 1;
	}
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "stats", no_argument, NULL, 'S' },
		{ "pin", required_argument, NULL, 'P' },
		{ "gen-ticket-key", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "strict", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	const char *path = "routes.ini";
	enum log_level level = LOG_INFO;
	int ch, check = 0, level_cli = 0, stats = 0, verbose = 0, strict = 0;
	int kept;
	int sfd, rc;
	sigset_t set;
	char eb[300], pin[64];

	while ((ch = getopt_long(argc, argv, "c:tl:Vhv", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'l':
			if (log_level_parse(optarg, &level) == -1) {
				fprintf(stderr, "tlsgate: bad log level: %s "
				    "(error, warn, info or debug)\n", optarg);
				return 2;
			}
			level_cli = 1;
			break;
		case 'V':
			printf("tlsgate %s (GnuTLS %s)\n", VERSION,
			    gnutls_check_version(NULL));
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'P':
			if (tls_pin_file(optarg, pin, sizeof(pin), eb,
			    sizeof(eb)) == -1) {
				fprintf(stderr, "tlsgate: --pin: %s\n", eb);
				return 1;
			}
			printf("%s\n", pin);
			return 0;
		case 'K':
			if (tls_tickets_generate(optarg, &kept, eb, sizeof(eb)) ==
			    -1) {
				fprintf(stderr, "tlsgate: --gen-ticket-key: %s\n",
				    eb);
				return 1;
			}
			printf("%s: a new current key%s\n", optarg, kept ?
			    ", and the one it replaces as the previous key" :
			    "");
			return 0;
		case 'S':
			stats = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 's':
			strict = 1;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (stats && optind + 1 >= argc)
		return print_stats(optind < argc ? argv[optind] : NULL, path);
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((verbose || strict) && !check) {
		fprintf(stderr, "tlsgate: %s goes with -t\n", verbose ?
		    "-v" : "--strict");
		return 2;
	}

	/* Before the first thread: signals go to the signalfd only. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if ((rc = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    (sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1) {
		fprintf(stderr, "tlsgate: signals: %s\n",
		    log_strerror(rc ? rc : errno, eb, sizeof(eb)));
		return 1;
	}
	if (level_cli)
		log_set_level(level);
	if ((c = config_load(path, &errs)) == NULL) {
		print_errors(&errs);
		return 2;
	}
	if (check) {
		print_routes(c, verbose);
		rc = config_warnings(c, print_warning, NULL) > 0 && strict;
		config_free(c);
		return rc;
	}
	(void)config_warnings(c, log_warning, NULL);
	if (!level_cli)
		log_set_level(c->log_level);
	relay_set_max_sessions(c->max_sessions);
	if (relay_init() == -1) {
		log_event(LOG_ERROR, NULL, 0, "exit", "reason=\"threads: %s\"",
		    log_strerror(errno, eb, sizeof(eb)));
		return 1;
	}
	relay_no_preempt();	/* the accept loop: see relay.h */
	take_passed_fds();
	if (apply_listeners(c) == -1 || open_stats(c) == -1 ||
	    drop_privileges(c) == -1) {
		if (stats_path != NULL)
			unix_unlink(stats_path, &stats_file);
		config_free(c);
		return 1;
	}
	stats_set_config(c);
	stats_loaded(1);
	log_certs(c);
	while (npassed > 0) {		/* no route wants them */
		log_event(LOG_WARN, NULL, 0, "listen", "reason=\"passed "
		    "socket (fd %d%s%s) matches no route; closed\"",
		    passed[npassed - 1], passed_name[npassed - 1] ? ", " : "",
		    passed_name[npassed - 1] ? passed_name[npassed - 1] : "");
		(void)close(passed[npassed - 1]);
		drop_passed(npassed - 1);
	}
	log_event(LOG_ALWAYS, NULL, 0, "ready", "routes=%zu version=%s",
	    c->nroutes, VERSION);
	notify = getenv("NOTIFY_SOCKET") != NULL;
	notify_status("READY=1");
	rc = serve(&c, sfd, level_cli);
	stats_set_config(NULL);
	config_free(c);
	if (stats_path != NULL)
		unix_unlink(stats_path, &stats_file);
	free(stats_path);
	log_event(LOG_INFO, NULL, 0, "exit", "status=%d", rc == 0 ? 0 : 1);
	return rc == 0 ? 0 : 1;
}
