#!/bin/sh
# 15-refusals: peers that must not get through. Each refusal is logged as
# event=reject (level warn) with its reason, and the session's close repeats
# it; the plaintext server behind the routes (a sink that logs every
# connection) never sees a connection from a refused peer; and a good
# client right after each refusal is served.
#  Unwrap route (client certificates, allow_peers = client):
#   - a client certificate from another CA        reason: signer not found
#   - no client certificate                       reason: no ... certificate
#                                                 (or certificate ... required)
#   - intruder: signed by the CA, not allowed     reason: allow_peers
#  Wrap routes (server certificates):
#   - server certificate for wrong.example, server_name = localhost
#                                                 reason: name mismatch
#   - server certificate from another CA          reason: signer not found
. "$TESTLIB"

ports A B C W O X1 X2 D
cat >routes.ini <<EOF
[wrap]
accept = tcp://127.0.0.1:$A
$(tls_connect "$B")

[unwrap]
$(tls_accept "$B")
allow_peers = client
connect = tcp://127.0.0.1:$C

; TLS servers with the wrong certificates for the wrap routes below, in
; front of a decoy server
[wrongname-server]
accept = tls://127.0.0.1:$W
cert = $CERTS/wrongname.pem
key = $CERTS/wrongname.key
connect = tcp://127.0.0.1:$D

[other-ca-server]
accept = tls://127.0.0.1:$O
cert = $CERTS/other-server.pem
key = $CERTS/other-server.key
connect = tcp://127.0.0.1:$D

[to-wrongname]
accept = tcp://127.0.0.1:$X1
connect = tls://127.0.0.1:$W
ca = $CERTS/ca.pem
server_name = localhost

[to-other-ca]
accept = tcp://127.0.0.1:$X2
connect = tls://127.0.0.1:$O
ca = $CERTS/ca.pem
server_name = localhost
EOF
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"
bg decoy "$HELPERS/sink" -r 127.0.0.1 "$D"
wait_port "$D"

n=0	# good clients served so far = connections the sink has seen

# good: a client through wrap and unwrap; the sink gets its line, both
# sessions end.
good() {
	n=$((n + 1))
	w=$(count_lines gw.log 'route=wrap .*event=close reason=eof')
	u=$(count_lines gw.log 'route=unwrap .*event=close reason=eof')
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "good-$n
" >/dev/null 2>good.err || fail "good client $n: $(cat good.err)"
	wait_log sink.out "^good-$n\$"
	wait_count gw.log 'route=wrap .*event=close reason=eof' $((w + 1))
	wait_count gw.log 'route=unwrap .*event=close reason=eof' $((u + 1))
	[ "$(count_lines sink.err 'sink: accept')" -eq "$n" ] ||
	    fail "the server saw $(count_lines sink.err 'sink: accept') connections, expected $n"
}

# bad_cli ROUTE REASON_ERE [gnutls-cli credentials...]: a gnutls-cli client
# of the unwrap route that must be refused with a reason matching the ERE.
bad_cli() {
	route=$1 reason=$2
	shift 2
	before=$(count_lines gw.log "route=$route .*event=close")
	echo "secret-from-a-refused-client" |
	    timeout 10 gnutls-cli --logfile=gnutls-cli.err -p "$B" \
	    --x509cafile "$CERTS/ca.pem" "$@" localhost >/dev/null 2>&1
	refused "$route" "$reason" "$before"
}

# bad_wrap PORT ROUTE REASON_ERE: a plaintext client of a wrap route whose
# server must be refused; the client's connection is closed, no data.
bad_wrap() {
	before=$(count_lines gw.log "route=$2 .*event=close")
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" \
	    "secret-from-a-refused-client" >bad.out 2>bad.err
	rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] ||
	    fail "client of $2: exit $rc: $(cat bad.err)"
	[ ! -s bad.out ] || fail "client of $2 got data: $(cat bad.out)"
	refused "$2" "$3" "$before"
}

# refused ROUTE REASON_ERE BEFORE: the route's session after the BEFORE
# that had closed was a refusal with that reason.
refused() {
	wait_count gw.log "route=$1 .*event=close" $(($3 + 1))
	close=$(grep -E "route=$1 .*event=close" gw.log | sed -n "$(($3 + 1))p")
	sid=$(echo "$close" | sed -n 's/.* session=\([0-9]*\) .*/\1/p')
	[ -n "$sid" ] || fail "no session number in: $close"
	line=$(grep -E "route=$1 session=$sid event=reject" gw.log)
	[ -n "$line" ] || fail "route $1: no event=reject before: $close"
	echo "$line" | grep -Eqi "^[^ ]+ warn .*reason=.*($2)" ||
	    fail "route $1: expected a warn reject with reason /$2/: $line"
	echo "$close" | grep -Eqi "reason=.*($2)" ||
	    fail "route $1: close does not repeat the reason /$2/: $close"
	log_lacks sink.out secret-from-a-refused-client \
	    "a refused client's data reached the server"
	log_lacks decoy.out secret-from-a-refused-client \
	    "a client's data went to a refused server"
	[ "$(count_lines sink.err 'sink: accept')" -eq "$n" ] ||
	    fail "the server saw a connection from a refused client ($1)"
	note "refused: $line"
	good
}

good
bad_cli unwrap 'signer' --x509certfile "$CERTS/other-client.pem" \
    --x509keyfile "$CERTS/other-client.key"
bad_cli unwrap 'no .*certificate|certificate .*required'
bad_cli unwrap 'allow_peers' --x509certfile "$CERTS/intruder.pem" \
    --x509keyfile "$CERTS/intruder.key"
bad_wrap "$X1" to-wrongname 'name'
bad_wrap "$X2" to-other-ca 'signer'
log_has gw.log 'route=unwrap .*event=tls .*peer=.*CN=client'
[ "$(count_lines gw.log 'route=unwrap .*event=connect')" -eq "$n" ] ||
    fail "unwrap connected $(count_lines gw.log 'route=unwrap .*event=connect') times for $n good clients"
