#!/bin/sh
# 45-sockopts: every socket of a session, accepted or connected, gets
# TCP_NODELAY (a record held back by Nagle costs a delayed ACK, ~40 ms,
# per session) and SO_KEEPALIVE. Checked with strace on the demo chain.
. "$TESTLIB"

command -v strace >/dev/null || skip "strace is not installed"
[ -z "$(sanitizer)" ] || skip "not under a sanitizer"
ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
bg srv "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"
GW_PREFIX="strace -f -qq -e trace=accept4,connect,setsockopt -o trace.out --" \
    gw_start gw routes.ini
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
# The descriptors accept4() returned and connect()ed, and those that got
# TCP_NODELAY and SO_KEEPALIVE.
sed -n 's/.*accept4(.*= \([0-9][0-9]*\)$/\1/p' trace.out | sort -u >accepted
sed -n 's/.*connect(\([0-9][0-9]*\), {sa_family=AF_INET.*/\1/p' trace.out |
    sort -u >connected
sed -n 's/.*setsockopt(\([0-9][0-9]*\), SOL_TCP, TCP_NODELAY, \[1\].*/\1/p' \
    trace.out | sort -u >nodelay
sed -n 's/.*setsockopt(\([0-9][0-9]*\), SOL_SOCKET, SO_KEEPALIVE, \[1\].*/\1/p' \
    trace.out | sort -u >keepalive
[ "$(wc -l <accepted)" -ge 2 ] || fail "expected 2 accepted sockets: $(cat accepted)"
[ "$(wc -l <connected)" -ge 2 ] || fail "expected 2 connected sockets: $(cat connected)"
for fd in $(cat accepted connected); do
	grep -qx "$fd" nodelay || fail "socket $fd got no TCP_NODELAY"
	grep -qx "$fd" keepalive || fail "socket $fd got no SO_KEEPALIVE"
done
