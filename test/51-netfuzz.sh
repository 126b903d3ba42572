#!/bin/sh
# 51-netfuzz: bad input on a TLS port. A real ClientHello is captured
# (gnutls-cli against a listener that keeps the first bytes), then
# test/helpers/netfuzz throws cut and bit-flipped ClientHellos, random
# bytes, malformed record headers and ClientHellos followed by garbage at
# the unwrap route, in 4 batches of 3 s. After each batch the gateway is
# alive and a good client through wrap and unwrap gets its echo; no bad
# connection ever reaches the plaintext server. At the end every unwrap
# session has closed and the gateway is back to its idle descriptors and
# threads. The seeds are printed (# netfuzz: ...); NETFUZZ_SEED=N repeats
# a run.
# timeout: 120
. "$TESTLIB"

command -v gnutls-cli >/dev/null || skip "no gnutls-cli"
ports A B C
{
	demo_routes "$A" "$B" "$C"
	echo "handshake_timeout = 3"	# on unwrap, the last route
} >routes.ini
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

client_hello hello.bin
figure "netfuzz: ClientHello of $(wc -c <hello.bin) bytes"

good=0
good() {	# a client through wrap and unwrap gets its echo
	good=$((good + 1))
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "good $good" \
	    2>good.err) || fail "good client $good: $(cat good.err)"
	[ "$got" = "good $good" ] || fail "good client $good got '$got'"
}
good
wait_count gw.log 'route=unwrap .*event=close' 1
wait_count gw.log 'route=wrap .*event=close' 1
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")

seed=${NETFUZZ_SEED:-$(date +%s)}
for batch in 1 2 3 4; do
	s=$((seed + batch))
	timeout 20 "$HELPERS/netfuzz" 127.0.0.1 "$B" hello.bin 3 "$s" \
	    >fuzz$batch.out 2>fuzz$batch.err ||
	    fail "netfuzz batch $batch (seed $s): $(cat fuzz$batch.err)"
	proc_alive "$gw" || fail "tlsgate died in batch $batch (seed $s)"
	figure "netfuzz: batch $batch seed=$s $(cat fuzz$batch.out)"
	good
done

# Every bad connection was refused before the plaintext server.
[ "$(count_lines echo.err 'sink: accept')" -eq "$good" ] ||
    fail "the plaintext server saw $(count_lines echo.err 'sink: accept') connections for $good good clients"
[ "$(count_lines gw.log 'route=unwrap .*event=connect')" -eq "$good" ] ||
    fail "unwrap connected to the server for more than the good clients"
# Every session ended (within the handshake timeout), nothing is left.
_all_closed() {
	[ "$(count_lines gw.log 'route=unwrap .*event=open')" -eq \
	    "$(count_lines gw.log 'route=unwrap .*event=close')" ]
}
wait_for 10 "every unwrap session to close" _all_closed
wait_idle "$gw" "$fds" "$threads"
figure "netfuzz: $(count_lines gw.log 'route=unwrap .*event=open') sessions; fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") as when idle"
note "reasons: $(grep -E 'route=unwrap .*event=reject' gw.log |
    sed -n 's/.*reason=//p' | sort | uniq -c | sort -rn | head -n 8)"
