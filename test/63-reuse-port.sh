#!/bin/sh
# 63-reuse-port: several processes on one address (reuse_port = yes), in a
# network namespace of the test's own (so that net.ipv4.tcp_migrate_req
# can be set for it alone; skipped where unshare -n is not permitted).
#  1. -t -v says the route's port may be shared; reuse_port on a unix:
#     accept is an error (exit 2). Two processes with reuse_port = yes on
#     the same address both start; a third whose route lacks it fails
#     (exit 1, "Address already in use").
#  2. 400 sessions one after another (test/helpers/load, each echoed by
#     test/helpers/sink): all succeed, and each process served some.
#  3. With tcp_migrate_req = 1, two loaders run while the processes are
#     restarted one after the other, four times (SIGTERM, its exit, a new
#     process on the same address): every session of the loaders
#     succeeds (load exits 0, failed=0), no gateway logs a refusal, and the
#     restarted processes served sessions too.
#  4. A SIGHUP that turns reuse_port off for the address keeps the socket
#     and warns "reuse_port takes effect at the next start"; the process
#     goes on serving.
#  5. The same restarts with tcp_migrate_req = 0, measured, not judged:
#     the sessions reset in the instant between a stopping process's last
#     accept and its close (# reuse_port: ... line).
# timeout: 240
if [ -z "${TLSGATE_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] &&
    unshare -n true 2>/dev/null; then
	TLSGATE_NETNS=1 exec unshare -n -- sh -c \
	    'ip link set lo up && exec sh "$0"' "$0"
fi
. "$TESTLIB"

[ -n "${TLSGATE_NETNS:-}" ] ||
    skip "needs a network namespace of its own (root and unshare -n)"
[ -w /proc/sys/net/ipv4/tcp_migrate_req ] ||
    skip "no net.ipv4.tcp_migrate_req (Linux 5.14 and later)"

ports P S
bg sink "$HELPERS/sink" -e 127.0.0.1 "$S"
wait_port "$S"
route() {	# route REUSE: the route on P, reuse_port = REUSE
	printf '[gateway]\nshutdown_grace = 5\n\n[fwd]\n'
	printf 'accept = tcp://127.0.0.1:%s\nconnect = tcp://127.0.0.1:%s\n' \
	    "$P" "$S"
	printf 'reuse_port = %s\n' "$1"
}
route yes >reuse.ini
route no >plain.ini

# --- 1. configuration, two processes, a third without reuse_port -----------

gw_run explain -t -v -c reuse.ini
expect_rc 0 "$rc" "-t -v on reuse.ini: $(cat explain.err)"
grep -q 'fwd: .*(a port it may share with other processes)' explain.out ||
    fail "-t -v does not explain reuse_port: $(cat explain.out)"
printf '[u]\naccept = unix:%s/u.sock\nconnect = tcp://127.0.0.1:%s\nreuse_port = yes\n' \
    "$PWD" "$S" >unix.ini
gw_run unix -t -c unix.ini
expect_rc 2 "$rc" "-t on reuse_port on a unix: accept"
log_has unix.err '^unix\.ini:4: \[u\] reuse_port: not on a unix: accept$'

gen=0
start() {	# start VAR: a new process with reuse.ini; its name in VAR
	gen=$((gen + 1))
	gw_start "g$gen" reuse.ini
	eval "$1=g$gen"
}
start a
start b
gw_run third -c plain.ini
expect_rc 1 "$rc" "a third process without reuse_port"
log_has third.err 'event=listen addr=tcp://127\.0\.0\.1:[0-9]+ reason="Address already in use"'

# --- 2. both serve ------------------------------------------------------------

opened() {	# opened NAME: sessions NAME's log shows opened
	count_lines "$1.log" 'route=fwd session=[0-9]+ event=open '
}
timeout 60 "$HELPERS/load" seq 127.0.0.1 "$P" 400 >seq.out 2>seq.err ||
    fail "400 sessions: $(cat seq.out seq.err)"
[ "$(opened "$a")" -gt 0 ] && [ "$(opened "$b")" -gt 0 ] ||
    fail "not spread: $(opened "$a") and $(opened "$b") of 400 sessions"
figure "reuse_port: 400 sessions spread $(opened "$a") / $(opened "$b")"

# --- 3. restarts under load ----------------------------------------------------

# How many sessions make a load of about 12 s here (at least 3,000).
rate=$(sed -n 's/.* rate=\([0-9][0-9]*\)\/s.*/\1/p' seq.out)
n=$((${rate:-250} * 6))
[ "$n" -ge 3000 ] || n=3000

# restarts MIGRATE: tcp_migrate_req = MIGRATE; two loaders of n sessions
# each while a and b are restarted in turn, four times. Sets failed (the
# loaders' failed sessions), restarted (restarts done while both loaders
# ran), refusals (reject lines in the gateways' logs since) and served
# (the sessions the processes started in the restarts opened).
restarts() {
	echo "$1" >/proc/sys/net/ipv4/tcp_migrate_req ||
	    fail "cannot set tcp_migrate_req = $1"
	_first=$((gen + 1))
	bg "load$1a" timeout 200 "$HELPERS/load" seq 127.0.0.1 "$P" "$n"
	_l1=$BG_PID
	bg "load$1b" timeout 200 "$HELPERS/load" seq 127.0.0.1 "$P" "$n"
	_l2=$BG_PID
	sleep 0.5
	restarted=0
	for _i in 1 2 3 4; do
		if [ $((_i % 2)) -eq 1 ]; then _old=$a; else _old=$b; fi
		gw_stop "$_old" 30 || fail "$_old exited with status $?"
		if [ $((_i % 2)) -eq 1 ]; then start a; else start b; fi
		proc_alive "$_l1" && proc_alive "$_l2" &&
		    restarted=$((restarted + 1))
		sleep 0.3
	done
	wait_exit "$_l1" 200 || true
	wait_exit "$_l2" 200 || true
	failed=0
	for _l in "load$1a" "load$1b"; do
		_f=$(sed -n 's/.* failed=\([0-9][0-9]*\) .*/\1/p' "$_l.out")
		[ -n "$_f" ] || fail "$_l printed no result: $(cat "$_l.out" "$_l.err")"
		failed=$((failed + _f))
	done
	refusals=0 served=0
	_g=$_first
	while [ "$_g" -le "$gen" ]; do
		refusals=$((refusals + $(count_lines "g$_g.log" 'event=reject')))
		served=$((served + $(opened "g$_g")))
		_g=$((_g + 1))
	done
}

restarts 1
[ "$failed" -eq 0 ] ||
    fail "tcp_migrate_req = 1: $failed of $((2 * n)) sessions failed" \
    "across restarts: $(cat load1a.out load1a.err load1b.out load1b.err)"
[ "$refusals" -eq 0 ] || fail "tcp_migrate_req = 1: $refusals refusals logged"
[ "$restarted" -ge 2 ] ||
    fail "the loaders ended after $restarted of 4 restarts ($n sessions each)"
[ "$served" -gt 0 ] ||
    fail "the processes started during the restarts served no session"
figure "reuse_port: tcp_migrate_req = 1: 0 of $((2 * n)) sessions failed" \
    "over 4 restarts ($restarted under load)"

# --- 4. a reload that changes reuse_port ---------------------------------------

route no >reuse.ini
kill -HUP "$(pid_of "$b")"
wait_log "$b.log" 'event=reload result=ok' 10
log_has "$b.log" 'warn route=fwd event=reload reason="reuse_port takes effect at the next start"'
timeout 60 "$HELPERS/load" seq 127.0.0.1 "$P" 100 >seq2.out 2>seq2.err ||
    fail "100 sessions after the reload: $(cat seq2.out seq2.err)"
route yes >reuse.ini

# --- 5. the same without tcp_migrate_req, measured -------------------------------

restarts 0
[ "$refusals" -eq 0 ] || fail "tcp_migrate_req = 0: $refusals refusals logged"
figure "reuse_port: tcp_migrate_req = 0: $failed of $((2 * n)) sessions" \
    "failed over 4 restarts ($restarted under load)"
