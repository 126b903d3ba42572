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

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "log.h"
#include "relay.h"
#include "tls.h"

#define VERSION		"0.1.0"
#define MAX_LISTENERS	1024
#define ACCEPT_BURST	64	/* accepts per listener per wakeup */

struct listener {
	int		 fd;
	struct route	*route;		/* the config's reference */
};

static struct listener	 listeners[MAX_LISTENERS];
static size_t		 nlisteners;

/* Sockets passed by systemd (LISTEN_FDS), not yet given to a route. */
static int		 passed[MAX_LISTENERS];
static size_t		 npassed;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: tlsgate [-c FILE] [-t] [-l LEVEL] [-V] [-h]\n"
	    "  -c, --config FILE    routes file (default: ./routes.ini)\n"
	    "  -t, --check          load and validate FILE, its certificates, "
	    "keys and\n"
	    "                       priority strings, print one line per "
	    "route, exit\n"
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

/* What is loaded but weak: said at start-up and at each reload. */
static void
warn_weak(const struct config *c)
{
	size_t i;

	for (i = 0; i < c->nroutes; i++)
		if (c->routes[i]->connect.scheme == SCHEME_TLS &&
		    c->routes[i]->verify == VERIFY_NONE &&
		    c->routes[i]->psk_file == NULL)
			log_event(LOG_WARN, c->routes[i]->name, 0, "config",
			    "reason=\"verify = none: the server's "
			    "certificate is not checked\"");
}

static void
print_routes(const struct config *c)
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
	}
}

/*
 * Socket activation, the plain sd_listen_fds protocol: LISTEN_PID names
 * us and LISTEN_FDS counts the sockets from fd 3 on.
 */
static void
take_passed_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	char *end;
	long v;
	int fd;

	if (pid == NULL || n == NULL)
		return;
	errno = 0;
	v = strtol(pid, &end, 10);
	if (errno != 0 || *end != '\0' || v != (long)getpid())
		return;
	v = strtol(n, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > MAX_LISTENERS)
		return;
	for (fd = 3; fd < 3 + v; fd++) {
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
			continue;
		passed[npassed++] = fd;
	}
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
}

/* A passed socket bound to a's address, or -1. */
static int
take_passed(const struct addr *a)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;
	int fd = -1, flags;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if (npassed == 0 || getaddrinfo(a->host, a->port, &hints, &ai) != 0)
		return -1;
	for (i = 0; i < npassed; i++) {
		len = sizeof(ss);
		if (getsockname(passed[i], (struct sockaddr *)&ss, &len) == -1 ||
		    len != ai->ai_addrlen || memcmp(&ss, ai->ai_addr, len) != 0)
			continue;
		fd = passed[i];
		passed[i] = passed[--npassed];
		if ((flags = fcntl(fd, F_GETFL)) != -1)
			(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		break;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Bind and listen on a route's accept address; -1 with why set. */
static int
listen_on(const struct addr *a, char *why, size_t whylen)
{
	struct addrinfo hints, *ai = NULL;
	char eb[128];
	int fd = -1, one = 1, v6only, rc;

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
	/* [::] means every address, IPv4 too; any other IPv6 only itself. */
	v6only = strcmp(a->host, "::") != 0;
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
		next[i].fd = -1;
		for (j = 0; j < nlisteners; j++)
			if (listeners[j].fd != -1 &&
			    same_addr(&listeners[j].route->accept, &r->accept))
				next[i].fd = listeners[j].fd;
		if (next[i].fd != -1)
			continue;
		if ((next[i].fd = take_passed(&r->accept)) != -1) {
			log_event(LOG_INFO, r->name, 0, "listen", "addr=%s "
			    "from=systemd", r->accept.text);
			continue;
		}
		if ((next[i].fd = listen_on(&r->accept, why, sizeof(why))) ==
		    -1) {
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
		if (!kept && close(listeners[j].fd) == -1)
			log_event(LOG_WARN, NULL, 0, "listen", "reason=close");
	}
	memcpy(listeners, next, c->nroutes * sizeof(next[0]));
	nlisteners = c->nroutes;
	return 0;
undo:
	while (i-- > 0) {
		for (kept = 0, j = 0; j < nlisteners; j++)
			kept |= (next[i].fd == listeners[j].fd);
		if (!kept)
			(void)close(next[i].fd);
	}
	return -1;
}

static void
close_listeners(void)
{
	size_t i;

	for (i = 0; i < nlisteners; i++)
		(void)close(listeners[i].fd);
	nlisteners = 0;
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
	return 0;
}

/* Load path again; on success the new routes serve new sessions. */
static void
reload(struct config **cur, int log_level_cli)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;

	if ((c = config_load((*cur)->path, &errs)) == NULL) {
		log_errors(&errs);
		log_event(LOG_ERROR, NULL, 0, "reload", "result=failed "
		    "reason=\"configuration error; the old one stays\"");
		return;
	}
	warn_weak(c);
	config_inherit(c, *cur);
	if (apply_listeners(c) == -1) {
		config_free(c);
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
	config_free(*cur);	/* live sessions keep their routes */
	*cur = c;
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

	close_listeners();
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
	size_t i;
	long tidy;
	int sig, paused = 0, rc;

	for (;;) {
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < nlisteners; i++) {
			pfd[i + 1].fd = paused ? -1 : listeners[i].fd;
			pfd[i + 1].events = POLLIN;
		}
		tidy = relay_tidy();
		rc = poll(pfd, nlisteners + 1, paused && (tidy == -1 ||
		    tidy > 100) ? 100 : (int)tidy);
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
		{ NULL, 0, NULL, 0 },
	};
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	const char *path = "routes.ini";
	enum log_level level = LOG_INFO;
	int ch, check = 0, level_cli = 0, sfd, rc;
	sigset_t set;
	char eb[128];

	while ((ch = getopt_long(argc, argv, "c:tl:Vh", opts, NULL)) != -1) {
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
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
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
	warn_weak(c);
	if (check) {
		print_routes(c);
		config_free(c);
		return 0;
	}
	if (!level_cli)
		log_set_level(c->log_level);
	relay_set_max_sessions(c->max_sessions);
	if (relay_init() == -1) {
		log_event(LOG_ERROR, NULL, 0, "exit", "reason=\"threads: %s\"",
		    log_strerror(errno, eb, sizeof(eb)));
		return 1;
	}
	take_passed_fds();
	if (apply_listeners(c) == -1 || drop_privileges(c) == -1) {
		config_free(c);
		return 1;
	}
	while (npassed > 0) {		/* no route wants them */
		log_event(LOG_WARN, NULL, 0, "listen", "reason=\"passed "
		    "socket (fd %d) matches no route; closed\"",
		    passed[npassed - 1]);
		(void)close(passed[--npassed]);
	}
	log_event(LOG_ALWAYS, NULL, 0, "ready", "routes=%zu version=%s",
	    c->nroutes, VERSION);
	rc = serve(&c, sfd, level_cli);
	config_free(c);
	log_event(LOG_INFO, NULL, 0, "exit", "status=%d", rc == 0 ? 0 : 1);
	return rc == 0 ? 0 : 1;
}
