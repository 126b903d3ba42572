#!/bin/sh
# 16-backend-down: the far side is not there.
#  1. unwrap's plaintext server is down: the client (through wrap) is
#     closed with no data; unwrap logs a reject naming the address and
#     "Connection refused". Once the server is up, the next session works.
#  2. a wrap route whose TLS server is down: the same, on the wrap route.
#  3. a tcp->tcp route to a server that never completes the connection
#     (its backlog is full): closed after connect_timeout = 1 s, with
#     reason "connect timeout".
. "$TESTLIB"

ports A B C A2 D A3 F
{
	demo_routes "$A" "$B" "$C"
	cat <<EOF

[wrap-down]
accept = tcp://127.0.0.1:$A2
connect = tls://127.0.0.1:$D
ca = $CERTS/ca.pem
server_name = localhost

[forward-slow]
accept = tcp://127.0.0.1:$A3
connect = tcp://127.0.0.1:$F
connect_timeout = 1
EOF
} >routes.ini
gw_start gw routes.ini

# client PORT: a client that must be closed without data
client_closed() {
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "hello" >out 2>cli.err
	rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "client: exit $rc: $(cat cli.err)"
	[ ! -s out ] || fail "client got data: $(cat out)"
}

# 1. unwrap's server down, then up
client_closed "$A"
wait_log gw.log 'route=unwrap .*event=close'
wait_log gw.log 'route=wrap .*event=close'
log_has gw.log "^[^ ]+ warn route=unwrap .*event=reject .*reason=\"?connect [^ ]*:$C: Connection refused"
log_has gw.log "route=unwrap .*event=close .*reason=.*Connection refused"
log_lacks gw.log 'route=unwrap .*event=close reason=eof'

bg srv "$HELPERS/xfer" -l -w 127.0.0.1 "$C" /dev/null got
srv=$BG_PID
wait_port "$C"
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "second try" >/dev/null \
    2>cli.err || fail "client once the server is up: $(cat cli.err)"
wait_exit "$srv" 10 || fail "server: $(cat srv.err)"
[ "$(cat got)" = "second try" ] || fail "server got: $(cat got)"
wait_log gw.log 'route=unwrap .*event=close reason=eof'

# 2. wrap's TLS server down
client_closed "$A2"
wait_log gw.log 'route=wrap-down .*event=close'
log_has gw.log "^[^ ]+ warn route=wrap-down .*event=reject .*reason=\"?connect [^ ]*:$D: Connection refused"
log_has gw.log 'route=wrap-down .*event=close .*reason=.*Connection refused'

# 3. connect timeout: a listener whose queue is full (test/lib.sh).
no_answer "$F"
start=$(now_ms)
client_closed "$A3"
took=$(($(now_ms) - start))
wait_log gw.log 'route=forward-slow .*event=close'
log_has gw.log '^[^ ]+ warn route=forward-slow .*event=reject .*reason="?connect timeout'
log_has gw.log 'route=forward-slow .*event=close .*reason="?connect timeout'
[ "$took" -ge 900 ] || fail "closed after $took ms, before connect_timeout"
[ "$took" -lt 5000 ] || fail "closed after $took ms, long after connect_timeout"
