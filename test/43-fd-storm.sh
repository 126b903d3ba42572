#!/bin/sh
# 43-fd-storm: with 64 file descriptors, 200 clients at once through the
# wrap -> unwrap chain (both routes in this one gateway). The gateway
# survives, refuses what it cannot serve (closed at once, not left
# waiting), logs the refusals at most about once a second, does not spin
# while saturated (its CPU over 2 s stays low; judged without a
# sanitizer only), and once the clients are gone a new client is served
# within two seconds.
. "$TESTLIB"

command -v prlimit >/dev/null || skip "no prlimit"
ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
bg srv "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"
GW_PREFIX="prlimit --nofile=64:64 --" gw_start gw routes.ini
gw=$GW_PID

cpu() {	# utime + stime of the gateway, in clock ticks
	awk '{ print $14 + $15 }' /proc/"$gw"/stat
}

bg storm "$HELPERS/storm" 127.0.0.1 "$A" 200 6
wait_log gw.log 'event=reject .*Too many open files' 10
# Saturated: the held sessions fill the table, the rest are refused.
t0=$(cpu)
sleep 2
t1=$(cpu)
ticks=$((t1 - t0))
note "gateway CPU while saturated: $ticks ticks in 2 s"
# A spin would take a whole core (200 ticks); the plain build takes about
# none. Under a sanitizer the handshakes of the sessions let through can
# take most of a core in this window by themselves: not judged there.
[ -n "$(sanitizer)" ] || [ "$ticks" -lt 60 ] ||
    fail "the gateway spins while out of descriptors: $ticks ticks in 2 s"
proc_alive "$gw" || fail "tlsgate died"
wait_exit "$(pid_of storm)" 15 || fail "storm: $(cat storm.err)"
figure "storm: $(cat storm.out)"
grep -q 'closed=[1-9]' storm.out || fail "no client was refused: $(cat storm.out)"

# Refusals are logged at most once a second (a few seconds of storm).
n=$(count_lines gw.log 'event=reject .*Too many open files')
note "reject lines for descriptors: $n"
[ "$n" -le 12 ] || fail "$n reject lines: not rate limited"

# A new client is served within two seconds of the storm's end.
end=$(($(now_ms) + 2000))
until got=$(timeout 2 "$HELPERS/halfclose" 127.0.0.1 "$A" after 2>/dev/null) &&
    [ "$got" = after ]; do
	[ "$(now_ms)" -lt "$end" ] || fail "no client served within 2 s of the storm"
	sleep 0.1
done
figure "a new client served $(($(now_ms) + 2000 - end)) ms after the storm"
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
