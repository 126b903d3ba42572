#!/bin/sh
# 20-sigterm: graceful shutdown.
#  1. shutdown_grace = 10: SIGTERM while a paced 1 MiB upload (4 s) is in
#     flight through wrap and unwrap. The gateway logs event=shutdown,
#     refuses new connections on both ports, lets the transfer finish (same
#     bytes, the server's answer arrives, both routes close with
#     reason=eof) and then exits 0, within the grace.
#  2. shutdown_grace = 1: SIGINT (which sh starts background jobs with
#     ignored: tlsgate must take it back) with an idle session open. After
#     about a second the session is closed with reason "shutdown", both of
#     its plaintext ends see a reset (not an end of stream), and the
#     gateway exits 0.
. "$TESTLIB"

ports A B C A2 B2 C2
{ printf '[gateway]\nshutdown_grace = 10\n\n'; demo_routes "$A" "$B" "$C"; } >routes1.ini
gw_start gw1 routes1.ini
gw1=$GW_PID

upload_start 1048576 262144 "$C" "$A"
kill -TERM "$gw1"
start=$(now_ms)
wait_log gw1.log 'event=shutdown' 5

# _refused PORT: a new connection to PORT is refused (polled for 3 s from
# the shutdown: the listeners close as it begins).
_refused() {
	"$HELPERS/halfclose" 127.0.0.1 "$1" "late" >/dev/null 2>late.err
	[ $? -eq 2 ] && grep -q 'refused' late.err
}
wait_for 3 "port $A to refuse connections" _refused "$A"
wait_for 3 "port $B to refuse connections" _refused "$B"
proc_alive "$UP_CLI" || fail "the transfer ended at SIGTERM: $(cat cli.err)"

upload_done "across the shutdown"
wait_exit "$gw1" 12
rc=$?
took=$(($(now_ms) - start))
expect_rc 0 "$rc" "tlsgate after SIGTERM"
[ "$took" -lt 10000 ] || fail "exited $took ms after SIGTERM, past the grace"
log_has gw1.log 'route=wrap .*event=close reason=eof up=1048576 down=24 '
log_has gw1.log 'route=unwrap .*event=close reason=eof up=1048576 down=24 '
note "transfer done and exit $took ms after SIGTERM"

# 2. The grace runs out.
{ printf '[gateway]\nshutdown_grace = 1\n\n'; demo_routes "$A2" "$B2" "$C2"; } >routes2.ini
gw_start gw2 routes2.ini
gw2=$GW_PID
bg srv2 "$HELPERS/xfer" -l -w 127.0.0.1 "$C2" /dev/null got2
srv2=$BG_PID
wait_port "$C2"
bg cli2 "$HELPERS/xfer" -p 60000 127.0.0.1 "$A2" /dev/null out2
_connected() {
	[ -n "$(ss -tnH state established "sport = :$C2" 2>/dev/null)" ]
}
wait_for 10 "the session to reach the server" _connected
kill -INT "$gw2"
start=$(now_ms)
wait_exit "$gw2" 8
rc=$?
took=$(($(now_ms) - start))
expect_rc 0 "$rc" "tlsgate after SIGINT with a session past the grace"
[ "$took" -ge 900 ] || fail "exited $took ms after SIGINT, before the grace"
log_has gw2.log 'event=shutdown'
# Both sessions of the chain end; the one the shutdown reaches first says
# so (the other may see its peer go first).
log_has gw2.log 'route=wrap .*event=close reason='
log_has gw2.log 'route=unwrap .*event=close reason='
log_has gw2.log 'route=(un)?wrap .*event=close reason=shutdown'
wait_log cli2.err 'xfer: received' 5
grep -q 'received 0 bytes, reset' cli2.err ||
    fail "the client saw no reset: $(cat cli2.err)"
wait_for 5 "the server to see its connection end" _gone "$srv2"
grep -q 'received 0 bytes, reset' srv2.err ||
    fail "the server saw no reset: $(cat srv2.err)"
note "exit $took ms after SIGINT with grace 1 s"
