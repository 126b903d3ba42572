#!/bin/sh
# 14-halfclose: end of stream travels as a half-close, and the other
# direction keeps flowing, through wrap and unwrap.
#  1. The client sends a request and shuts its write side; the server reads
#     to the end, then sends a 1 MiB answer and closes: all of it arrives.
#  2. The other way round: the server sends its 1 MiB at once and shuts its
#     write side; the client sends its request only after that end has
#     reached it: the request still reaches the server.
. "$TESTLIB"

ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
gw_start gw routes.ini

head -c 1048576 /dev/urandom >answer
head -c 100000 /dev/urandom >request

# 1. client ends first
bg srv1 "$HELPERS/xfer" -l -w 127.0.0.1 "$C" answer got-request1
srv1=$BG_PID
wait_port "$C"
timeout 20 "$HELPERS/halfclose" 127.0.0.1 "$A" <request >got-answer1 \
    2>cli1.err || fail "client: $(cat cli1.err)"
wait_exit "$srv1" 10 || fail "server: $(cat srv1.err)"
same_file request got-request1 "request (client ends first)"
same_file answer got-answer1 "answer (client ends first)"
wait_count gw.log 'route=wrap .*event=close' 1
wait_count gw.log 'route=unwrap .*event=close' 1
log_has gw.log 'route=wrap .*event=close reason=eof up=100000 down=1048576 '
log_has gw.log 'route=unwrap .*event=close reason=eof up=100000 down=1048576 '

# 2. server ends first
bg srv2 "$HELPERS/xfer" -l 127.0.0.1 "$C" answer got-request2
srv2=$BG_PID
wait_port "$C"
timeout 20 "$HELPERS/xfer" -w 127.0.0.1 "$A" request got-answer2 \
    2>cli2.err || fail "client: $(cat cli2.err)"
wait_exit "$srv2" 10 || fail "server: $(cat srv2.err)"
same_file request got-request2 "request (server ends first)"
same_file answer got-answer2 "answer (server ends first)"
wait_count gw.log 'route=wrap .*event=close' 2
wait_count gw.log 'route=unwrap .*event=close' 2
[ "$(count_lines gw.log 'event=close reason=eof up=100000 down=1048576 ')" -eq 4 ] ||
    fail "expected 4 clean closes with the byte counts"
log_lacks gw.log 'event=reject'
