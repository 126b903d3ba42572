#!/bin/sh
# 51-netfuzz: bad input on a TLS port. A real ClientHello is captured
# (gnutls-cli against a listener that keeps the first bytes), then
# test/helpers/netfuzz throws cut and bit-flipped ClientHellos, random
# bytes, malformed record headers and ClientHellos followed by garbage at
# the unwrap route, in 4 batches of 3 s; then, in 3 batches of 3 s,
# netfuzz -p throws bad PROXY headers (cut, flipped, random after a v1 or
# v2 signature, v2 with random command, family and length, garbled v1
# lines; each followed by the ClientHello) and good headers followed by the
# bad TLS cases at an unwrap route with accept_proxy. After each batch the
# gateway is alive and a good client through wrap and unwrap, and one
# through a wrap with send_proxy = v2 and that accept_proxy route, get
# their echo; no bad connection ever reaches the plaintext server. At the
# end every unwrap session has closed and the gateway is back to its idle
# descriptors and threads. The seeds are printed (# netfuzz: ...);
# NETFUZZ_SEED=N repeats a run.
# timeout: 150
. "$TESTLIB"

command -v gnutls-cli >/dev/null || skip "no gnutls-cli"
ports A B C PA PB
{
	demo_routes "$A" "$B" "$C"
	echo "handshake_timeout = 3"
	printf '\n[ppwrap]\naccept = tcp://127.0.0.1:%s\n' "$PA"
	tls_connect "$PB"
	echo "send_proxy = v2"
	printf '\n[ppin]\n'
	tls_accept "$PB"
	printf 'connect = tcp://127.0.0.1:%s\n' "$C"
	printf 'accept_proxy = yes\nproxy_from = 127.0.0.1\n'
	echo "handshake_timeout = 3"
} >routes.ini
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

client_hello hello.bin
figure "netfuzz: ClientHello of $(wc -c <hello.bin) bytes"

good=0
good() {	# a client through each wrap and unwrap gets its echo
	for _p in "$A" "$PA"; do
		good=$((good + 1))
		got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$_p" \
		    "good $good" 2>good.err) ||
		    fail "good client $good: $(cat good.err)"
		[ "$got" = "good $good" ] ||
		    fail "good client $good (port $_p) got '$got'"
	done
}
good
wait_count gw.log 'route=unwrap .*event=close' 1
wait_count gw.log 'route=ppin .*event=close' 1
wait_count gw.log 'route=wrap .*event=close' 1
wait_count gw.log 'route=ppwrap .*event=close' 1
log_has gw.log "route=ppin session=[0-9]* event=open peer=127\.0\.0\.1:[0-9]* via=127\.0\.0\.1:[0-9]*\$"
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")

seed=${NETFUZZ_SEED:-$(date +%s)}
for batch in 1 2 3 4 5 6 7; do
	s=$((seed + batch))
	if [ "$batch" -le 4 ]; then
		set -- 127.0.0.1 "$B"
	else
		set -- -p 127.0.0.1 "$PB"
	fi
	timeout 20 "$HELPERS/netfuzz" "$@" hello.bin 3 "$s" \
	    >fuzz$batch.out 2>fuzz$batch.err ||
	    fail "netfuzz $* batch $batch (seed $s): $(cat fuzz$batch.err)"
	proc_alive "$gw" || fail "tlsgate died in batch $batch (seed $s)"
	figure "netfuzz: batch $batch seed=$s $(cat fuzz$batch.out)"
	good
done

# Every bad connection was refused before the plaintext server.
[ "$(count_lines echo.err 'sink: accept')" -eq "$good" ] ||
    fail "the plaintext server saw $(count_lines echo.err 'sink: accept') connections for $good good clients"
for r in unwrap ppin; do
	[ "$(count_lines gw.log "route=$r .*event=connect")" -eq \
	    $((good / 2)) ] ||
	    fail "$r connected to the server for more than its good clients"
done
# Bad headers were refused for their header, before any TLS.
[ "$(count_lines gw.log 'route=ppin .*event=reject .*reason="PROXY header: ')" \
    -gt 0 ] || fail "no PROXY header refusals on route ppin"
# Every session ended (within the handshake timeout), nothing is left.
_all_closed() {
	[ "$(count_lines gw.log 'route=unwrap .*event=open')" -eq \
	    "$(count_lines gw.log 'route=unwrap .*event=close')" ]
}
wait_for 10 "every unwrap session to close" _all_closed
wait_idle "$gw" "$fds" "$threads"
figure "netfuzz: $(count_lines gw.log 'route=unwrap .*event=open') unwrap sessions, $(count_lines gw.log 'route=ppin .*event=close') ppin connections; fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") as when idle"
for r in unwrap ppin; do
	note "$r reasons: $(grep -E "route=$r .*event=reject" gw.log |
	    sed -n 's/.*reason=//p' | sed 's/[0-9][0-9]*/N/g' | sort |
	    uniq -c | sort -rn | head -n 8)"
done
