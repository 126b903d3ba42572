#!/bin/sh
# 45-sockopts: every socket of a session, accepted or connected, has
# TCP_NODELAY (a record held back by Nagle costs a delayed ACK, ~40 ms,
# per session) and SO_KEEPALIVE. Checked with strace on the demo chain:
# connected sockets get both with setsockopt; accepted ones have them from
# their listening socket, which gets both (Linux copies a listener's
# options to the sockets it accepts); and with ss, which shows the
# keepalive timer of every established socket of an open session.
. "$TESTLIB"

command -v strace >/dev/null || skip "strace is not installed"
[ -z "$(sanitizer)" ] || skip "not under a sanitizer"
ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
bg srv "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"
GW_PREFIX="strace -f -qq -e trace=listen,accept4,connect,setsockopt -o trace.out --" \
    gw_start gw routes.ini
# An open session: its four sockets in the gateway all keep alive.
bg cli "$HELPERS/xfer" -p 60000 127.0.0.1 "$A" /dev/null out
# The gateway's ends: local port A, local port B, remote port B (wrap's
# outgoing), remote port C. ss shows one timer a socket: keepalive once
# nothing is left to retransmit.
_keepalive() {
	ss -tnoH state established "( sport = :$A or sport = :$B or dport = :$B or dport = :$C )" \
	    >ss.out 2>/dev/null
	[ "$(grep -c 'timer:(keepalive' ss.out)" -ge 4 ]
}
poll_for 10 _keepalive ||
    fail "not every socket of the session keeps alive: $(cat ss.out)"
stop "$(pid_of cli)"
got=$("$HELPERS/halfclose" 127.0.0.1 "$A" ping 2>cli.err) ||
    fail "no session: $(cat cli.err)"
[ "$got" = ping ] || fail "echo: got '$got'"
wait_count gw.log 'event=close reason=eof' 2
# Stop tlsgate itself (strace's child); strace ends with it.
child=$(cat /proc/"$GW_PID"/task/*/children 2>/dev/null | tr -s ' ' '\n' |
    head -n 1)
[ -n "$child" ] || fail "no tlsgate under strace"
kill -TERM "$child"
wait_exit "$GW_PID" 15 || fail "tlsgate under strace: exit status $?"
# The listening descriptors and those connect()ed, and those that got
# TCP_NODELAY and SO_KEEPALIVE.
sed -n 's/.*listen(\([0-9][0-9]*\), .*/\1/p' trace.out | sort -u >listening
sed -n 's/.*connect(\([0-9][0-9]*\), {sa_family=AF_INET.*/\1/p' trace.out |
    sort -u >connected
sed -n 's/.*setsockopt(\([0-9][0-9]*\), SOL_TCP, TCP_NODELAY, \[1\].*/\1/p' \
    trace.out | sort -u >nodelay
sed -n 's/.*setsockopt(\([0-9][0-9]*\), SOL_SOCKET, SO_KEEPALIVE, \[1\].*/\1/p' \
    trace.out | sort -u >keepalive
[ "$(wc -l <listening)" -ge 2 ] || fail "expected 2 listening sockets: $(cat listening)"
[ "$(wc -l <connected)" -ge 2 ] || fail "expected 2 connected sockets: $(cat connected)"
for fd in $(cat listening connected); do
	grep -qx "$fd" nodelay || fail "socket $fd got no TCP_NODELAY"
	grep -qx "$fd" keepalive || fail "socket $fd got no SO_KEEPALIVE"
done
