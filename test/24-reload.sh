#!/bin/sh
# 24-reload: SIGHUP reads the file again.
#  - A valid new file: its new route's listener opens, the removed route's
#    listener closes, and new sessions of a changed route use the new
#    settings (unwrap now connects elsewhere), while a session that was
#    live across the reload goes on untouched to its end (same bytes,
#    reason=eof).
#  - An invalid file: the error is logged as FILE:LINE: [route] key: ...,
#    and the previous routes keep serving.
# Finally SIGTERM: exit 0.
. "$TESTLIB"

ports A B C D E G
demo_routes "$A" "$B" "$C" >base.ini
{
	cat base.ini
	printf '\n[old]\naccept = tcp://127.0.0.1:%s\nconnect = tcp://127.0.0.1:%s\n' "$D" "$G"
} >routes1.ini
{
	sed "s|^connect = tcp://127.0.0.1:$C\$|connect = tcp://127.0.0.1:$G|" base.ini
	printf '\n[new]\naccept = tcp://127.0.0.1:%s\nconnect = tcp://127.0.0.1:%s\n' "$E" "$G"
} >routes2.ini
{ cat routes2.ini; echo "bogus = 1"; } >bad.ini
badline=$(wc -l <bad.ini)

cp routes1.ini routes.ini
gw_start gw routes.ini
bg echo "$HELPERS/sink" -e 127.0.0.1 "$G"
wait_port "$G"

# echoes PORT TEXT: a client of PORT gets TEXT back
echoes() {
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "$2" 2>echo-client.err) ||
	    fail "client of port $1: $(cat echo-client.err)"
	[ "$got" = "$2" ] || fail "client of port $1 got '$got', not '$2'"
}
_refused() {
	"$HELPERS/halfclose" 127.0.0.1 "$1" "x" >/dev/null 2>refused.err
	[ $? -eq 2 ] && grep -q refused refused.err
}

# A session that lives across both reloads: 400 kB at 100 kB/s.
head -c 400000 /dev/urandom >up.bin
echo "answer to the long session" >answer
bg srv "$HELPERS/xfer" -l -w 127.0.0.1 "$C" answer got
srv=$BG_PID
wait_port "$C"
bg cli "$HELPERS/xfer" -r 100000 127.0.0.1 "$A" up.bin out
cli=$BG_PID
_flowing() {
	[ -s got ]
}
wait_for 10 "the long session to flow" _flowing
echoes "$D" "through old"

cp routes2.ini routes.ini
kill -HUP "$GW_PID"
wait_port "$E"
wait_for 5 "the removed route's port to close" _refused "$D"
echoes "$E" "through new"
echoes "$A" "unwrap now connects to the echo server"
proc_alive "$cli" || fail "the long session ended at the reload: $(cat cli.err)"

cp bad.ini routes.ini
kill -HUP "$GW_PID"
wait_log gw.log "routes\\.ini:$badline: \\[new\\] bogus: "
echoes "$E" "still through new"
echoes "$A" "still to the echo server"
_listening "$D" && fail "the bad file brought the old route back"

wait_exit "$cli" 15 || fail "long session client: $(cat cli.err)"
wait_exit "$srv" 5 || fail "long session server: $(cat srv.err)"
same_file up.bin got "long session upload"
same_file answer out "long session answer"
log_has gw.log 'route=unwrap .*event=close reason=eof up=400000 down=27 '
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
