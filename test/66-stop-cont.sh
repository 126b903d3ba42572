#!/bin/sh
# 66-stop-cont: a gateway stopped and continued (SIGSTOP, SIGCONT: a
# Ctrl-Z and fg in a terminal) keeps its idle sessions. 300 sessions
# through wrap and unwrap in one gateway (mutual TLS), each having echoed
# 32 bytes, are held open and idle (test/helpers/load conc -w); the
# gateway is stopped for half a second and continued, twice. The stop
# interrupts every blocked read of the copy threads (EINTR, since their
# sockets have a receive timeout, idle_timeout): each must wait again, not
# take it for an error or an end. Then every session still ends cleanly,
# its close saying reason=eof up=32 down=32 on both routes, and nothing is
# refused. VmRSS before and after the stops is printed (# stop-cont: ...):
# a TLS end's thread waits on its socket, not in GnuTLS's own read, which
# would hold a record buffer of 16 KiB a thread (how much of it is
# resident depends on what malloc has free, so it is not judged here;
# make bench's conditions showed 4 KiB a thread before it was mended).
# timeout: 120
. "$TESTLIB"

conc=300
case $(sanitizer) in
tsan) conc=100 ;;
esac
need_fds $((4 * conc + 64))

ports A B C
demo_routes "$A" "$B" "$C" >routes.ini
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e -b 4096 127.0.0.1 "$C"
wait_port "$C"

bg conc timeout 90 "$HELPERS/load" conc -w release 127.0.0.1 "$A" "$conc" 32
load=$BG_PID
wait_log conc.out "^open $conc\$" 60
sleep 1		# the last sessions' threads back in their waits
rss0=$(proc_rss "$gw")
for _ in 1 2; do
	stop -STOP "$gw"
	sleep 0.5
	stop -CONT "$gw"
	sleep 0.5
done
proc_alive "$gw" || fail "tlsgate died when stopped and continued"
figure "stop-cont: $conc idle chain sessions: VmRSS $rss0 KiB before two stops, $(proc_rss "$gw") KiB after"

: >release
wait_exit "$load" 60 || fail "conc: $(cat conc.out) $(head -n 5 conc.err)"
for r in wrap unwrap; do
	wait_count gw.log "route=$r .*event=close" "$conc" 30
done
closed_clean gw.log "$conc" 32
log_lacks gw.log 'event=reject'
proc_alive "$gw" || fail "tlsgate died"
