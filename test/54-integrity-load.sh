#!/bin/sh
# 54-integrity-load: 100 sessions at once through wrap and unwrap, each
# moving 16 MiB both ways at the same time (4 MiB each under
# ThreadSanitizer, which is several times slower). Every byte is checked:
# test/helpers/streams sends a pseudo-random stream of its own per
# connection and direction, the server (streams serve) checks what it
# receives while it sends its own, and each side checks the other's
# stream byte by byte and its clean end. All 100 sessions close with
# reason=eof on both routes with exact byte counts; afterwards the gateway
# is back to its idle descriptors and threads. Prints the throughput.
# timeout: 150
. "$TESTLIB"

conns=100
size=16777216
[ "$(sanitizer)" = tsan ] && size=4194304

ports A B C
# 100 handshakes compete with 99 bulk streams for the CPU: under a
# sanitizer, on 2 busy cores, one can take more than the 10 s default.
{
	printf '[gateway]\nhandshake_timeout = 60\n\n'
	demo_routes "$A" "$B" "$C"
} >routes.ini
gw_start gw routes.ini
gw=$GW_PID

# The idle figures, after one session has come and gone.
bg warm-srv "$HELPERS/streams" serve -n 1 127.0.0.1 "$C" 1000
wait_port "$C"
"$HELPERS/streams" run 127.0.0.1 "$A" 1 1000 >warm.out 2>warm.err ||
    fail "warm-up: $(cat warm.err)"
wait_exit "$BG_PID" 10 || fail "warm-up server: $(cat warm-srv.err)"
wait_count gw.log 'route=unwrap .*event=close' 1
wait_count gw.log 'route=wrap .*event=close' 1
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")
figure "integrity: idle fds=$fds threads=$threads"

bg srv "$HELPERS/streams" serve -n "$conns" 127.0.0.1 "$C" "$size"
srv=$BG_PID
wait_port "$C"

timeout 120 "$HELPERS/streams" run 127.0.0.1 "$A" "$conns" "$size" \
    >run.out 2>run.err
rc=$?
figure "integrity: $(cat run.out)"
[ "$rc" -eq 0 ] || fail "client side: exit $rc: $(head -n 5 run.err)"
wait_exit "$srv" 30 || fail "server side: $(cat srv.out) $(head -n 5 srv.err)"
note "$(cat srv.out)"
log_has run.out "ok=$conns bad=0"
log_has srv.out "served $conns ok=$conns bad=0"

total=$((conns + 1))
wait_count gw.log 'route=wrap .*event=close' "$total" 20
wait_count gw.log 'route=unwrap .*event=close' "$total" 20
up=$((size + 8))	# the 8-byte header
for r in wrap unwrap; do
	n=$(count_lines gw.log "route=$r .*event=close reason=eof up=$up down=$size ")
	[ "$n" -eq "$conns" ] ||
	    fail "$r: $n of $conns sessions closed with reason=eof up=$up down=$size:
$(grep -E "route=$r .*event=close" gw.log | grep -v "up=$up down=$size " | head -n 5)"
done
log_lacks gw.log 'event=reject'
wait_idle "$gw" "$fds" "$threads" 20
figure "integrity: after fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")"
