#!/bin/sh
# 23-dns: DNS names in connect addresses (localhost, from /etc/hosts; no
# query leaves the machine). wrap connects to tls://localhost:B, whose
# certificate must match the default server_name, localhost; unwrap
# connects to tcp://localhost:C. Data goes both ways and both routes log
# the address they reached.
. "$TESTLIB"

getent hosts localhost | grep -q '127\.0\.0\.1' ||
    skip "localhost does not resolve to 127.0.0.1 here"
ports A B C
cat >routes.ini <<EOF2
[wrap]
accept = tcp://127.0.0.1:$A
connect = tls://localhost:$B
ca = $CERTS/ca.pem
cert = $CERTS/client.pem
key = $CERTS/client.key

[unwrap]
$(tls_accept "$B")
connect = tcp://localhost:$C
EOF2
gw_start gw routes.ini

echo "request by name" >req
echo "answer by name" >ans
exchange "$C" "$A" req ans "by name"
wait_log gw.log 'route=wrap .*event=close'
wait_log gw.log 'route=unwrap .*event=close'
log_has gw.log "route=wrap .*event=connect .*addr=.*:$B"
log_has gw.log "route=unwrap .*event=connect .*addr=.*:$C"
log_has gw.log 'route=wrap .*event=close reason=eof'
log_has gw.log 'route=unwrap .*event=close reason=eof'
