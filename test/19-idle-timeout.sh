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
# An idle timeout is an end the gateway forces: the plaintext client and
# server of sessions 1 and 2 see a reset, not an end of stream (an
# application must not take a cut-off exchange for a complete one).
#  4. idle_timeout = 4294968 (past 2^32 milliseconds): an idle session's
#     threads sleep; they do not wake every 0.7 s, as they would if the
#     timeout were cut to 32 bits (judged without a sanitizer, whose own
#     threads wake).
. "$TESTLIB"

ports A1 B1 C1 A2 B2 C2 A3 B3 C3 A4 C4
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
	grep -q 'xfer: received 0 bytes, reset' "cli$1.err" ||
	    fail "$2: the client saw no reset: $(cat "cli$1.err")"
	wait_for 5 "server $1 to see its connection end" _gone "$3"
	grep -q 'xfer: received 0 bytes, reset' "srv$1.err" ||
	    fail "$2: the server saw no reset: $(cat "srv$1.err")"
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

# 4. A timeout past 2^32 ms: the threads of an idle session stay asleep.
cat >routes4.ini <<EOF
[forward]
accept = tcp://127.0.0.1:$A4
connect = tcp://127.0.0.1:$C4
idle_timeout = 4294968
EOF
gw_start gw4 routes4.ini
gw4=$GW_PID
bg srv4 "$HELPERS/xfer" -l -w 127.0.0.1 "$C4" /dev/null got4
wait_port "$C4"
bg cli4 "$HELPERS/xfer" -p 60000 127.0.0.1 "$A4" /dev/null out4
_relayed() {
	[ -n "$(ss -tnH state established "sport = :$C4" 2>/dev/null)" ]
}
wait_for 10 "the session to reach the server" _relayed
# switches PID: voluntary context switches of all PID's threads
switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
	    awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}
before=$(switches "$gw4")
sleep 3
woke=$(($(switches "$gw4") - before))
note "idle_timeout = 4294968: the gateway's threads woke $woke times in 3 s"
if [ -z "$(sanitizer)" ] && [ "$woke" -gt 3 ]; then
	fail "an idle session woke $woke times in 3 s with idle_timeout = 4294968"
fi
log_lacks gw4.log 'event=close'
