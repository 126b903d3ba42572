#!/bin/sh
# 19-idle-timeout: idle_timeout = 2 closes sessions with no data in either
# direction, and only those. Three sessions at the same time:
#  1. idle through a wrap route with idle_timeout = 2 (its unwrap: 0, never):
#     the wrap session closes with reason "idle timeout" after 2 s (not
#     before), the client and the server both see their connection end;
#  2. the same with the timeout on the unwrap side;
#  3. data flows one way only, 12000 bytes at 4000 bytes/s (3 s, past the
#     2 s timeout on both routes), then the server answers: nothing is
#     cut, both routes close with reason=eof.
. "$TESTLIB"

ports A1 B1 C1 A2 B2 C2 A3 B3 C3
# pair N A B C WRAP_IDLE UNWRAP_IDLE: routes wrapN (tcp A -> tls B) and
# unwrapN (tls B -> tcp C) with those idle timeouts
pair() {
	cat <<EOF
[wrap$1]
accept = tcp://127.0.0.1:$2
$(tls_connect "$3")
idle_timeout = $5

[unwrap$1]
$(tls_accept "$3")
connect = tcp://127.0.0.1:$4
idle_timeout = $6

EOF
}
{
	pair 1 "$A1" "$B1" "$C1" 2 0
	pair 2 "$A2" "$B2" "$C2" 0 2
	pair 3 "$A3" "$B3" "$C3" 2 2
} >routes.ini
gw_start gw routes.ini

head -c 12000 /dev/urandom >slow.bin
echo "answer" >answer
bg srv1 "$HELPERS/xfer" -l -w 127.0.0.1 "$C1" /dev/null got1
srv1=$BG_PID
bg srv2 "$HELPERS/xfer" -l -w 127.0.0.1 "$C2" /dev/null got2
srv2=$BG_PID
bg srv3 "$HELPERS/xfer" -l -w 127.0.0.1 "$C3" answer got3
srv3=$BG_PID
wait_port "$C1"
wait_port "$C2"
wait_port "$C3"

bg cli1 "$HELPERS/xfer" -p 60000 127.0.0.1 "$A1" /dev/null out1
bg cli2 "$HELPERS/xfer" -p 60000 127.0.0.1 "$A2" /dev/null out2
bg cli3 "$HELPERS/xfer" -r 4000 127.0.0.1 "$A3" slow.bin out3
cli3=$BG_PID

# idle_closed N ROUTE SERVER_PID: session N was closed by ROUTE's idle
# timeout after about 2 s (the close line's ms=), and both its ends saw it.
idle_closed() {
	wait_log gw.log "route=$2 .*event=close" 8
	line=$(grep -E "route=$2 .*event=close" gw.log)
	echo "$line" | grep -q 'reason="idle timeout"' ||
	    fail "$2: expected reason \"idle timeout\": $line"
	ms=$(echo "$line" | sed -n 's/.* ms=\([0-9]*\).*/\1/p')
	if [ "${ms:-0}" -lt 1900 ] || [ "$ms" -ge 5000 ]; then
		fail "$2: idle timeout after ${ms:-?} ms, expected 2000: $line"
	fi
	note "$line"
	wait_log "cli$1.err" 'xfer: received' 5
	# The server's end may be an EOF or a reset; it must come.
	wait_for 5 "server $1 to see its connection end" _gone "$3"
}
idle_closed 1 wrap1 "$srv1"

wait_exit "$cli3" 15 || fail "slow client: $(cat cli3.err)"
wait_exit "$srv3" 5 || fail "slow client's server: $(cat srv3.err)"
same_file slow.bin got3 "slow upload"
same_file answer out3 "answer after the slow upload"
wait_log gw.log 'route=wrap3 .*event=close'
wait_log gw.log 'route=unwrap3 .*event=close'
log_has gw.log 'route=wrap3 .*event=close reason=eof up=12000 down=7 '
log_has gw.log 'route=unwrap3 .*event=close reason=eof up=12000 down=7 '

idle_closed 2 unwrap2 "$srv2"
