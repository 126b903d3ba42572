#!/bin/sh
# 12-peers: other TLS implementations on the black side.
#  - gnutls-cli and openssl s_client, with the client certificate, as
#    clients of an unwrap route: the request reaches the plaintext server
#    and its answer comes back.
#  - gnutls-serv and openssl s_server, both requiring a client certificate
#    signed by the CA, as the servers of wrap routes: the request reaches
#    them (gnutls-serv echoes it, s_server -rev reverses it) and comes back.
. "$TESTLIB"

ports A1 A2 B C S1 S2
cat >routes.ini <<EOF
[unwrap]
$(tls_accept "$B")
connect = tcp://127.0.0.1:$C

[to-gnutls]
accept = tcp://127.0.0.1:$A1
$(tls_connect "$S1")

[to-openssl]
accept = tcp://127.0.0.1:$A2
connect = tls://127.0.0.1:$S2
ca = $CERTS/ca.pem
cert = $CERTS/client.pem
key = $CERTS/client.key
EOF
gw_start gw routes.ini

# 1. gnutls-cli -> unwrap. gnutls-cli sends close_notify at the end of its
# input and reads on: the server (xfer -w) answers after the request ends.
echo "request from gnutls-cli" >req1
echo "answer to gnutls-cli" >ans1
bg srv1 "$HELPERS/xfer" -l -w 127.0.0.1 "$C" ans1 got1
srv1=$BG_PID
wait_port "$C"
timeout 10 gnutls-cli --logfile=gnutls-cli.err -p "$B" \
    --x509cafile "$CERTS/ca.pem" --x509certfile "$CERTS/client.pem" \
    --x509keyfile "$CERTS/client.key" localhost <req1 >out1 ||
    fail "gnutls-cli failed: $(tail -n 5 gnutls-cli.err)"
wait_exit "$srv1" 10 || fail "server: $(cat srv1.err)"
same_file req1 got1 "request via gnutls-cli"
same_file ans1 out1 "answer to gnutls-cli"
wait_count gw.log 'route=unwrap .*event=close reason=eof' 1
log_has gw.log 'route=unwrap .*event=tls .*peer=.*CN=client'

# 2. openssl s_client -> unwrap. s_client keeps reading after its input
# ends (-ign_eof); the server answers at once and closes.
echo "request from openssl s_client" >req2
echo "answer to openssl s_client" >ans2
bg srv2 "$HELPERS/xfer" -l 127.0.0.1 "$C" ans2 got2
srv2=$BG_PID
wait_port "$C"
timeout 10 openssl s_client -connect "127.0.0.1:$B" -quiet -ign_eof \
    -CAfile "$CERTS/ca.pem" -verify_return_error -verify_ip 127.0.0.1 \
    -cert "$CERTS/client.pem" -key "$CERTS/client.key" \
    <req2 >out2 2>s_client.err ||
    fail "openssl s_client failed: $(tail -n 5 s_client.err)"
wait_exit "$srv2" 10 || fail "server: $(cat srv2.err)"
same_file req2 got2 "request via s_client"
same_file ans2 out2 "answer to s_client"
wait_count gw.log 'route=unwrap .*event=close reason=eof' 2

# 3. wrap -> gnutls-serv (echo), client certificate required and verified.
gnutls-serv --echo --require-client-cert --verify-client-cert -p "$S1" \
    --x509cafile "$CERTS/ca.pem" --x509certfile "$CERTS/server.pem" \
    --x509keyfile "$CERTS/server.key" >gnutls-serv.out 2>gnutls-serv.err &
track $!
wait_port "$S1"
echo "hello gnutls-serv" >req3
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A1" <req3 >out3 2>cli3.err ||
    fail "client of gnutls-serv: $(cat cli3.err)"
same_file req3 out3 "echo from gnutls-serv"
wait_log gw.log 'route=to-gnutls .*event=close'
log_has gw.log 'route=to-gnutls .*event=tls .*version=TLS1\.[23]'
log_has gw.log 'route=to-gnutls .*event=close reason=eof'

# 4. wrap -> openssl s_server -rev (answers each line reversed), which
# demands a client certificate that chains to the CA.
openssl s_server -accept "127.0.0.1:$S2" -rev -naccept 1 \
    -cert "$CERTS/server.pem" -key "$CERTS/server.key" \
    -CAfile "$CERTS/ca.pem" -Verify 1 -verify_return_error \
    >s_server.out 2>s_server.err &
track $!
wait_port "$S2"
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A2" "hello openssl
" >out4 2>cli4.err || fail "client of s_server: $(cat cli4.err)"
grep -q 'lssnepo olleh' out4 || fail "s_server answered: $(cat out4)"
wait_log gw.log 'route=to-openssl .*event=close'
log_has gw.log 'route=to-openssl .*event=tls .*version=TLS1\.[23]'
log_lacks gw.log 'event=reject'
