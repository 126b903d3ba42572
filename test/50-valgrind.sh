#!/bin/sh
# 50-valgrind: the demo chain (one gateway, wrap and unwrap, mutual TLS)
# under valgrind's memcheck: 200 short sessions in sequence, 50 at once,
# 4 MiB each way at the same time, a client that is refused (not TLS) and
# one that resets mid-session, all to an echo server. Then SIGTERM: the
# gateway exits 0, valgrind reports no error and no definitely lost block
# (--error-exitcode turns either into exit status 9). Skips without
# valgrind and for sanitizer builds, which valgrind cannot run.
# timeout: 240
. "$TESTLIB"

command -v valgrind >/dev/null || skip "no valgrind"
[ -z "$(sanitizer)" ] || skip "$(sanitizer) build: valgrind cannot run it"

ports A B C
# valgrind runs one thread at a time, and 50 handshakes at once take
# longer than the default 10 s handshake_timeout on a busy machine.
{
	printf '[gateway]\nhandshake_timeout = 60\n\n'
	demo_routes "$A" "$B" "$C"
} >routes.ini
GW_PREFIX="valgrind --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --error-exitcode=9 --num-callers=30
    --max-threads=1000 --log-file=valgrind.log" gw_start gw routes.ini
bg echo "$HELPERS/sink" -e -b 256 127.0.0.1 "$C"
wait_port "$C"

sessions=0
settle() {	# settle N: N more sessions, all closed on both routes
	sessions=$((sessions + $1))
	wait_count gw.log 'route=wrap .*event=close' "$sessions" 60
	wait_count gw.log 'route=unwrap .*event=close' "$sessions" 60
}

start=$(now_ms)
timeout 150 "$HELPERS/load" seq 127.0.0.1 "$A" 200 32 >seq.out 2>seq.err ||
    fail "200 in sequence: $(cat seq.out) $(head -n 5 seq.err)"
settle 200
figure "valgrind: $(cat seq.out)"
timeout 120 "$HELPERS/load" conc 127.0.0.1 "$A" 50 32 >conc.out 2>conc.err ||
    fail "50 at once: $(cat conc.out) $(head -n 5 conc.err)"
settle 50
figure "valgrind: $(cat conc.out)"

head -c 4194304 /dev/urandom >up.bin
timeout 120 "$HELPERS/xfer" 127.0.0.1 "$A" up.bin echo.got 2>xfer.err ||
    fail "4 MiB echo: $(cat xfer.err)"
same_file up.bin echo.got "4 MiB through the chain and back"
settle 1

# Refused on the TLS port: not TLS.
timeout 30 "$HELPERS/halfclose" 127.0.0.1 "$B" "GET / HTTP/1.0" \
    >/dev/null 2>&1
wait_count gw.log 'route=unwrap .*event=reject' 1 60
# A client that resets once its session is up.
mkfifo reset.in
bg reset "$HELPERS/xfer" -A 127.0.0.1 "$A" reset.in reset.got
exec 3>reset.in
echo "before the reset" >&3
wait_log reset.got '^before the reset$' 60
exec 3>&-
wait_exit "$(pid_of reset)" 30 || fail "resetting client: $(cat reset.err)"
wait_count gw.log 'route=wrap .*event=close' $((sessions + 1)) 60
# The unwrap route: the refused client's session, and the reset one's.
wait_count gw.log 'route=unwrap .*event=close' $((sessions + 2)) 60
figure "valgrind: $((sessions + 1)) sessions in $(($(now_ms) - start)) ms"

gw_stop gw 60
rc=$?
figure "valgrind: $(grep -E 'ERROR SUMMARY|definitely lost|in use at exit|total heap usage' valgrind.log |
    sed 's/^==[0-9]*== *//' | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
[ "$rc" -ne 9 ] || fail "valgrind found errors or leaks (exit 9): see valgrind.log"
expect_rc 0 "$rc" "tlsgate under valgrind after SIGTERM"
log_has valgrind.log 'ERROR SUMMARY: 0 errors'
log_lacks valgrind.log 'definitely lost: [1-9]'
log_has gw.log 'event=exit status=0'
