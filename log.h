#ifndef LOG_H
#define LOG_H

#include <stdint.h>

/* LOG_ALWAYS: printed (as info) whatever the level, for event=ready. */
enum log_level { LOG_ALWAYS = -1, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Lines below this level are dropped; set before threads start, or by
   reload (an atomic store). */
void log_set_level(enum log_level level);
int log_level_parse(const char *s, enum log_level *out);

/* Would a line at this level be written? To skip costly details. */
int log_enabled(enum log_level level);

/*
 * One line on stderr, written with a single write(2):
 *   TIME LEVEL [route=R] [session=N] event=E DETAILS
 * route may be NULL and id 0 to leave them out. DETAILS is key=value
 * text built by the caller; use log_quote() for values from the peer.
 */
void log_event(enum log_level level, const char *route, uint64_t id,
    const char *event, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Copy s into buf as a log value: bare if it is a plain word, else in
   double quotes with '"', '\\' and control characters escaped. */
const char *log_quote(const char *s, char *buf, size_t len);

/* An address as logged: "127.0.0.1:5003", "[::1]:5003", "unix:/path";
   a unix socket's must be zeroed past what it holds. */
struct sockaddr;
const char *log_sockaddr(const struct sockaddr *sa, char *buf, size_t len);

/* CLOCK_MONOTONIC in microseconds and in milliseconds, for timers. */
int64_t mono_us(void);
int64_t mono_ms(void);

/* Thread-safe strerror. */
const char *log_strerror(int errnum, char *buf, size_t len);

#endif
