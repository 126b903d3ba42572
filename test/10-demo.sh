#!/bin/sh
# 10-demo: the classic demonstration. One tlsgate with both routes, wrap
# (tcp 127.0.0.1:A -> tls B) and unwrap (tls B -> tcp C), mutual TLS.
# Lines written into nc on the plaintext client side appear at nc on the
# plaintext server side and back; both ends close cleanly and each route
# logs its session: open, tls (TLS 1.3, the peer's name), connect and
# close reason=eof with the byte counts. Then the same chain over IPv6
# ([::1]) with no server_name: the server certificate's IP address SAN is
# what gets checked.
. "$TESTLIB"

ports A B C A6 B6 C6
{
	demo_routes "$A" "$B" "$C"
	cat <<EOF

[wrap6]
accept = tcp://[::1]:$A6
connect = tls://[::1]:$B6
ca = $CERTS/ca.pem
cert = $CERTS/client.pem
key = $CERTS/client.key

[unwrap6]
accept = tls://[::1]:$B6
cert = $CERTS/server.pem
key = $CERTS/server.key
ca = $CERTS/ca.pem
connect = tcp://[::1]:$C6
EOF
} >routes.ini

gw_start gw routes.ini
log_has gw.log 'event=ready routes=4'
for r in wrap unwrap wrap6 unwrap6; do
	log_has gw.log "route=$r .*event=listen .*addr="
done

# nc on both sides, fed through fifos as if typed.
mkfifo srv.in cli.in
nc -N -l 127.0.0.1 "$C" <srv.in >srv.out 2>srv.err &
track $!
srv=$!
exec 4>srv.in
wait_port "$C"
nc -N 127.0.0.1 "$A" <cli.in >cli.out 2>cli.err 4>&- &
track $!
cli=$!
exec 3>cli.in

up="hello from the red side"		# 23 bytes + newline
down="and back from the server, over TLS"	# 34 bytes + newline
echo "$up" >&3
wait_log srv.out "^$up\$"
echo "$down" >&4
wait_log cli.out "^$down\$"

# Both ends close: FIN travels as close_notify and back.
exec 3>&-
exec 4>&-
wait_exit "$cli" 10 || fail "client nc failed"
wait_exit "$srv" 10 || fail "server nc failed"
[ "$(cat srv.out)" = "$up" ] || fail "server got: $(cat srv.out)"
[ "$(cat cli.out)" = "$down" ] || fail "client got: $(cat cli.out)"

wait_log gw.log 'route=unwrap .*event=close'
wait_log gw.log 'route=wrap .*event=close'
log_has gw.log 'route=wrap .*event=open .*peer=127\.0\.0\.1:'
log_has gw.log 'route=wrap .*event=connect .*addr='
log_has gw.log 'route=wrap .*event=tls .*version=TLS1\.3'
log_has gw.log 'route=unwrap .*event=open .*peer=127\.0\.0\.1:'
log_has gw.log 'route=unwrap .*event=tls .*version=TLS1\.3 .*peer=.*CN=client'
log_has gw.log "route=unwrap .*event=connect .*addr=.*$C"
log_has gw.log 'route=wrap .*event=close reason=eof up=24 down=35 ms=[0-9]+'
log_has gw.log 'route=unwrap .*event=close reason=eof up=24 down=35 ms=[0-9]+'
log_lacks gw.log 'event=reject'

# IPv6: a file each way.
head -c 300000 /dev/urandom >up.bin
head -c 200000 /dev/urandom >down.bin
bg srv6 "$HELPERS/xfer" -l ::1 "$C6" down.bin up.got
srv6=$BG_PID
wait_port "$C6"
"$HELPERS/xfer" ::1 "$A6" up.bin down.got 2>cli6.err ||
    fail "IPv6 client: $(cat cli6.err)"
wait_exit "$srv6" 10 || fail "IPv6 server: $(cat srv6.err)"
same_file up.bin up.got
same_file down.bin down.got
wait_log gw.log 'route=wrap6 .*event=close'
wait_log gw.log 'route=unwrap6 .*event=close'
log_has gw.log 'route=unwrap6 .*event=open .*peer=\[?::1\]?:'
log_has gw.log 'route=wrap6 .*event=close reason=eof up=300000 down=200000'
log_has gw.log 'route=unwrap6 .*event=close reason=eof up=300000 down=200000'
log_lacks gw.log 'event=reject'
