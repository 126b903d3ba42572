#!/bin/sh
# 29-reset: a reset on one plaintext side, mid-session, reaches the other
# plaintext side as a reset through wrap and unwrap (the TLS stream between
# them ends without close_notify, which the far gateway turns back into a
# reset), never as a clean end.
#  1. the plaintext server resets (SO_LINGER 0) after reading the request:
#     the client's read fails with ECONNRESET;
#  2. the plaintext client resets: the server's read fails with
#     ECONNRESET.
# Neither session closes with reason=eof.
. "$TESTLIB"

ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
gw_start gw routes.ini
echo "request before the reset" >request

# 1. The server resets. Its input is a fifo: it sends (nothing) and resets
# when the test closes the fifo.
mkfifo srv1.in
bg srv1 "$HELPERS/xfer" -l -A 127.0.0.1 "$C" srv1.in got1
srv1=$BG_PID
exec 5>srv1.in
wait_port "$C"
bg cli1 "$HELPERS/xfer" 127.0.0.1 "$A" request out1
cli1=$BG_PID
wait_log got1 '^request before the reset$'
exec 5>&-
wait_exit "$srv1" 10 || fail "server: $(cat srv1.err)"
wait_exit "$cli1" 10
expect_rc 3 $? "client after the server's reset ($(cat cli1.err))"
wait_count gw.log 'route=wrap .*event=close' 1
wait_count gw.log 'route=unwrap .*event=close' 1

# 2. The client resets once the whole chain is up.
bg srv2 "$HELPERS/xfer" -l -w 127.0.0.1 "$C" /dev/null got2
srv2=$BG_PID
wait_port "$C"
mkfifo cli2.in
bg cli2 "$HELPERS/xfer" -A 127.0.0.1 "$A" cli2.in out2
exec 6>cli2.in
_connected() {
	[ -n "$(ss -tnH state established "sport = :$C" 2>/dev/null)" ]
}
wait_for 10 "the session to reach the server" _connected
cat request >&6
exec 6>&-
wait_exit "$srv2" 10
expect_rc 3 $? "server after the client's reset ($(cat srv2.err))"
wait_count gw.log 'route=wrap .*event=close' 2
wait_count gw.log 'route=unwrap .*event=close' 2
log_lacks gw.log 'event=close reason=eof'

# The reasons: the side that saw the reset says so; the other gateway says
# its TLS stream was cut (truncated, or reset when the first one resets
# its TLS connection).
# closes ROUTE N ERE: the route's Nth close has a reason matching ERE
closes() {
	_l=$(grep -E "route=$1 .*event=close" gw.log | sed -n "$2p")
	echo "$_l" | grep -Eqi "reason=.*($3)" ||
	    fail "$1, session $2: expected a reason /$3/: $_l"
}
closes unwrap 1 'reset'
closes wrap 1 'truncat|reset'
closes wrap 2 'reset'
closes unwrap 2 'truncat|reset'
