#!/bin/sh
# 53-faults: faults in the middle of a transfer, one session at a time,
# while 10 bystander sessions (through their own wrap and unwrap routes to
# an echo server) stay open from the start to the end. After each fault
# the gateway has closed the session with the right reason, is back to the
# descriptors and threads it had with only the bystanders, and serves a
# new client; at the end the bystanders all finish cleanly and the gateway
# is back to its idle counts. Extends 22-truncation and 29-reset (faults
# on idle sessions) to sessions with data flowing both ways.
#  1. the plaintext server resets (RST) while the client is still
#     uploading: the client sees a reset; unwrap's reason names the
#     server's reset, wrap's a reset or truncated TLS stream;
#  2. the plaintext client resets while the server is still sending: the
#     server sees a reset; wrap names the client's reset;
#  3. the TLS client, a second tlsgate (wrap), is killed with SIGKILL:
#     unwrap closes (truncated, reset, broken pipe), the plaintext server
#     sees a reset;
#  4. the TLS server, a second tlsgate (unwrap), is killed with SIGKILL:
#     the wrap route closes (the same reasons), the client sees a reset;
#  5. a TLS client (gnutls-cli) stalls (SIGSTOP) after its handshake,
#     while the server sends: the route's idle_timeout (2 s) closes the
#     session ("idle timeout"), not before;
#  6. the plaintext server accepts and never reads while the client sends
#     without end: the client's writes block (its send queue stays full
#     and still), the gateway's VmRSS does not grow, another session is
#     served meanwhile, and idle_timeout (5 s after the last byte moved)
#     closes the stuck session;
#  7. a TLS client (gnutls-cli) downloading without end is killed with
#     SIGKILL, 5 times: the plaintext server sees a reset each time.
# A plaintext side that sees a clean end (FIN) instead of a reset in 1-4
# or 7 is reported at the end, after all the faults have run.
# timeout: 150
. "$TESTLIB"

command -v gnutls-cli >/dev/null || skip "no gnutls-cli"
ports A B C AE BE CE AS BS CS BT CT AU BU CU AW

{
	demo_routes "$A" "$B" "$C"
	printf '\n[wrap-e]\naccept = tcp://127.0.0.1:%s\n' "$AE"
	tls_connect "$BE"
	printf '\n[unwrap-e]\nconnect = tcp://127.0.0.1:%s\n' "$CE"
	tls_accept "$BE"
	printf '\n[wrap-s]\naccept = tcp://127.0.0.1:%s\nidle_timeout = 0\n' "$AS"
	tls_connect "$BS"
	printf '\n[unwrap-s]\nconnect = tcp://127.0.0.1:%s\nidle_timeout = 5\n' "$CS"
	tls_accept "$BS"
	printf '\n[stall]\nconnect = tcp://127.0.0.1:%s\nidle_timeout = 2\n' "$CT"
	tls_accept "$BT"
	printf '\n[to-u]\naccept = tcp://127.0.0.1:%s\n' "$AU"
	tls_connect "$BU"
} >routes.ini
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e 127.0.0.1 "$CE"
wait_port "$CE"

good=0
good() {	# a new client through wrap-e and unwrap-e gets its echo
	good=$((good + 1))
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$AE" "good $good" \
	    2>good.err) || fail "good client $good: $(cat good.err)"
	[ "$got" = "good $good" ] || fail "good client $good got '$got'"
	wait_count gw.log 'route=unwrap-e .*event=close' "$good"
	wait_count gw.log 'route=wrap-e .*event=close' "$good"
}
good
idle_fds=$(proc_fds "$gw") idle_threads=$(proc_threads "$gw")

bg bystanders "$HELPERS/load" conc -w release 127.0.0.1 "$AE" 10 32
wait_log bystanders.out '^open 10$'
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")
figure "faults: idle fds=$idle_fds threads=$idle_threads; with 10 bystanders fds=$fds threads=$threads"

# The reasons for a peer that reset or vanished, as the reading or the
# writing thread of the session meets it first.
gone='truncat|reset|broken pipe|non-properly terminated'
# before ROUTE...: note how many sessions each ROUTE has closed so far
before() {
	for _r in "$@"; do
		eval "_closes_$(echo "$_r" | tr - _)=$(count_lines gw.log \
		    "route=$_r .*event=close")"
	done
}
# closed ROUTE ERE: the route's next close (after those noted by before)
# comes, and its reason matches ERE
closed() {
	_n=0
	eval "_n=\${_closes_$(echo "$1" | tr - _):-0}"
	wait_count gw.log "route=$1 .*event=close" $((_n + 1)) 30
	_l=$(grep -E "route=$1 .*event=close" gw.log | sed -n "$((_n + 1))p")
	echo "$_l" | grep -Eqi "reason=\"?[^\"]*($2)" ||
	    fail "$1: expected a close reason /$2/: $_l"
	note "$_l"
}
# reset_seen N WHO STATUS ROUTE: WHO (the plaintext client or server,
# whose xfer ended with STATUS and logged in WHO.err) saw a reset, status
# 3; every other outcome (a clean end, 0 or 4) is collected for the end,
# so that one such fault does not hide the next ones.
noreset=
reset_seen() {
	# A reset reaches one of xfer's two threads as ECONNRESET (exit 3 if
	# the reader, 4 if the writer); the other then sees the socket closed.
	[ "$3" -eq 3 ] && return 0
	[ "$3" -eq 4 ] && grep -q 'Connection reset by peer' "$2.err" && return 0
	noreset="$noreset
  $1: $2 ended with status $3, no reset: $(tr '\n' ' ' <"$2.err")
     tlsgate: $(grep -E "route=$4 .*event=close" gw.log | tail -n 1 |
	    sed 's/.*event=close //')"
}
# after N WHAT: the gateway is back to the bystanders' counts, serves anew
after() {
	wait_idle "$gw" "$fds" "$threads"
	proc_alive "$gw" || fail "tlsgate died after $2"
	good
	figure "faults: $1. $2: back to fds=$(proc_fds "$gw") threads=$(proc_threads "$gw")"
}
_size_at_least() {	# _size_at_least FILE BYTES
	[ -f "$1" ] && [ "$(wc -c <"$1")" -ge "$2" ]
}
head -c 1048576 /dev/urandom >1m.bin
head -c 8388608 /dev/urandom >8m.bin

# 1. The server sends 1 MiB at 4 MB/s and resets; the client uploads
# 8 MiB at 2 MB/s meanwhile.
before wrap unwrap
bg srv1 "$HELPERS/xfer" -l -A -r 4000000 127.0.0.1 "$C" 1m.bin got1
wait_port "$C"
bg cli1 "$HELPERS/xfer" -r 2000000 127.0.0.1 "$A" 8m.bin out1
wait_exit "$(pid_of srv1)" 10 || fail "server 1: $(cat srv1.err)"
wait_exit "$(pid_of cli1)" 10
rc=$?
_size_at_least got1 1 || fail "the client's upload never reached the server"
closed unwrap 'server: .*reset'
closed wrap "$gone"
reset_seen 1 cli1 "$rc" wrap
after 1 "the server reset mid-transfer"

# 2. The client sends 1 MiB at 4 MB/s and resets; the server sends 8 MiB
# at 2 MB/s meanwhile.
before wrap unwrap
bg srv2 "$HELPERS/xfer" -l -r 2000000 127.0.0.1 "$C" 8m.bin got2
wait_port "$C"
bg cli2 "$HELPERS/xfer" -A -r 4000000 127.0.0.1 "$A" 1m.bin out2
wait_exit "$(pid_of cli2)" 10 || fail "client 2: $(cat cli2.err)"
wait_exit "$(pid_of srv2)" 10
rc=$?
closed wrap 'client: .*reset'
closed unwrap "$gone"
reset_seen 2 srv2 "$rc" unwrap
after 2 "the client reset mid-transfer"

# 3. A second tlsgate wraps for the client into our unwrap route, and is
# killed once 1 MiB of the client's 8 MiB upload has reached the server.
printf '[w]\naccept = tcp://127.0.0.1:%s\n' "$AW" >w.ini
tls_connect "$B" >>w.ini
gw_start w w.ini
before unwrap
bg srv3 "$HELPERS/xfer" -l -r 2000000 127.0.0.1 "$C" 8m.bin got3
wait_port "$C"
bg cli3 "$HELPERS/xfer" -r 2000000 127.0.0.1 "$AW" 8m.bin out3
wait_for 10 "1 MiB at the server" _size_at_least got3 1048576
stop -KILL "$(pid_of w)"
wait_exit "$(pid_of srv3)" 10
rc=$?
wait_exit "$(pid_of cli3)" 10
closed unwrap "$gone"
reset_seen 3 srv3 "$rc" unwrap
after 3 "the TLS client (tlsgate) was killed mid-transfer"

# 4. A second tlsgate unwraps our to-u route, and is killed once 1 MiB of
# the client's upload has reached its server.
printf '[u]\nconnect = tcp://127.0.0.1:%s\n' "$CU" >u.ini
tls_accept "$BU" >>u.ini
gw_start u u.ini
before to-u
bg srv4 "$HELPERS/xfer" -l -r 2000000 127.0.0.1 "$CU" 8m.bin got4
wait_port "$CU"
bg cli4 "$HELPERS/xfer" -r 2000000 127.0.0.1 "$AU" 8m.bin out4
wait_for 10 "1 MiB at the server" _size_at_least got4 1048576
stop -KILL "$(pid_of u)"
wait_exit "$(pid_of cli4)" 10
rc=$?
wait_exit "$(pid_of srv4)" 10
closed to-u "$gone"
reset_seen 4 cli4 "$rc" to-u
after 4 "the TLS server (tlsgate) was killed mid-transfer"

# 5. gnutls-cli completes its handshake and stops (SIGSTOP) before any
# data; the server starts sending 8 MiB half a second later. The gateway
# writes what the buffers take, then its writes block.
before stall
bg srv5 "$HELPERS/xfer" -l -p 500 127.0.0.1 "$CT" 8m.bin got5
wait_port "$CT"
mkfifo stall.in
gnutls-cli -p "$BT" --x509cafile "$CERTS/ca.pem" \
    --x509certfile "$CERTS/client.pem" --x509keyfile "$CERTS/client.key" \
    localhost <stall.in >stall.out 2>stall.err 3>&- 4>&- &
stall=$!
track "$stall"
exec 4>stall.in
wait_log gw.log 'route=stall .*event=connect'
stop -STOP "$stall"
closed stall 'idle timeout'
ms=$(grep -E 'route=stall .*event=close' gw.log | tail -n 1 |
    sed -n 's/.* ms=\([0-9]*\).*/\1/p')
# Data moved until 0.5 s at least: the 2 s run from then, not before.
if [ "${ms:-0}" -lt 2000 ] || [ "$ms" -ge 6000 ]; then
	fail "the stalled session closed after ${ms:-?} ms, expected 2500"
fi
wait_exit "$(pid_of srv5)" 10
stop -KILL "$stall"
exec 4>&-
after 5 "the TLS client stalled (closed after $ms ms)"

# 6. The server never reads; the client sends zeros without end.
before wrap-s unwrap-s
bg srv6 "$HELPERS/sink" 127.0.0.1 "$CS"
wait_port "$CS"
rss0=$(proc_rss "$gw")
bg cli6 "$HELPERS/xfer" 127.0.0.1 "$AS" /dev/zero out6
wait_log srv6.err 'sink: accept'
sendq() {	# the client's send queue: bytes it wrote that nobody took
	ss -tnH state established "dport = :$AS" 2>/dev/null |
	    awk '{ print $2; exit }'
}
_blocked() {	# the client's send queue is full and still for 1 s
	_q1=$(sendq)
	[ "${_q1:-0}" -gt 0 ] || return 1
	sleep 1
	[ "$(sendq)" = "$_q1" ]
}
wait_for 4 "the client's writes to block" _blocked
rss1=$(proc_rss "$gw")
_blocked || fail "the client's writes do not stay blocked"
rss2=$(proc_rss "$gw")
proc_alive "$(pid_of cli6)" || fail "the client gave up: $(cat cli6.err)"
log_lacks gw.log 'route=(wrap|unwrap)-s .*event=close'
figure "faults: 6. the server does not read: client's send queue $(sendq) bytes, still for 2 s; gateway VmRSS $rss0 -> $rss1 -> $rss2 KiB"
# Nothing is buffered while blocked; the session itself costs little
# (under a sanitizer, whose allocator keeps freed memory, that is not
# measured).
[ $((rss2 - rss1)) -lt 1024 ] ||
    fail "VmRSS grew by $((rss2 - rss1)) KiB in 1 s while the server did not read"
[ -n "$(sanitizer)" ] || [ $((rss2 - rss0)) -lt 4096 ] ||
    fail "VmRSS grew by $((rss2 - rss0)) KiB with the server not reading"
good
closed unwrap-s 'idle timeout'
closed wrap-s "$gone"
wait_exit "$(pid_of cli6)" 10
after 6 "the server did not read"

# 7. gnutls-cli downloads zeros without end from the server through the
# unwrap route and is killed (SIGKILL) mid-download, 5 times: each time
# the server must see a reset, never a clean end (the gateway writing to
# the vanished client is as likely to notice first as its reader).
for i in 1 2 3 4 5; do
	before unwrap
	bg srv7-$i "$HELPERS/xfer" -l 127.0.0.1 "$C" /dev/zero got7-$i
	wait_port "$C"
	mkfifo dl$i.in
	gnutls-cli -p "$B" --x509cafile "$CERTS/ca.pem" \
	    --x509certfile "$CERTS/client.pem" \
	    --x509keyfile "$CERTS/client.key" \
	    localhost <dl$i.in >dl$i.out 2>dl$i.err 3>&- 4>&- &
	dl=$!
	track "$dl"
	exec 4>dl$i.in
	wait_for 10 "256 KiB at gnutls-cli" _size_at_least dl$i.out 262144
	stop -KILL "$dl"
	wait_exit "$(pid_of srv7-$i)" 10
	rc=$?
	exec 4>&-
	closed unwrap "$gone"
	reset_seen "7.$i" "srv7-$i" "$rc" unwrap
	after 7 "the TLS client was killed mid-download ($i)"
done

# The bystanders saw none of it: each ends cleanly now.
: >release
wait_exit "$(pid_of bystanders)" 20 ||
    fail "bystanders: $(cat bystanders.out) $(head -n 5 bystanders.err)"
[ "$(count_lines gw.log 'route=wrap-e .*event=close reason=eof')" -eq $((good + 10)) ] ||
    fail "wrap-e: not every session closed with reason=eof"
wait_idle "$gw" "$idle_fds" "$idle_threads"
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
# A clean end (FIN) where the peer reset or vanished is what the
# application must never see: it would take a cut stream for a whole one.
[ -z "$noreset" ] || fail "a fault reached the other plaintext side as a clean end, not as a reset:$noreset"
