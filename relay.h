#ifndef RELAY_H
#define RELAY_H

#include <sys/socket.h>

struct route;

/* Set up thread attributes; call once before the first session. */
int relay_init(void);

/* The global session limit (from [gateway] max_sessions). */
void relay_set_max_sessions(unsigned n);

/*
 * Start a session for the connection fd accepted on route r. Takes
 * ownership of fd in every case, and a reference to r while the session
 * lives. Returns -1 when the session was refused (limits, no thread); the
 * refusal is already logged.
 */
int relay_start(int fd, struct route *r, const struct sockaddr *peer,
    socklen_t peerlen);

/*
 * Refuse a connection for want of resources: close fd with a reset, and
 * log it (at most one line a second for all such refusals).
 */
void relay_refuse(int fd, const struct route *r, const struct sockaddr *peer,
    const char *why);

/* Live sessions. */
unsigned relay_count(void);

/* Wait until no session is live, for at most ms milliseconds. Returns
   the number still live. */
unsigned relay_wait(long ms);

/* Close every live session now (reason "shutdown"). */
void relay_shutdown_all(void);

#endif
