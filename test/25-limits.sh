#!/bin/sh
# 25-limits: max_sessions, on a route and for the whole gateway, on
# tcp->tcp forward routes to an echo server (which also shows plaintext
# forwarding at work: bytes echo back, no TLS event).
#  - route [one] has max_sessions = 1: with one session open, the next
#    connection is closed at once, without data, and logged as a reject
#    naming max_sessions; once the first session ends, a new one is served.
#  - [gateway] max_sessions = 3: with three sessions open over two routes,
#    a connection to either route is refused the same way.
. "$TESTLIB"

ports L M G
cat >routes.ini <<EOF
[gateway]
max_sessions = 3

[one]
accept = tcp://127.0.0.1:$L
connect = tcp://127.0.0.1:$G
max_sessions = 1

[many]
accept = tcp://127.0.0.1:$M
connect = tcp://127.0.0.1:$G
EOF
gw_start gw routes.ini
bg echo "$HELPERS/sink" -e 127.0.0.1 "$G"
wait_port "$G"

echoes() {	# echoes PORT TEXT: a client of PORT gets TEXT back
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "$2" 2>echo-client.err) ||
	    fail "client of port $1: $(cat echo-client.err)"
	[ "$got" = "$2" ] || fail "client of port $1 got '$got', not '$2'"
}

# hold NAME PORT: a session that stays open (idle) until killed
hold() {
	accepts=$(count_lines echo.err 'sink: accept')
	bg "$1" "$HELPERS/xfer" -p 60000 127.0.0.1 "$2" /dev/null "$1.got"
	wait_count echo.err 'sink: accept' $((accepts + 1))
}

# refused PORT WHAT: a connection to PORT is closed at once, without data,
# and the gateway logs a reject naming max_sessions
refused() {
	rejects=$(count_lines gw.log 'event=reject .*max_sessions')
	timeout 5 "$HELPERS/halfclose" 127.0.0.1 "$1" "over the limit" \
	    >over.out 2>over.err
	rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "$2: client exit $rc: $(cat over.err)"
	[ ! -s over.out ] || fail "$2: the refused client got data: $(cat over.out)"
	wait_count gw.log '^[^ ]+ warn .*event=reject .*max_sessions' $((rejects + 1)) 5
}

echoes "$M" "plain forwarding"
log_lacks gw.log 'event=tls'
log_has gw.log 'route=many .*event=close reason=eof up=16 down=16 '

hold h1 "$L"
refused "$L" "route limit"
log_has gw.log 'route=one .*event=reject .*max_sessions'
echoes "$M" "the other route is not limited by it"

hold h2 "$M"
hold h3 "$M"
refused "$M" "gateway limit"
log_has gw.log 'route=many .*event=reject .*max_sessions'

kill "$(pid_of h1)"
wait_count gw.log 'route=one .*event=close' 1
echoes "$L" "served again"
[ "$(count_lines echo.err 'sink: accept')" -eq 6 ] ||
    fail "the server saw $(count_lines echo.err 'sink: accept') connections, expected 6"
