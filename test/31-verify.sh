#!/bin/sh
# 31-verify: the verify and ca keys.
#  - a wrap route with verify = none reaches a server whose certificate is
#    for another name (data flows), and the start-up log warns about it;
#  - a wrap route with ca = system does not trust the demo CA: refused,
#    reason signer not found, the client is closed without data;
#  - an unwrap route with verify = optional serves a client without a
#    certificate and one with a good certificate, and refuses one whose
#    certificate comes from an unknown CA.
. "$TESTLIB"

ports A1 A2 B W C
cat >routes.ini <<EOF2
[wrongname-server]
accept = tls://127.0.0.1:$W
cert = $CERTS/wrongname.pem
key = $CERTS/wrongname.key
connect = tcp://127.0.0.1:$C

[to-any]
accept = tcp://127.0.0.1:$A1
connect = tls://127.0.0.1:$W
verify = none

[to-system]
accept = tcp://127.0.0.1:$A2
connect = tls://127.0.0.1:$W
ca = system
server_name = wrong.example

[optional]
$(tls_accept "$B")
verify = optional
connect = tcp://127.0.0.1:$C
EOF2
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"
log_has gw.log '^[^ ]+ warn event=config warning="routes.ini:[0-9]+: \[to-any\] verify: none: the server.s certificate is not checked"'

timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A1" "unverified
" >/dev/null 2>cli.err || fail "client of to-any: $(cat cli.err)"
wait_log sink.out '^unverified$'
wait_log gw.log 'route=to-any .*event=close reason=eof'

timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A2" "to the system CAs
" >out 2>cli.err
rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "client of to-system: exit $rc: $(cat cli.err)"
[ ! -s out ] || fail "client of to-system got data"
wait_log gw.log 'route=to-system .*event=close'
log_has gw.log '^[^ ]+ warn route=to-system .*event=reject .*reason=.*signer'
log_lacks sink.out 'to the system CAs'

# as NAME LINE [CREDENTIALS...]: gnutls-cli sends LINE to the optional route
as() {
	_who=$1 _line=$2
	shift 2
	echo "$_line" | timeout 10 gnutls-cli --logfile="$_who.err" -p "$B" \
	    --x509cafile "$CERTS/ca.pem" "$@" localhost >/dev/null 2>&1
}
as anonymous "without a certificate" || fail "client without a certificate: $(tail -n 3 anonymous.err)"
wait_log sink.out '^without a certificate$'
as client "with a good certificate" --x509certfile "$CERTS/client.pem" \
    --x509keyfile "$CERTS/client.key" || fail "client with a certificate: $(tail -n 3 client.err)"
wait_log sink.out '^with a good certificate$'
wait_count gw.log 'route=optional .*event=close reason=eof' 2
log_has gw.log 'route=optional .*event=tls .*peer=.*CN=client'
as other "with a bad certificate" --x509certfile "$CERTS/other-client.pem" \
    --x509keyfile "$CERTS/other-client.key"
wait_count gw.log 'route=optional .*event=close' 3
log_has gw.log '^[^ ]+ warn route=optional .*event=reject .*reason=.*signer'
log_lacks sink.out 'with a bad certificate'
