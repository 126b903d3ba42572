#!/bin/sh
# 56-stalled-clients: slow clients cannot starve the handshakes. 1,000
# clients each send half a ClientHello to an unwrap route and stall
# (test/helpers/stall; handshake_timeout = 30 keeps them waiting). While
# they wait:
#  - the gateway runs no thread for them: its thread count is the idle
#    count (the handshake stage's threads and the accept loop);
#  - a good client through wrap and the same unwrap route gets its echo
#    within 1 s of connecting, five times over.
# Then the gateway is stopped (SIGTERM, grace 1 s): the stalled handshakes
# end with it (reason "shutdown") and it exits 0. The figures are printed
# (# stalled: ...).
# timeout: 120
. "$TESTLIB"

stalled=1000
need_fds $((stalled + 256))

ports A B C
{
	printf '[gateway]\nshutdown_grace = 1\nhandshake_timeout = 30\n\n'
	demo_routes "$A" "$B" "$C"
} >routes.ini
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

n=0
good() {	# a client through wrap and unwrap gets its echo within 1 s
	n=$((n + 1))
	t0=$(now_ms)
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "good $n" \
	    2>good.err) || fail "good client $n: $(cat good.err)"
	took=$(($(now_ms) - t0))
	[ "$got" = "good $n" ] || fail "good client $n got '$got'"
	[ "$took" -lt 1000 ] ||
	    fail "good client $n took $took ms with $stalled clients stalled"
	times="$times${times:+ }$took"
}
times=
good
wait_count gw.log 'route=unwrap .*event=close' 1
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")
figure "stalled: idle: fds=$fds threads=$threads"

client_hello hello.bin
bg stall "$HELPERS/stall" 127.0.0.1 "$B" hello.bin "$stalled"
wait_log stall.out "^stalled $stalled\$" 60
_held() {	# the gateway holds a descriptor for every stalled client
	[ "$(proc_fds "$gw")" -ge $((fds + stalled)) ]
}
wait_for 30 "the gateway to take the $stalled stalled clients" _held
held=$(proc_threads "$gw")
figure "stalled: $stalled clients in their handshake: fds=$(proc_fds "$gw") threads=$held rss=$(proc_rss "$gw") KiB"
[ "$held" -le "$threads" ] ||
    fail "$held threads with $stalled clients stalled, $threads when idle"
for k in 1 2 3 4 5; do
	good
done
figure "stalled: good clients meanwhile, ms: $times"
[ "$(proc_threads "$gw")" -le "$threads" ] ||
    fail "$(proc_threads "$gw") threads after the good clients"
log_lacks gw.log 'route=unwrap .*event=close reason="handshake timeout"'

gw_stop gw 10 || fail "tlsgate exited with status $? after SIGTERM"
[ "$(count_lines gw.log 'route=unwrap .*event=close reason=shutdown ')" -ge "$stalled" ] ||
    fail "$(count_lines gw.log 'route=unwrap .*event=close reason=shutdown ') stalled handshakes ended with reason shutdown, expected $stalled"
