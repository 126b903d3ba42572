#!/bin/sh
# 44-reload-cert: a certificate swapped by SIGHUP is the one new clients
# see. gnutls-cli reads the unwrap route's certificate (CN=localhost);
# routes.ini is changed to the wrongname certificate (CN=wrong.example)
# and the gateway gets SIGHUP: the next gnutls-cli sees CN=wrong.example,
# while a session opened before the reload still echoes with the old one.
. "$TESTLIB"

ports B C
route() {	# route CERTNAME: the unwrap route with that certificate
	cat <<EOF2
[unwrap]
accept = tls://127.0.0.1:$B
cert = $CERTS/$1.pem
key = $CERTS/$1.key
connect = tcp://127.0.0.1:$C
EOF2
}
route server >routes.ini
bg srv "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"
gw_start gw routes.ini

subject() {	# subject OUT: the subject gnutls-cli printed for the server
	sed -n "s/^ - subject \`\(CN=[^']*\)'.*/\1/p" "$1" | head -n 1
}
peek() {	# peek OUT: connect with gnutls-cli, print the certificate
	echo hello | timeout 10 gnutls-cli --insecure --print-cert -p "$B" \
	    127.0.0.1 >"$1" 2>&1 || true
}

peek before.out
[ "$(subject before.out)" = "CN=localhost" ] ||
    fail "before the reload: server certificate $(subject before.out), expected CN=localhost"

# A session that lives across the reload, on the old certificate.
mkfifo live.in
gnutls-cli --insecure -p "$B" 127.0.0.1 <live.in >live.out 2>live.err 3>&- 4>&- &
live=$!
track "$live"
exec 4>live.in
echo "one" >&4
wait_log live.out '^one$' 10

route wrongname >routes.ini
kill -HUP "$(pid_of gw)"
wait_log gw.log 'event=reload result=ok'
peek after.out
[ "$(subject after.out)" = "CN=wrong.example" ] ||
    fail "after the reload: server certificate $(subject after.out), expected CN=wrong.example"

echo "two" >&4
wait_log live.out '^two$' 10
exec 4>&-
wait_exit "$live" 10 || true
log_lacks gw.log 'event=close reason="[^e]'
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
