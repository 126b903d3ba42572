#!/bin/sh
# 33-log-level: log_level and -l.
#  - -l debug overrides the file's log_level = warn: sessions log their
#    info events;
#  - log_level = warn: a served session logs nothing, a refused one its
#    warn reject; event=ready is still printed (scripts wait for it);
#  - -l error: no session events at all, not even the reject.
. "$TESTLIB"

ports A B C
{ printf '[gateway]\nlog_level = warn\n\n'; demo_routes "$A" "$B" "$C"; } >routes.ini
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

# start NAME ARGS...: tlsgate with stderr in NAME.log, ready once both its
# ports listen (whether it says event=ready at these levels is checked
# separately)
start() {
	_n=$1
	shift
	"$TLSGATE" -c routes.ini "$@" >"$_n.out" 2>"$_n.log" </dev/null &
	track $!
	echo $! >"$_n.pid"
	wait_port "$A"
	wait_port "$B"
}

# session: one echoed line through wrap and unwrap, then a client without
# a certificate, refused by unwrap.
session() {
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "ping" 2>cli.err) ||
	    fail "client: $(cat cli.err)"
	[ "$got" = ping ] || fail "client got '$got'"
	echo | timeout 10 gnutls-cli --logfile=gnutls-cli.err -p "$B" \
	    --x509cafile "$CERTS/ca.pem" localhost >/dev/null 2>&1
}

gw_start debug routes.ini -l debug
session
wait_count debug.log 'route=(un)?wrap .*event=close' 3
gw_stop debug
expect_rc 0 $? "tlsgate -l debug after SIGTERM"
log_has debug.log ' info route=wrap .*event=open'
log_has debug.log ' info route=unwrap .*event=close reason=eof'
log_has debug.log ' warn route=unwrap .*event=reject'

start warn
session
wait_log warn.log '^[^ ]+ warn route=unwrap .*event=reject'
gw_stop warn
expect_rc 0 $? "tlsgate at log_level = warn after SIGTERM"
log_lacks warn.log ' info route='

start error -l error
session
gw_stop error
expect_rc 0 $? "tlsgate -l error after SIGTERM"
log_lacks error.log ' (warn|info|debug) route='

log_has warn.log 'event=ready' \
    "no event=ready at log_level = warn: scripts cannot wait for it"
