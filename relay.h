#ifndef RELAY_H
#define RELAY_H

#include <sys/socket.h>

struct route;

/* Set up thread attributes; call once before the first session. */
int relay_init(void);

/*
 * Make the calling thread one whose wake-ups do not preempt the thread
 * running on its CPU (SCHED_BATCH, same priority): it runs when that
 * thread blocks or its time slice ends. The copy threads and the accept
 * loop are such threads (and the stats server's, which the accept loop
 * starts); the stage's are not. Every new session wakes two copy
 * threads, and with preemption each wake-up cost a context switch of the
 * thread that made it (here, in a virtual machine, the dearest part of a
 * resumed session): without it the waker finishes its work first. No
 * privilege is needed, and a failure changes nothing.
 */
void relay_no_preempt(void);

/* The global session limit (from [gateway] max_sessions); the accept
   loop's thread only. */
void relay_set_max_sessions(unsigned n);

/*
 * Set up the listening socket fd of route r: the sockets it accepts
 * start with what it has (Linux copies a listener's options to them),
 * so every session's client socket gets TCP_NODELAY, SO_KEEPALIVE and
 * the route's idle timeout with no system call of its own. Call again
 * for a socket kept across a reload.
 */
int relay_listener(int fd, const struct route *r);

/*
 * Start a session for the connection fd accepted on route r. Takes
 * ownership of fd in every case, and a reference to r while the session
 * lives. Returns -1 when the session was refused (limits, no thread); the
 * refusal is already logged.
 */
int relay_start(int fd, struct route *r, const struct sockaddr *peer,
    socklen_t peerlen);

/*
 * Out of descriptors (err): accept the connection waiting on the
 * listening socket lfd with a descriptor kept in reserve, and refuse it
 * at once with a reset rather than leave it queued unanswered. Logged at
 * most once a second with the other resource refusals. Returns -1 when
 * no connection could be taken (the caller pauses accepting).
 */
int relay_refuse_waiting(int lfd, const struct route *r, int err);

/*
 * Housekeeping for the accept loop (its thread only): once the process
 * has been quiet for a while after sessions, give the memory they left
 * free back to the system. Returns how many ms until it should be called
 * again, or -1 when there is nothing to do until the next session.
 */
long relay_tidy(void);

/* Live sessions. */
unsigned relay_count(void);

/* Wait until no session is live, for at most ms milliseconds. Returns
   the number still live. */
unsigned relay_wait(long ms);

/* Close every live session now (reason "shutdown"). */
void relay_shutdown_all(void);

#endif
