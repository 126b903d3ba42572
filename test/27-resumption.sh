#!/bin/sh
# 27-resumption: TLS 1.3 session tickets.
#  - accept side: gnutls-cli --resume against an unwrap route resumes its
#    session (resumption defaults to yes), and does not on a route with
#    resumption = no. Both connections reach the plaintext server.
#  - connect side: two sessions in a row through a wrap route to
#    gnutls-serv: the second is resumed (gnutls-serv says so); through a
#    wrap route with resumption = no, none is.
. "$TESTLIB"

ports A A2 B B2 C S
cat >routes.ini <<EOF
[unwrap]
$(tls_accept "$B")
connect = tcp://127.0.0.1:$C

[unwrap-nores]
$(tls_accept "$B2")
connect = tcp://127.0.0.1:$C
resumption = no

[wrap]
accept = tcp://127.0.0.1:$A
connect = tls://127.0.0.1:$S
ca = $CERTS/ca.pem
server_name = localhost

[wrap-nores]
accept = tcp://127.0.0.1:$A2
connect = tls://127.0.0.1:$S
ca = $CERTS/ca.pem
server_name = localhost
resumption = no
EOF
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"

# cli_resume PORT OUT: gnutls-cli --resume with the client certificate
cli_resume() {
	echo "via $1" | timeout 10 gnutls-cli --resume -p "$1" \
	    --x509cafile "$CERTS/ca.pem" --x509certfile "$CERTS/client.pem" \
	    --x509keyfile "$CERTS/client.key" localhost >"$2" 2>&1 ||
	    fail "gnutls-cli --resume to $1: $(tail -n 5 "$2")"
	grep -q 'Resume Handshake was completed' "$2" ||
	    fail "gnutls-cli did not connect a second time: $(tail -n 5 "$2")"
}
cli_resume "$B" resume.out
grep -q 'This is a resumed session' resume.out ||
    fail "unwrap: the session was not resumed: $(grep -i resum resume.out)"
cli_resume "$B2" noresume.out
grep -q 'This is a resumed session' noresume.out &&
    fail "unwrap-nores: the session was resumed"
wait_count sink.err 'sink: accept' 4
wait_count gw.log 'route=unwrap .*event=close' 2
wait_count gw.log 'route=unwrap-nores .*event=close' 2

gnutls-serv --echo -p "$S" --x509certfile "$CERTS/server.pem" \
    --x509keyfile "$CERTS/server.key" >gnutls-serv.out 2>gnutls-serv.err &
track $!
wait_port "$S"

# twice PORT: two sessions in a row through PORT, each echoed (a line:
# gnutls-serv echoes whole lines)
twice() {
	for i in 1 2; do
		got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "hello $i
" 2>cli.err) ||
		    fail "client $i of port $1: $(cat cli.err)"
		[ "$got" = "hello $i" ] || fail "client $i of port $1 got '$got'"
	done
}
twice "$A"
wait_count gw.log 'route=wrap .*event=close' 2
[ "$(count_lines gnutls-serv.out 'This is a resumed session')" -eq 1 ] ||
    fail "wrap: $(count_lines gnutls-serv.out 'This is a resumed session') resumed sessions, expected 1"
twice "$A2"
wait_count gw.log 'route=wrap-nores .*event=close' 2
[ "$(count_lines gnutls-serv.out 'This is a resumed session')" -eq 1 ] ||
    fail "wrap-nores resumed a session"
