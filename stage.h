#ifndef STAGE_H
#define STAGE_H

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "pp.h"

struct route;
struct tls_rbuf;
struct stage_state;

/*
 * A session being opened: part of relay.c's session, lent to the stage
 * from stage_open() until the stage calls done().
 */
struct stage_conn {
	/* Set by the caller. */
	const struct route	*route;
	uint64_t		 id;		/* the session's, for the log */
	int			 cli;		/* the accepted socket */
	struct tls_rbuf		*rbuf;		/* for the one TLS end */
	void			(*done)(struct stage_conn *, const char *why);
	const char		*peer;		/* the accepted one, as logged */
	union pp_addr		 src;		/* the client (AF_UNSPEC: unix) */
	int			 logged_open;	/* event=open is out */
	union pp_addr		 dst;		/* with accept_proxy, the
						   header's (src too) */
	/*
	 * Set by the stage, valid in done() whether the opening succeeded
	 * (why is NULL) or not: what it opened, for the caller to use and
	 * close. On success both sockets are blocking again.
	 */
	int			 srv;		/* the outgoing socket, or -1 */
	gnutls_session_t	 cli_tls, srv_tls;	/* or NULL */
	int			 cli_alerted;	/* refused in its handshake, */
	int			 srv_alerted;	/* and told why */
	int			 starved;	/* failed for want of descriptors */
	int			 probe;		/* ended before a byte: a probe */
	/* The stage's own. */
	struct stage_state	*st;
};

/*
 * Start the stage: n threads (0: one per CPU). Outgoing sockets are made
 * with new_socket (socket(2)'s arguments and result).
 */
int stage_init(unsigned n, int (*new_socket)(int, int, int));

/*
 * Open c's session in its route's order, on a thread of the stage, and
 * call c->done() there once it is open or has failed. Never blocks.
 */
void stage_open(struct stage_conn *c);

/*
 * The end of the shutdown grace: every session still opening fails with
 * the reason "shutdown", now, and so does any opened after.
 */
void stage_stop(void);

#endif
