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
upload_start 400000 100000 "$C" "$A"
echoes "$D" "through old"

cp routes2.ini routes.ini
kill -HUP "$GW_PID"
wait_port "$E"
wait_for 5 "the removed route's port to close" _refused "$D"
echoes "$E" "through new"
echoes "$A" "unwrap now connects to the echo server"
proc_alive "$UP_CLI" || fail "the long session ended at the reload: $(cat cli.err)"

cp bad.ini routes.ini
kill -HUP "$GW_PID"
wait_log gw.log "routes\\.ini:$badline: \\[new\\] bogus: "
echoes "$E" "still through new"
echoes "$A" "still to the echo server"
_listening "$D" && fail "the bad file brought the old route back"

upload_done "the long session"
log_has gw.log 'route=unwrap .*event=close reason=eof up=400000 down=24 '
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
