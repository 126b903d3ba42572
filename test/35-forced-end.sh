#!/bin/sh
# 35-forced-end: an end the gateway forces is a reset on the plaintext
# side, never a FIN that an application could take for a complete
# transfer.
#  1. shutdown_grace = 1 runs out under a paced upload through wrap and
#     unwrap: the plaintext client and the plaintext server both see a
#     reset (not an end of stream), the close reason is "shutdown", and
#     tlsgate exits 0.
#  2. A wrap route whose outgoing verification fails (the server's
#     certificate is for wrong.example) while its client waits silently:
#     the client sees a reset, not an end of stream. The same when the
#     outgoing connection is refused.
#  3. shutdown_grace = 1 runs out while a session is still connecting (to
#     a server whose SYNs are dropped, connect_timeout = 30): the session
#     stops at once (close reason "shutdown", its client reset) and
#     tlsgate exits within a second or two of the grace, with no session
#     left unfinished.
. "$TESTLIB"

ports A B C A2 B2 D A3 A4 F
{ printf '[gateway]\nshutdown_grace = 1\n\n'; demo_routes "$A" "$B" "$C"; } \
    >routes1.ini
gw_start gw1 routes1.ini
gw1=$GW_PID

# 1. The grace cuts a transfer: 4 MiB at 256 KiB/s would take 16 s.
upload_start 4194304 262144 "$C" "$A"
kill -TERM "$gw1"
wait_exit "$gw1" 8
expect_rc 0 $? "tlsgate after SIGTERM"
wait_exit "$UP_CLI" 5
rc=$?
grep -q 'received [0-9]* bytes, reset' cli.err ||
    fail "the plaintext client saw no reset: $(cat cli.err)"
expect_rc 3 "$rc" "the plaintext client (xfer) cut by the grace"
wait_exit "$UP_SRV" 5
grep -q 'received [0-9]* bytes, reset' srv.err ||
    fail "the plaintext server saw no reset: $(cat srv.err)"
log_has gw1.log 'route=(un)?wrap .*event=close reason=shutdown '
note "grace end: client $(grep received cli.err), server $(grep received srv.err)"

# 2. A wrap route refused by its server's name, and one whose server is
# down; each client connects and waits 10 s before it would send.
cat >routes2.ini <<EOF
[wrap]
accept = tcp://127.0.0.1:$A2
$(tls_connect "$B2")

[wrongname]
accept = tls://127.0.0.1:$B2
cert = $CERTS/wrongname.pem
key = $CERTS/wrongname.key
connect = tcp://127.0.0.1:$D

[wrap-down]
accept = tcp://127.0.0.1:$A3
$(tls_connect "$D")
EOF
gw_start gw2 routes2.ini

# reset_seen PORT WHAT: a silent client of PORT is reset, long before it
# would send anything.
reset_seen() {
	start=$(now_ms)
	timeout 8 "$HELPERS/xfer" -p 10000 127.0.0.1 "$1" /dev/null \
	    "out$1" 2>"cli$1.err"
	rc=$?
	took=$(($(now_ms) - start))
	grep -q 'received 0 bytes, reset' "cli$1.err" ||
	    fail "$2: the client saw no reset: $(cat "cli$1.err")"
	expect_rc 3 "$rc" "$2: the client (xfer)"
	[ "$took" -lt 5000 ] || fail "$2: the reset came after $took ms"
}
reset_seen "$A2" "verification failed"
log_has gw2.log 'route=wrap .*event=reject reason="certificate name mismatch'
reset_seen "$A3" "server down"
log_has gw2.log 'route=wrap-down .*event=reject reason="?connect .*refused'

# 3. The grace runs out while a session connects.
no_answer "$F"
cat >routes3.ini <<EOF
[gateway]
shutdown_grace = 1

[forward]
accept = tcp://127.0.0.1:$A4
connect = tcp://127.0.0.1:$F
connect_timeout = 30
EOF
gw_start gw3 routes3.ini
gw3=$GW_PID
bg cli3 "$HELPERS/xfer" -p 60000 127.0.0.1 "$A4" /dev/null out3
cli3=$BG_PID
_connecting() {	# the gateway's own connection (no_answer leaves one of
	# its fillers in SYN-SENT too)
	ss -tnpH state syn-sent "dport = :$F" 2>/dev/null | grep -q "pid=$gw3,"
}
wait_for 10 "the gateway to connect to $F" _connecting
kill -TERM "$gw3"
start=$(now_ms)
wait_exit "$gw3" 10
rc=$?
took=$(($(now_ms) - start))
expect_rc 0 "$rc" "tlsgate after SIGTERM with a session connecting"
[ "$took" -lt 3500 ] ||
    fail "exited $took ms after SIGTERM (grace 1 s): the connecting session was not stopped"
log_has gw3.log 'route=forward .*event=close reason=shutdown '
log_lacks gw3.log 'unfinished='
wait_exit "$cli3" 5
grep -q 'reset' cli3.err || fail "the connecting session's client saw no reset: $(cat cli3.err)"
note "a connecting session at the end of the grace: exit $took ms after SIGTERM"
