#!/bin/sh
# 30-fd-limit: running out of file descriptors refuses new sessions, never
# the process, and accepting resumes by itself. tlsgate runs with 32
# descriptors and a tcp->tcp route to an echo server; 24 idle clients (2
# descriptors each in the gateway) exhaust them: the gateway logs a
# refusal naming the cause and stays up. Once those clients are gone, a new
# client is served again without any help.
. "$TESTLIB"

command -v prlimit >/dev/null || skip "no prlimit"
ports L G
printf '[fwd]\naccept = tcp://127.0.0.1:%s\nconnect = tcp://127.0.0.1:%s\n' \
    "$L" "$G" >routes.ini
bg echo "$HELPERS/sink" -e 127.0.0.1 "$G"
wait_port "$G"
GW_PREFIX="prlimit --nofile=32:32 --" gw_start gw routes.ini
gw=$GW_PID

echoes() {	# echoes PORT TEXT: a client of PORT gets TEXT back
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "$2" 2>echo-client.err) ||
	    fail "client of port $1: $(cat echo-client.err)"
	[ "$got" = "$2" ] || fail "client of port $1 got '$got', not '$2'"
}
echoes "$L" "before"

idle=
i=0
while [ "$i" -lt 24 ]; do
	bg "idle$i" "$HELPERS/xfer" -p 60000 127.0.0.1 "$L" /dev/null "idle$i.got"
	idle="$idle $BG_PID"
	i=$((i + 1))
done
wait_log gw.log 'event=reject .*reason=.*(Too many open files|descriptor)' 10
proc_alive "$gw" || fail "tlsgate died when it ran out of descriptors"
note "$(grep -E 'event=reject' gw.log | head -n 1)"

# Some were refused and have ended already: signal only those still ours.
# shellcheck disable=SC2086
stop $idle
for p in $idle; do
	wait_for 5 "idle client $p to end" _gone "$p"
done
echoes "$L" "after"
proc_alive "$gw" || fail "tlsgate died"
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
