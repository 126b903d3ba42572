#!/bin/sh
# 22-truncation: a TLS stream that ends without close_notify is passed on
# to the plaintext side as a reset, not as a clean end, and logged.
#  1. gnutls-cli, mid-session on the unwrap route, is killed (kill -9: the
#     kernel closes its TCP connection, no close_notify): the plaintext
#     server's read fails with ECONNRESET; the close reason says
#     "truncated".
#  2. the same with openssl s_client.
#  3. the other way: a wrap route's TLS server (openssl s_server) is killed
#     mid-session: the plaintext client's read fails with ECONNRESET.
. "$TESTLIB"

ports A B C S
cat >routes.ini <<EOF
[unwrap]
$(tls_accept "$B")
connect = tcp://127.0.0.1:$C

[to-openssl]
accept = tcp://127.0.0.1:$A
connect = tls://127.0.0.1:$S
ca = $CERTS/ca.pem
server_name = localhost
EOF
gw_start gw routes.ini

# killed N CMD...: run the TLS client CMD with input from a fifo kept open,
# send a line, kill -9 the client once the server has it; the server must
# see a reset and the route log a truncation.
killed() {
	_n=$1
	shift
	bg "srv$_n" "$HELPERS/xfer" -l -w 127.0.0.1 "$C" /dev/null "got$_n"
	_srv=$BG_PID
	wait_port "$C"
	mkfifo "in$_n"
	"$@" <"in$_n" >"client$_n.out" 2>"client$_n.err" &
	_cli=$!
	track "$_cli"
	exec 3>"in$_n"
	echo "before the cut $_n" >&3
	wait_log "got$_n" "^before the cut $_n\$"
	_closes=$(count_lines gw.log 'route=unwrap .*event=close')
	kill -9 "$_cli"
	wait_exit "$_srv" 10
	_rc=$?
	exec 3>&-
	expect_rc 3 "$_rc" "plaintext server after the client was killed ($(cat "srv$_n.err"))"
	log_has "srv$_n.err" 'reset'
	wait_count gw.log 'route=unwrap .*event=close' $((_closes + 1))
	_line=$(grep -E 'route=unwrap .*event=close' gw.log | tail -n 1)
	echo "$_line" | grep -Eqi 'reason=.*truncat' ||
	    fail "close after a truncated TLS stream: $_line"
	log_lacks gw.log 'route=unwrap .*event=close reason=eof'
	note "$_line"
}

killed 1 gnutls-cli -p "$B" --x509cafile "$CERTS/ca.pem" \
    --x509certfile "$CERTS/client.pem" --x509keyfile "$CERTS/client.key" \
    localhost
killed 2 openssl s_client -connect "127.0.0.1:$B" -quiet \
    -CAfile "$CERTS/ca.pem" -cert "$CERTS/client.pem" \
    -key "$CERTS/client.key"

# 3. The TLS server dies under a wrap route. (s_server ends its session
# at the end of its input: give it a fifo that stays open.)
mkfifo s_server.in
openssl s_server -accept "127.0.0.1:$S" -naccept 1 -quiet \
    -cert "$CERTS/server.pem" -key "$CERTS/server.key" \
    <s_server.in >s_server.out 2>s_server.err &
s_server=$!
track "$s_server"
exec 4>s_server.in
wait_port "$S"
bg cli "$HELPERS/xfer" -w 127.0.0.1 "$A" /dev/null out
cli=$BG_PID
wait_log gw.log 'route=to-openssl .*event=tls'
kill -9 "$s_server"
wait_exit "$cli" 10
rc=$?
expect_rc 3 "$rc" "plaintext client after its TLS server was killed ($(cat cli.err))"
wait_log gw.log 'route=to-openssl .*event=close'
log_has gw.log 'route=to-openssl .*event=close .*reason=.*[Tt]runcat'
