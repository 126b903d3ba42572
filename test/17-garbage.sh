#!/bin/sh
# 17-garbage: what is not TLS on a TLS port.
#  - 4 KiB of random bytes, and a plain "GET / HTTP/1.0" request, sent to
#    the unwrap route's TLS port: each is rejected with a reason about the
#    handshake or TLS, the connection is closed, and the plaintext server
#    never sees a connection.
#  - a connection that closes without sending anything: closed, nothing
#    reaches the server.
#  - a wrap route whose "TLS server" answers in plaintext HTTP: rejected
#    with a handshake reason, the client is closed.
# After each, a good client through wrap and unwrap is still served.
. "$TESTLIB"

ports A B C X P
{
	demo_routes "$A" "$B" "$C"
	cat <<EOF

[to-plain]
accept = tcp://127.0.0.1:$X
connect = tls://127.0.0.1:$P
ca = $CERTS/ca.pem
server_name = localhost
EOF
} >routes.ini
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"

n=0
good() {
	n=$((n + 1))
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "good-$n
" >/dev/null 2>good.err || fail "good client $n: $(cat good.err)"
	wait_log sink.out "^good-$n\$"
	[ "$(count_lines sink.err 'sink: accept')" -eq "$n" ] ||
	    fail "the server saw $(count_lines sink.err 'sink: accept') connections for $n good clients"
}

# garbage ROUTE PORT FILE: send FILE to PORT and half-close; the route's
# next session must be a reject whose reason speaks of the handshake or TLS
# ("handshake: <GnuTLS error>", "not TLS: ...").
garbage() {
	rejects=$(count_lines gw.log "route=$1 .*event=reject")
	closes=$(count_lines gw.log "route=$1 .*event=close")
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$2" <"$3" >/dev/null 2>bad.err
	rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "$3: client exit $rc: $(cat bad.err)"
	wait_count gw.log "route=$1 .*event=close" $((closes + 1))
	wait_count gw.log "route=$1 .*event=reject" $((rejects + 1))
	line=$(grep -E "route=$1 .*event=reject" gw.log | tail -n 1)
	echo "$line" | grep -Eqi '^[^ ]+ warn .*reason="?[^"]*(handshake|tls)' ||
	    fail "$3: expected a warn reject with a handshake/TLS reason: $line"
	note "$3: $line"
	good
}

good
head -c 4096 /dev/urandom >random.bin
garbage unwrap "$B" random.bin
printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >http.txt
garbage unwrap "$B" http.txt

# Connect and close at once, like a port scanner.
closes=$(count_lines gw.log 'route=unwrap .*event=close')
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$B" </dev/null >/dev/null 2>&1
wait_count gw.log 'route=unwrap .*event=close' $((closes + 1))
good

# A "TLS server" that speaks HTTP.
printf 'HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n' >http-answer.txt
bg plain "$HELPERS/xfer" -l 127.0.0.1 "$P" http-answer.txt plain.got
wait_port "$P"
: >empty
garbage to-plain "$X" empty
[ "$(count_lines gw.log 'route=unwrap .*event=connect')" -eq "$n" ] ||
    fail "unwrap connected to the server for more than the good clients"
