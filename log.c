/*
 * log.c: one line per event on stderr, each written with one write(2) so
 * that lines from concurrent sessions never interleave.
 */
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int log_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, level);
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

void
log_event(enum log_level level, const char *route, uint64_t id,
    const char *event, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n, cap = sizeof(line);
	ssize_t w;
	va_list ap;
	int r;

	if (!log_enabled(level))
		return;
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, cap - n, ".%03ldZ %s", ts.tv_nsec / 1000000,
	    level_names[level == LOG_ALWAYS ? LOG_INFO : level]);
	n += (r > 0) ? (size_t)r : 0;
	if (route != NULL && n < cap) {
		r = snprintf(line + n, cap - n, " route=%s", route);
		n += (r > 0) ? (size_t)r : 0;
	}
	if (id != 0 && n < cap) {
		r = snprintf(line + n, cap - n, " session=%" PRIu64, id);
		n += (r > 0) ? (size_t)r : 0;
	}
	if (n < cap) {
		r = snprintf(line + n, cap - n, " event=%s", event);
		n += (r > 0) ? (size_t)r : 0;
	}
	if (fmt != NULL && fmt[0] != '\0' && n + 1 < cap) {
		line[n++] = ' ';
		va_start(ap, fmt);
		r = vsnprintf(line + n, cap - n, fmt, ap);
		va_end(ap);
		n += (r > 0) ? (size_t)r : 0;
	}
	/*
	 * Cut: snprintf() stopped at the end of line with a NUL, whose
	 * place the newline takes.
	 */
	if (n >= cap)
		n = cap - 1;
	line[n++] = '\n';
	do {
		w = write(STDERR_FILENO, line, n);
	} while (w == -1 && errno == EINTR);
}

const char *
log_quote(const char *s, char *buf, size_t len)
{
	const unsigned char *p;
	size_t n = 0;
	int bare = (s[0] != '\0');

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    *p >= 0x7f)
			bare = 0;
	if (bare) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	if (len < 3) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	buf[n++] = '"';
	for (p = (const unsigned char *)s; *p != '\0' && n + 5 < len; p++) {
		if (*p == '"' || *p == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)*p;
		} else if (*p < ' ' || *p >= 0x7f) {
			n += (size_t)snprintf(buf + n, len - n, "\\x%02x", *p);
		} else {
			buf[n++] = (char)*p;
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

const char *
log_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	const void *a;
	unsigned port;

	if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)sa;

		if (un->sun_path[0] != '\0')
			snprintf(buf, len, "unix:%.108s", un->sun_path);
		else if (un->sun_path[1] != '\0')
			snprintf(buf, len, "unix:@%.107s", un->sun_path + 1);
		else
			snprintf(buf, len, "unix");
		return buf;
	}
	if (sa->sa_family == AF_INET6) {
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_port);
	} else {
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)(const void *)sa)->
		    sin_port);
	}
	if (inet_ntop(sa->sa_family, a, host, sizeof(host)) == NULL)
		snprintf(host, sizeof(host), "?");
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	    host, port);
	return buf;
}

const char *
log_strerror(int errnum, char *buf, size_t len)
{
	/* _GNU_SOURCE: the GNU strerror_r, which may return a static string. */
	return strerror_r(errnum, buf, len);
}

int64_t
mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mono_ms(void)
{
	return mono_us() / 1000;
}
