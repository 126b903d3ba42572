#!/bin/sh
# 18-handshake-timeout: handshake_timeout = 1 bounds the whole handshake.
#  1. a client connects to the unwrap route and never sends a ClientHello;
#  2. a wrap route's server accepts TCP and never answers the ClientHello;
#  3. a client trickles a TLS record header and then one byte every 100 ms
#     (a slowloris: each read succeeds, the handshake never completes).
# Each is closed after about 1 s (not before, well before 5 s) with a
# reject and a close whose reason contains "handshake timeout", and the
# plaintext server never sees a connection.
. "$TESTLIB"

ports B C X S
cat >routes.ini <<EOF
[unwrap]
$(tls_accept "$B")
connect = tcp://127.0.0.1:$C
handshake_timeout = 1

[to-silent]
accept = tcp://127.0.0.1:$X
connect = tls://127.0.0.1:$S
ca = $CERTS/ca.pem
server_name = localhost
handshake_timeout = 1
EOF
gw_start gw routes.ini
bg sink "$HELPERS/sink" 127.0.0.1 "$C"
wait_port "$C"
bg silent "$HELPERS/sink" 127.0.0.1 "$S"
wait_port "$S"

# timed_out ROUTE CASE CLIENT_NAME START: the client was closed after about
# one second and the route logged a handshake timeout.
timed_out() {
	wait_log "$3.err" 'xfer: received|halfclose: (eof|read)' 5
	took=$(($(now_ms) - $4))
	[ "$took" -ge 900 ] || fail "$2: closed after $took ms, before the timeout"
	[ "$took" -lt 5000 ] || fail "$2: closed after $took ms"
	wait_log gw.log "route=$1 .*event=close"
	line=$(grep -E "route=$1 .*event=close" gw.log | tail -n 1)
	echo "$line" | grep -Eq 'reason="?handshake timeout' ||
	    fail "$2: expected reason handshake timeout: $line"
	log_has gw.log "^[^ ]+ warn route=$1 .*event=reject .*reason=\"?handshake timeout"
	note "$2: closed after $took ms: $line"
}

# 1. silent client
start=$(now_ms)
bg silent-client "$HELPERS/xfer" -p 60000 127.0.0.1 "$B" /dev/null silent.got
timed_out unwrap "silent client" silent-client "$start"

# 2. silent server on a wrap route
start=$(now_ms)
bg wrap-client "$HELPERS/halfclose" 127.0.0.1 "$X" "hello"
timed_out to-silent "silent server" wrap-client "$start"

# 3. slowloris: a handshake record header announcing 512 bytes, then
# random bytes at 10 bytes a second.
printf '\026\003\001\002\000' >loris.bin
head -c 600 /dev/urandom >>loris.bin
closes=$(count_lines gw.log 'route=unwrap .*event=close')
start=$(now_ms)
bg loris "$HELPERS/xfer" -r 10 127.0.0.1 "$B" loris.bin loris.got
wait_count gw.log 'route=unwrap .*event=close' $((closes + 1)) 5
timed_out unwrap "slowloris" loris "$start"

[ "$(count_lines sink.err 'sink: accept')" -eq 0 ] ||
    fail "the plaintext server saw a connection"
