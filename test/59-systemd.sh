#!/bin/sh
# 59-systemd: systemd's readiness protocol and socket activation by name.
#  1. With NOTIFY_SOCKET (a datagram socket socat reads), tlsgate sends, in
#     this order: READY=1 once listening (its listeners are up by then);
#     RELOADING=1 with MONOTONIC_USEC= (microseconds of CLOCK_MONOTONIC:
#     two reloads are as far apart in it as on the wall clock) and READY=1
#     again at a SIGHUP that succeeds, and the same at one whose file is
#     broken; STOPPING=1 at SIGTERM, then exit 0. Every state message
#     carries STATUS=N sessions live; between them, STATUS= alone follows
#     the live sessions: "2 sessions live" while a session through the
#     demo's wrap+unwrap is held open, "1 session live" for one through a
#     plain route, "0 sessions live" again after each has ended, never the
#     same count twice in a row. A start that fails to bind sends nothing.
#  2. Without NOTIFY_SOCKET the gateway starts, serves and exits 0.
#  3. Under systemd-socket-activate (skipped if missing) with three
#     sockets named unwrap:stray:other (--fdname), the socket named unwrap,
#     on a port that is not the unwrap route's address, serves the unwrap
#     route ("addr=<its configured address> from=systemd"; nothing listens
#     on the configured address) and keeps doing so across a reload; the
#     socket named stray (no such route) and the socket named other, bound
#     to the unwrap route's own address, are closed with a warning naming
#     them: a name wins over an address. NOTIFY_SOCKET passed with -E gets
#     READY=1 and STOPPING=1.
#  4. Names are matched before addresses: a socket named unwrap on the
#     (earlier) wrap route's address goes to unwrap, and wrap's bind fails.
#  5. A name list that does not have one name per socket is ignored with a
#     warning; the sockets are then matched by address alone.
# The unit (dist/tlsgate.service.in) says Type=notify and NotifyAccess=main;
# test 40 verifies the installed unit with systemd-analyze.
. "$TESTLIB"

command -v socat >/dev/null || skip "no socat"
unset NOTIFY_SOCKET LISTEN_FDS LISTEN_PID LISTEN_FDNAMES

unit=$SRCDIR/dist/tlsgate.service.in
log_has "$unit" '^Type=notify$'
log_has "$unit" '^NotifyAccess=main$'

# sd_notify wants an absolute path (or an abstract one) within sun_path.
[ "${#PWD}" -lt 96 ] || skip "test directory too deep for a unix socket path"

# notify_listen NAME: a datagram socket $PWD/NAME.sock; socat -v writes
# every datagram it receives to NAME.err, after a header line of its own
# ("> DATE  length=N from=I to=J"); the datagrams end in no newline.
notify_listen() {
	bg "$1" socat -u -v UNIX-RECV:"$PWD/$1.sock" /dev/null
	wait_for 5 "socat's socket $1.sock" test -S "$1.sock"
}

# msgs NAME: the datagrams NAME.sock received, one a line, their lines
# joined by "|" (e.g. "READY=1|STATUS=0 sessions live").
msgs() {
	{ cat "$1.err"; echo; } |
	    sed 's/> [0-9]\{4\}\/[0-9][0-9]\/[0-9][0-9] [0-9:.]*  length=[0-9]* from=[0-9]* to=[0-9]*$/\n@@/' |
	    tr '\n' '|' | sed 's/|@@|/\n/g' | sed '/^$/d; s/|$//'
}

# states NAME: the state changes of msgs NAME in order, space-separated
states() {
	msgs "$1" | grep -Eo '^(READY|RELOADING|STOPPING)=1' | tr '\n' ' ' |
	    sed 's/ $//'
}

_states_are() {
	[ "$(states "$1")" = "$2" ]
}

# expect_states NAME STATES...: wait (5 s) until the state changes NAME.sock
# received are exactly STATES
expect_states() {
	_n=$1
	shift
	poll_for 5 _states_are "$_n" "$*" ||
	    fail "notify messages: state changes '$(states "$_n")'," \
	    "expected '$*'; all of them:
$(msgs "$_n")"
}

# last_status NAME: the STATUS= of the last message NAME.sock received
last_status() {
	msgs "$1" | sed -n 's/.*STATUS=\([^|]*\).*/\1/p' | tail -n 1
}

_status_is() {
	[ "$(last_status "$1")" = "$2" ]
}

expect_status() {	# expect_status NAME TEXT WHAT: wait (5 s) for STATUS=TEXT
	poll_for 5 _status_is "$1" "$2" ||
	    fail "$3: no STATUS=$2 after 5s; the messages:
$(msgs "$1")"
}

# echoes PORT TEXT: a client of PORT gets TEXT back
echoes() {
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "$2" \
	    2>echo-client.err) || fail "client of port $1: $(cat echo-client.err)"
	[ "$got" = "$2" ] || fail "client of port $1 got '$got', not '$2'"
}

# --- 1. the readiness protocol ------------------------------------------

ports A B C D
{
	demo_routes "$A" "$B" "$C"
	printf '\n[plain]\naccept = tcp://127.0.0.1:%s\n' "$D"
	printf 'connect = tcp://127.0.0.1:%s\n' "$C"
} >good.ini
cp good.ini routes.ini
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

notify_listen n
NOTIFY_SOCKET=$PWD/n.sock
export NOTIFY_SOCKET
# A start that cannot bind its last listener (the echo server has its
# port) exits 1 without a word to NOTIFY_SOCKET (the check of the first
# message below).
{ cat good.ini; printf '\n[busy]\naccept = tcp://127.0.0.1:%s\n' "$C"
  printf 'connect = tcp://127.0.0.1:%s\n' "$C"; } >busy.ini
timeout 10 "$TLSGATE" -c busy.ini >busy.out 2>busy.err
expect_rc 1 $? "tlsgate with a port in use"
log_has busy.err "route=busy .*event=listen .*Address already in use"
gw_start gw routes.ini
unset NOTIFY_SOCKET
expect_states n READY=1
for p in "$A" "$B" "$D"; do
	_listening "$p" || fail "READY=1 before port $p listens"
done
[ "$(msgs n)" = "READY=1|STATUS=0 sessions live" ] ||
    fail "the first message is not READY=1 with STATUS=0: $(msgs n)"

hup1=$(now_ms)
kill -HUP "$GW_PID"
wait_log gw.log 'event=reload result=ok'
expect_states n READY=1 RELOADING=1 READY=1

# A session held open through wrap and unwrap: two live sessions.
bg hold "$HELPERS/xfer" -p 60000 127.0.0.1 "$A" /dev/null hold.got
wait_log gw.log 'route=unwrap .*event=(connect|connected)' 10
expect_status n "2 sessions live" "a session through wrap+unwrap"
stop "$(pid_of hold)"
wait_count gw.log 'event=close' 2
expect_status n "0 sessions live" "after the session through wrap+unwrap"

# One through the plain route: one live session.
bg hold1 "$HELPERS/xfer" -p 60000 127.0.0.1 "$D" /dev/null hold1.got
wait_log gw.log 'route=plain .*event=(connect|connected)' 10
expect_status n "1 session live" "a session through the plain route"
stop "$(pid_of hold1)"
wait_count gw.log 'event=close' 3
expect_status n "0 sessions live" "after the session through the plain route"

{ cat good.ini; echo "bogus = 1"; } >routes.ini
hup2=$(now_ms)
kill -HUP "$GW_PID"
wait_log gw.log 'event=reload result=failed'
expect_states n READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1
echoes "$D" "still serving after the failed reload"

gw_stop gw
expect_rc 0 $? "tlsgate (NOTIFY_SOCKET) after SIGTERM"
expect_states n READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1

# Every message: a state change with STATUS=, RELOADING=1 with
# MONOTONIC_USEC=, or STATUS= alone, never repeating the count before it.
msgs n >msgs.txt
note "notify messages: $(tr '\n' ' ' <msgs.txt)"
prev=
while IFS= read -r m; do
	case $m in
	"RELOADING=1|MONOTONIC_USEC="*)
		case ${m#*=*=} in
		'' | *[!0-9]*) fail "bad MONOTONIC_USEC: $m" ;;
		esac ;;
	"READY=1|STATUS="* | "STOPPING=1|STATUS="*)
		prev=${m#*STATUS=} ;;
	"STATUS="*)
		[ "${m#STATUS=}" != "$prev" ] ||
		    fail "STATUS=$prev sent twice in a row: $(tr '\n' ' ' <msgs.txt)"
		prev=${m#STATUS=} ;;
	*)
		fail "unexpected notify message '$m'" ;;
	esac
	case $m in
	*"STATUS="*) case ${m#*STATUS=} in
		"1 session live" | [02-9]" sessions live" | [1-9][0-9]*" sessions live") ;;
		*) fail "bad STATUS= in '$m'" ;;
		esac ;;
	esac
done <msgs.txt
# The two MONOTONIC_USEC are as far apart as the two SIGHUPs (+-0.5 s).
# shellcheck disable=SC2046
set -- $(sed -n 's/^RELOADING=1|MONOTONIC_USEC=//p' msgs.txt)
[ "$#" -eq 2 ] || fail "expected two MONOTONIC_USEC, got: $*"
mono=$((($2 - $1) / 1000)) wall=$((hup2 - hup1))
if [ "$mono" -le $((wall - 500)) ] || [ "$mono" -ge $((wall + 500)) ]; then
	fail "MONOTONIC_USEC advanced ${mono} ms between the reloads, the" \
	    "wall clock ${wall} ms"
fi

# --- 2. without NOTIFY_SOCKET -----------------------------------------

cp good.ini routes.ini
gw_start plain routes.ini
echoes "$A" "no NOTIFY_SOCKET"
gw_stop plain
expect_rc 0 $? "tlsgate (no NOTIFY_SOCKET) after SIGTERM"

# --- 3. socket activation by name ---------------------------------------

command -v systemd-socket-activate >/dev/null || {
	note "systemd-socket-activate is not installed: activation not tested"
	exit 0
}
# wrap (bound by tlsgate) connects to X, the socket named unwrap; the
# unwrap route's own address is U, where the socket named other is.
ports W X U Z
{
	printf '[wrap]\naccept = tcp://127.0.0.1:%s\n' "$W"
	tls_connect "$X"
	printf '\n[unwrap]\n'
	tls_accept "$U"
	printf 'connect = tcp://127.0.0.1:%s\n' "$C"
} >act.ini
notify_listen n2
bg act systemd-socket-activate -l "127.0.0.1:$X" -l "127.0.0.1:$Z" \
    -l "127.0.0.1:$U" --fdname=unwrap:stray:other \
    -E NOTIFY_SOCKET="$PWD/n2.sock" "$TLSGATE" -c act.ini
act=$BG_PID
wait_port "$X"
wait_port "$Z"
wait_port "$U"
# The first connection (to the stray socket, which tlsgate closes: this
# one is reset) starts tlsgate.
bg trigger timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$Z" start
wait_log act.err 'event=ready' 10
wait_exit "$(pid_of trigger)" 10
expect_states n2 READY=1
log_has act.err "route=unwrap .*event=listen addr=tls://127.0.0.1:$U from=systemd\$"
log_has act.err "route=wrap .*event=listen addr=tcp://127.0.0.1:$W\$"
log_has act.err 'warn .*event=listen .*\(fd [0-9]+, stray\) matches no route'
log_has act.err 'warn .*event=listen .*\(fd [0-9]+, other\) matches no route'
_listening "$Z" && fail "the socket named stray is still listening"
_listening "$U" && fail "the unwrap route's configured address listens too"

echoes "$W" "through the socket named unwrap"
wait_log act.err 'route=unwrap .*event=close reason=eof'
kill -HUP "$act"
wait_log act.err 'event=reload result=ok'
expect_states n2 READY=1 RELOADING=1 READY=1
echoes "$W" "still through it after a reload"
wait_count act.err 'route=unwrap .*event=close reason=eof' 2
log_lacks act.err 'error'

kill -TERM "$act"
wait_exit "$act" 15
expect_rc 0 $? "tlsgate (socket-activated) after SIGTERM"
expect_states n2 READY=1 RELOADING=1 READY=1 STOPPING=1
note "activated, notify messages: $(msgs n2 | tr '\n' ' ')"

# --- 4. names are matched before addresses ------------------------------

# A socket named unwrap, bound to the earlier wrap route's address, is the
# unwrap route's: wrap then finds its address taken and the start fails.
ports V
{
	printf '[wrap]\naccept = tcp://127.0.0.1:%s\n' "$V"
	tls_connect "$U"
	printf '\n[unwrap]\n'
	tls_accept "$U"
	printf 'connect = tcp://127.0.0.1:%s\n' "$C"
} >act4.ini
bg act4 systemd-socket-activate -l "127.0.0.1:$V" --fdname=unwrap \
    "$TLSGATE" -c act4.ini
act4=$BG_PID
wait_port "$V"
bg trigger4 timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$V" start
wait_exit "$act4" 15
expect_rc 1 $? "tlsgate with unwrap's socket on wrap's address"
log_has act4.err "route=unwrap .*event=listen addr=tls://127.0.0.1:$U from=systemd\$"
log_has act4.err "route=wrap .*event=listen addr=tcp://127.0.0.1:$V reason=\"Address already in use\""
wait_exit "$(pid_of trigger4)" 10

# --- 5. a name list that does not fit is ignored, with a warning --------

# Three names for two sockets: the sockets are matched by address, so the
# one on wrap's address serves wrap and the other is closed, unnamed.
ports Y
bg act5 systemd-socket-activate -l "127.0.0.1:$V" -l "127.0.0.1:$Y" \
    --fdname=unwrap:stray:extra "$TLSGATE" -c act4.ini
act5=$BG_PID
wait_port "$V"
wait_port "$Y"
bg trigger5 timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$Y" start
wait_log act5.err 'event=ready' 10
wait_exit "$(pid_of trigger5)" 10
log_has act5.err 'warn .*event=listen reason="LISTEN_FDNAMES does not name the 2 passed sockets; names ignored"'
log_has act5.err "route=wrap .*event=listen addr=tcp://127.0.0.1:$V from=systemd\$"
log_has act5.err "route=unwrap .*event=listen addr=tls://127.0.0.1:$U\$"
log_has act5.err 'warn .*event=listen .*\(fd [0-9]+\) matches no route'
_listening "$Y" && fail "the unmatched passed socket is still listening"
echoes "$V" "through a passed socket matched by address"
kill -TERM "$act5"
wait_exit "$act5" 15
expect_rc 0 $? "tlsgate (names ignored) after SIGTERM"
exit 0
