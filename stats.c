/*
 * stats.c: live statistics on a local socket.
 *
 * Every route has counters of its own (struct stats_route, in its
 * struct route_live, so that they go on across reloads), which the
 * threads that do the work add to with atomic operations, never
 * waiting. A thread of its own answers the stats socket: every
 * connection gets one snapshot in the Prometheus text exposition format
 * (version 0.0.4) and is closed. A client that sends an HTTP request
 * (curl --unix-socket, Prometheus through a socket proxy) gets it as an
 * HTTP/1.0 answer; one that sends nothing gets the text alone (a
 * textfile collector, socat). tlsgate --stats prints it as a table.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tls.h"
#include "stats.h"

/* The histograms' bounds, in ms. */
static const unsigned bounds_ms[STATS_BUCKETS] = {
	1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
};

static const char *const refusal_names[REFUSE_COUNT] = {
	"verification", "allow_peers", "psk", "not_tls", "limits", "timeout",
	"connect", "handshake", "allow_from", "proxy", "other",
};

static pthread_mutex_t		 lock = PTHREAD_MUTEX_INITIALIZER;
static const struct config	*current;	/* under lock */
static time_t			 started = 0;
static time_t			 loaded_at;	/* under lock */
static int			 loaded_ok;
static unsigned			 generation;

void
stats_observe(struct stats_hist *h, int64_t us)
{
	size_t i;

	for (i = 0; i < STATS_BUCKETS && us > (int64_t)bounds_ms[i] * 1000;
	    i++)
		;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(us < 0 ? 0 : us),
	    memory_order_relaxed);
}

enum stats_refusal
stats_classify(const char *reason)
{
	static const struct {
		const char		*prefix;
		enum stats_refusal	 class;
	} classes[] = {
		{ "peer not in allow_peers", REFUSE_ALLOW_PEERS },
		{ "not in allow_from", REFUSE_ALLOW_FROM },
		{ "not in proxy_from", REFUSE_PROXY },
		{ "PROXY header", REFUSE_PROXY },
		{ "key not pinned", REFUSE_VERIFICATION },
		{ "psk identity", REFUSE_PSK },
		{ "not TLS", REFUSE_NOT_TLS },
		{ "certificate", REFUSE_VERIFICATION },
		{ "no client certificate", REFUSE_VERIFICATION },
		{ "no server certificate", REFUSE_VERIFICATION },
		{ "server sent alert: Certificate", REFUSE_VERIFICATION },
		{ "handshake timeout", REFUSE_TIMEOUT },
		{ "connect timeout", REFUSE_TIMEOUT },
		{ "idle timeout", REFUSE_TIMEOUT },
		{ "max_sessions", REFUSE_LIMITS },
		{ "Too many open files", REFUSE_LIMITS },
		{ "out of memory", REFUSE_LIMITS },
		{ "no thread", REFUSE_LIMITS },
		{ "Resource temporarily unavailable", REFUSE_LIMITS },
		{ "connect ", REFUSE_CONNECT },
		{ "resolve ", REFUSE_CONNECT },
		{ "handshake", REFUSE_HANDSHAKE },
	};
	size_t i;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(reason, classes[i].prefix,
		    strlen(classes[i].prefix)) == 0)
			return classes[i].class;
	if (strstr(reason, "Too many open files") != NULL)
		return REFUSE_LIMITS;
	return REFUSE_OTHER;
}

void
stats_loaded(int ok)
{
	pthread_mutex_lock(&lock);
	if (started == 0)
		started = time(NULL);	/* the first load is at start */
	loaded_at = time(NULL);
	loaded_ok = ok;
	if (ok)
		generation++;
	pthread_mutex_unlock(&lock);
}

void
stats_set_config(const struct config *c)
{
	pthread_mutex_lock(&lock);
	current = c;
	pthread_mutex_unlock(&lock);
}

/* --- the snapshot ------------------------------------------------------ */

static uint64_t
get(atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void
family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
histogram(FILE *out, const char *name, const char *route,
    struct stats_hist *h)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < STATS_BUCKETS; i++) {
		n += get(&h->bucket[i]);
		fprintf(out, "%s_bucket{route=\"%s\",le=\"%g\"} %llu\n", name,
		    route, bounds_ms[i] / 1000.0, (unsigned long long)n);
	}
	n += get(&h->bucket[STATS_BUCKETS]);
	fprintf(out, "%s_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name, route,
	    (unsigned long long)n);
	fprintf(out, "%s_sum{route=\"%s\"} %.6f\n", name, route,
	    get(&h->sum_us) / 1e6);
	fprintf(out, "%s_count{route=\"%s\"} %llu\n", name, route,
	    (unsigned long long)n);
}

/* A number from a /proc/self file: the value after key ("Threads:"). */
static long
proc_value(const char *file, const char *key)
{
	char line[256];
	long v = -1;
	FILE *fp;

	if ((fp = fopen(file, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, key, strlen(key)) == 0) {
			v = strtol(line + strlen(key), NULL, 10);
			break;
		}
	(void)fclose(fp);
	return v;
}

static long
open_fds(void)
{
	struct dirent *d;
	long n = 0;
	DIR *dir;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL)
		n += (d->d_name[0] != '.');
	(void)closedir(dir);
	return n - 1;		/* the directory's own descriptor */
}

/* The snapshot, into out. */
static void
render(FILE *out)
{
	const struct config *c;
	const struct route *r;
	struct stats_route *st;
	time_t exp, now = time(NULL);
	size_t i;
	int k;

	pthread_mutex_lock(&lock);
	c = current;
	family(out, "tlsgate_sessions_live", "gauge",
	    "Sessions open now, or being opened.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		fprintf(out, "tlsgate_sessions_live{route=\"%s\"} %u\n",
		    c->routes[i]->name, atomic_load(&c->routes[i]->live->n));
	family(out, "tlsgate_sessions_total", "counter",
	    "Connections accepted into a session.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		fprintf(out, "tlsgate_sessions_total{route=\"%s\"} %llu\n",
		    c->routes[i]->name, (unsigned long long)
		    get(&c->routes[i]->live->stats.sessions));
	family(out, "tlsgate_relayed_bytes_total", "counter",
	    "Plaintext bytes relayed: up from the accepted side to the "
	    "connected one, down the other way.");
	for (i = 0; c != NULL && i < c->nroutes; i++) {
		r = c->routes[i];
		st = &r->live->stats;
		fprintf(out, "tlsgate_relayed_bytes_total{route=\"%s\","
		    "direction=\"up\"} %llu\n", r->name,
		    (unsigned long long)get(&st->bytes_up));
		fprintf(out, "tlsgate_relayed_bytes_total{route=\"%s\","
		    "direction=\"down\"} %llu\n", r->name,
		    (unsigned long long)get(&st->bytes_down));
	}
	family(out, "tlsgate_handshakes_total", "counter",
	    "TLS handshakes, by result (a verification or allow_peers "
	    "refusal after a handshake counts as failed).");
	for (i = 0; c != NULL && i < c->nroutes; i++) {
		r = c->routes[i];
		if (r->tls == NULL)
			continue;
		st = &r->live->stats;
		fprintf(out, "tlsgate_handshakes_total{route=\"%s\","
		    "result=\"completed\"} %llu\n", r->name,
		    (unsigned long long)get(&st->handshakes));
		fprintf(out, "tlsgate_handshakes_total{route=\"%s\","
		    "result=\"failed\"} %llu\n", r->name,
		    (unsigned long long)get(&st->handshakes_failed));
	}
	family(out, "tlsgate_handshakes_resumed_total", "counter",
	    "Completed TLS handshakes that resumed a session.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		if (c->routes[i]->tls != NULL)
			fprintf(out, "tlsgate_handshakes_resumed_total{route="
			    "\"%s\"} %llu\n", c->routes[i]->name,
			    (unsigned long long)
			    get(&c->routes[i]->live->stats.resumed));
	family(out, "tlsgate_refusals_total", "counter",
	    "Sessions refused, by class of reason.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		for (k = 0; k < REFUSE_COUNT; k++)
			fprintf(out, "tlsgate_refusals_total{route=\"%s\","
			    "reason=\"%s\"} %llu\n", c->routes[i]->name,
			    refusal_names[k], (unsigned long long)
			    get(&c->routes[i]->live->stats.refused[k]));
	family(out, "tlsgate_probes_total", "counter",
	    "Connections that ended before sending a byte (port probes, "
	    "balancers' TCP checks): not refusals.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		fprintf(out, "tlsgate_probes_total{route=\"%s\"} %llu\n",
		    c->routes[i]->name, (unsigned long long)
		    get(&c->routes[i]->live->stats.probes));
	family(out, "tlsgate_handshake_duration_seconds", "histogram",
	    "Time from the start of a TLS handshake to its end, completed "
	    "or not.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		if (c->routes[i]->tls != NULL)
			histogram(out, "tlsgate_handshake_duration_seconds",
			    c->routes[i]->name,
			    &c->routes[i]->live->stats.handshake);
	family(out, "tlsgate_connect_duration_seconds", "histogram",
	    "Time to establish the outgoing TCP connection, name "
	    "resolution included, established or not.");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		histogram(out, "tlsgate_connect_duration_seconds",
		    c->routes[i]->name, &c->routes[i]->live->stats.connect);
	family(out, "tlsgate_certificate_expiry_seconds", "gauge",
	    "Seconds until the route's own certificate expires (negative: "
	    "expired).");
	for (i = 0; c != NULL && i < c->nroutes; i++)
		if (c->routes[i]->tls != NULL &&
		    (exp = tls_cert_expiry(c->routes[i]->tls)) != (time_t)-1)
			fprintf(out, "tlsgate_certificate_expiry_seconds{route="
			    "\"%s\"} %lld\n", c->routes[i]->name,
			    (long long)(exp - now));
	family(out, "tlsgate_config_generation", "gauge",
	    "Configurations loaded since start (1: the first).");
	fprintf(out, "tlsgate_config_generation %u\n", generation);
	family(out, "tlsgate_config_last_reload_timestamp_seconds", "gauge",
	    "When the configuration was last loaded or reloaded.");
	fprintf(out, "tlsgate_config_last_reload_timestamp_seconds %lld\n",
	    (long long)loaded_at);
	family(out, "tlsgate_config_last_reload_success", "gauge",
	    "Whether the last load or reload succeeded (1) or failed (0).");
	fprintf(out, "tlsgate_config_last_reload_success %d\n", loaded_ok);
	pthread_mutex_unlock(&lock);
	family(out, "tlsgate_threads", "gauge", "Threads of the process.");
	fprintf(out, "tlsgate_threads %ld\n", proc_value("/proc/self/status",
	    "Threads:"));
	family(out, "process_open_fds", "gauge", "Open file descriptors.");
	fprintf(out, "process_open_fds %ld\n", open_fds());
	family(out, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.");
	fprintf(out, "process_resident_memory_bytes %ld\n",
	    proc_value("/proc/self/status", "VmRSS:") * 1024);
	family(out, "process_start_time_seconds", "gauge",
	    "Start time of the process since the epoch, in seconds.");
	fprintf(out, "process_start_time_seconds %lld\n", (long long)started);
}

/* --- the socket -------------------------------------------------------- */

/* What the client asked for. */
enum { RAW, GET, HEAD, OTHER };

/*
 * The client's request, if any, read for 200 ms at most in all: RAW for
 * none (or no HTTP), GET, HEAD, or OTHER for another HTTP method.
 */
static int
http_request(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	int64_t end = mono_ms() + 200, left;
	char buf[4096], *eol;
	size_t len = 0;
	ssize_t n;

	buf[0] = '\0';
	while (len < sizeof(buf) - 1 && (left = end - mono_ms()) > 0 &&
	    poll(&pfd, 1, (int)left) == 1) {
		if ((n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL ||
		    strstr(buf, "\n\n") != NULL)
			break;
	}
	if (strncmp(buf, "GET ", 4) == 0)
		return GET;
	if (strncmp(buf, "HEAD ", 5) == 0)
		return HEAD;
	if ((eol = strchr(buf, '\n')) != NULL)
		*eol = '\0';
	return strstr(buf, " HTTP/") != NULL ? OTHER : RAW;
}

static void
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void
answer(int fd)
{
	static const char refuse[] = "HTTP/1.0 405 Method Not Allowed\r\n"
	    "Allow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n"
	    "\r\n";
	struct timeval tv = { 1, 0 };
	char *body = NULL, hdr[256];
	size_t len = 0;
	FILE *out;
	int req;

	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((req = http_request(fd)) == OTHER) {
		write_all(fd, refuse, sizeof(refuse) - 1);
		return;
	}
	if ((out = open_memstream(&body, &len)) == NULL)
		return;
	render(out);
	if (fclose(out) == EOF) {
		free(body);
		return;
	}
	if (req != RAW) {
		snprintf(hdr, sizeof(hdr), "HTTP/1.0 200 OK\r\nContent-Type: "
		    "text/plain; version=0.0.4; charset=utf-8\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n", len);
		write_all(fd, hdr, strlen(hdr));
	}
	if (req != HEAD)
		write_all(fd, body, len);
	free(body);
}

static void *
serve_main(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	struct timespec pause = { 0, 100 * 1000 * 1000 };

	(void)pthread_setname_np(pthread_self(), "tlsgate:stats");
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno != EINTR && errno != ECONNABORTED)
				(void)nanosleep(&pause, NULL);	/* EMFILE */
			continue;
		}
		answer(fd);
		(void)close(fd);
	}
	return NULL;
}

int
stats_serve(int fd)
{
	pthread_attr_t a;
	pthread_t tid;
	int rc;

	if (fcntl(fd, F_SETFL, 0) == -1)	/* its thread waits in accept */
		return -1;
	if ((rc = pthread_attr_init(&a)) != 0 ||
	    (rc = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED)) !=
	    0 || (rc = pthread_create(&tid, &a, serve_main,
	    (void *)(intptr_t)fd)) != 0) {
		errno = rc;
		return -1;
	}
	(void)pthread_attr_destroy(&a);
	return 0;
}

/* --- tlsgate --stats ---------------------------------------------------- */

/* One route's row of the table. */
struct row {
	char			 name[256];
	unsigned long long	 v[8];
};

enum { C_LIVE, C_TOTAL, C_UP, C_DOWN, C_HS, C_FAILED, C_RESUMED, C_REFUSED };

static struct row *
row_of(struct row **rows, size_t *n, const char *name)
{
	struct row *r;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*rows)[i].name, name) == 0)
			return &(*rows)[i];
	if ((r = realloc(*rows, (*n + 1) * sizeof(*r))) == NULL)
		return NULL;
	*rows = r;
	r = &r[(*n)++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	return r;
}

/* The value of label key in a metric line's labels, or "". */
static const char *
label(const char *line, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p, *e;

	buf[0] = '\0';
	snprintf(pat, sizeof(pat), "%s=\"", key);
	if ((p = strstr(line, pat)) == NULL)
		return buf;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL || (size_t)(e - p) >= len)
		return buf;
	memcpy(buf, p, (size_t)(e - p));
	buf[e - p] = '\0';
	return buf;
}

int
stats_print(const char *path)
{
	static const struct {
		const char	*metric;
		const char	*extra;		/* a label=value it needs */
		int		 col;
	} cols[] = {
		{ "tlsgate_sessions_live{", NULL, C_LIVE },
		{ "tlsgate_sessions_total{", NULL, C_TOTAL },
		{ "tlsgate_relayed_bytes_total{", "direction=\"up\"", C_UP },
		{ "tlsgate_relayed_bytes_total{", "direction=\"down\"", C_DOWN },
		{ "tlsgate_handshakes_total{", "result=\"completed\"", C_HS },
		{ "tlsgate_handshakes_total{", "result=\"failed\"", C_FAILED },
		{ "tlsgate_handshakes_resumed_total{", NULL, C_RESUMED },
		{ "tlsgate_refusals_total{", NULL, C_REFUSED },
	};
	struct sockaddr_un sun;
	struct row *rows = NULL, *r;
	char line[1024], name[256], eb[128], *rest = NULL;
	size_t n = 0, i, k, restlen = 0;
	const char *sp;
	FILE *in, *tail;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    shutdown(fd, SHUT_WR) == -1 || (in = fdopen(fd, "r")) == NULL) {
		fprintf(stderr, "tlsgate: stats socket %s: %s\n", path,
		    log_strerror(errno, eb, sizeof(eb)));
		if (fd != -1)
			(void)close(fd);
		return 1;
	}
	if ((tail = open_memstream(&rest, &restlen)) == NULL) {
		(void)fclose(in);
		return 1;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		if (line[0] == '#')
			continue;
		if (strchr(line, '{') == NULL) {	/* the process's */
			if ((sp = strchr(line, ' ')) != NULL)
				fprintf(tail, "%-44.*s%s", (int)(sp - line),
				    line, sp);
			continue;
		}
		for (k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
			if (strncmp(line, cols[k].metric,
			    strlen(cols[k].metric)) != 0 ||
			    (cols[k].extra != NULL &&
			    strstr(line, cols[k].extra) == NULL))
				continue;
			if ((sp = strrchr(line, ' ')) == NULL ||
			    (r = row_of(&rows, &n, label(line, "route", name,
			    sizeof(name)))) == NULL)
				break;
			r->v[cols[k].col] += strtoull(sp + 1, NULL, 10);
			break;
		}
	}
	(void)fclose(in);
	(void)fclose(tail);
	printf("%-16s %6s %9s %14s %14s %10s %7s %8s %8s\n", "route", "live",
	    "sessions", "bytes up", "bytes down", "handshakes", "failed",
	    "resumed", "refused");
	for (i = 0; i < n; i++)
		printf("%-16s %6llu %9llu %14llu %14llu %10llu %7llu %8llu "
		    "%8llu\n", rows[i].name, rows[i].v[C_LIVE],
		    rows[i].v[C_TOTAL], rows[i].v[C_UP], rows[i].v[C_DOWN],
		    rows[i].v[C_HS], rows[i].v[C_FAILED], rows[i].v[C_RESUMED],
		    rows[i].v[C_REFUSED]);
	printf("\n%s", rest != NULL ? rest : "");
	free(rest);
	free(rows);
	return 0;
}
