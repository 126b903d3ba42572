#!/bin/sh
# 13-integrity: 64 MiB of random bytes each way at the same time through
# wrap and unwrap. The plaintext server is no echo: it sends its own 64 MiB
# while it reads the client's. Both ends receive exactly what the other
# sent (same SHA-256), and both routes count 64 MiB up and 64 MiB down.
# timeout: 180
. "$TESTLIB"

ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
gw_start gw routes.ini

size=67108864
head -c "$size" /dev/urandom >up.bin
head -c "$size" /dev/urandom >down.bin
bg srv "$HELPERS/xfer" -l 127.0.0.1 "$C" down.bin up.got
srv=$BG_PID
wait_port "$C"
start=$(now_ms)
"$HELPERS/xfer" 127.0.0.1 "$A" up.bin down.got 2>cli.err ||
    fail "client: $(cat cli.err)"
wait_exit "$srv" 30 || fail "server: $(cat srv.err)"
note "2 x 64 MiB in $(($(now_ms) - start)) ms"

sum() {
	sha256sum <"$1" | cut -d' ' -f1
}
sent=$(sum up.bin) got=$(sum up.got)
[ "$sent" = "$got" ] ||
    fail "client -> server: sha256 $sent sent, $got received ($(wc -c <up.got) bytes)"
note "client -> server: sha256 $got"
sent=$(sum down.bin) got=$(sum down.got)
[ "$sent" = "$got" ] ||
    fail "server -> client: sha256 $sent sent, $got received ($(wc -c <down.got) bytes)"
note "server -> client: sha256 $got"

wait_log gw.log 'route=wrap .*event=close'
wait_log gw.log 'route=unwrap .*event=close'
log_has gw.log "route=wrap .*event=close reason=eof up=$size down=$size "
log_has gw.log "route=unwrap .*event=close reason=eof up=$size down=$size "
