#!/bin/sh
# 32-priority: the priority key. A wrap/unwrap pair whose wrap side allows
# only TLS 1.2 negotiates TLS 1.2 (both routes log version=TLS1.2) and
# carries data both ways with a half-close; a wrap route limited to TLS 1.2
# against an unwrap route limited to TLS 1.3 is refused at the handshake,
# and the plaintext server never sees it.
. "$TESTLIB"

ports A A2 B B2 C
{
	demo_routes "$A" "$B" "$C" |
	    sed 's/^server_name = localhost$/server_name = localhost\npriority = NORMAL:-VERS-ALL:+VERS-TLS1.2/'
	cat <<EOF2

[wrap12]
accept = tcp://127.0.0.1:$A2
$(tls_connect "$B2")
priority = NORMAL:-VERS-ALL:+VERS-TLS1.2

[unwrap13]
$(tls_accept "$B2")
priority = NORMAL:-VERS-ALL:+VERS-TLS1.3
connect = tcp://127.0.0.1:$C
EOF2
} >routes.ini
grep -q 'VERS-TLS1.2' routes.ini || fail "test bug: no priority"
gw_start gw routes.ini

head -c 200000 /dev/urandom >answer
echo "request over TLS 1.2" >request
exchange "$C" "$A" request answer "over TLS 1.2"
wait_log gw.log 'route=wrap .*event=close'
wait_log gw.log 'route=unwrap .*event=close'
log_has gw.log 'route=wrap .*event=tls .*version=TLS1\.2'
log_has gw.log 'route=unwrap .*event=tls .*version=TLS1\.2'
log_has gw.log 'route=wrap .*event=close reason=eof up=21 down=200000 '
log_has gw.log 'route=unwrap .*event=close reason=eof up=21 down=200000 '

bg sink "$HELPERS/sink" 127.0.0.1 "$C"
wait_port "$C"
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A2" "no common version" \
    >out2 2>cli2.err
rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || fail "client of wrap12: exit $rc: $(cat cli2.err)"
[ ! -s out2 ] || fail "client of wrap12 got data"
wait_log gw.log 'route=wrap12 .*event=close'
wait_log gw.log 'route=unwrap13 .*event=close'
log_has gw.log '^[^ ]+ warn route=wrap12 .*event=reject .*reason='
log_has gw.log '^[^ ]+ warn route=unwrap13 .*event=reject .*reason='
[ "$(count_lines sink.err 'sink: accept')" -eq 0 ] ||
    fail "the plaintext server saw a connection"
