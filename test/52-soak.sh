#!/bin/sh
# 52-soak: many short sessions through wrap and unwrap (one gateway, both
# routes, mutual TLS) to an echo server; each sends 32 bytes, gets them
# back and ends cleanly (test/helpers/load).
#  1. warm-up: 300 sessions in sequence; then the gateway's idle figures:
#     open descriptors, threads, VmRSS.
#  2. 20,000 sessions in sequence, in two halves of 10,000.
#  3. 1,000 sessions at once: every one has echoed while all are open (the
#     gateway then runs 2,000 sessions), then they all end.
# Every session succeeds and closes with reason=eof on both routes. After
# each step the gateway's descriptors and busy threads come back to the
# idle counts (idle threads kept for the next sessions, named
# tlsgate:idle, are not counted), and its VmRSS stays within 10 MiB of the
# warm-up figure after the sequence; the second half of the sequence, once
# the gateway is in its steady state, adds less than 2 MiB (a leak of more
# than about 200 bytes a session shows there). After the 1,000 at once,
# and once the gateway has given back what they left free (it logs
# event=idle a second after the last session), VmRSS is within 12 MiB of
# the warm-up: the handshakes ran on the handshake stage's long-lived
# threads, and the 4,000 copy threads of the burst, which exit, leave
# nothing of GnuTLS behind (test 55 repeats such bursts). Under a
# sanitizer the counts are smaller and VmRSS is not judged (the
# sanitizer's own memory dominates it). The figures are printed
# (# soak: ...).
# timeout: 240
. "$TESTLIB"

warm=300 half=10000 conc=1000
case $(sanitizer) in
asan) half=1000 conc=300 ;;
tsan) half=500 conc=200 ;;
esac
# The gateway holds 4 descriptors a concurrent session (2 per route), the
# echo server 1: raise the soft limit for them all.
need_fds $((4 * conc + 64))

ports A B C
# 1,000 handshakes at once may take more than the default 10 s on 2 busy
# cores: that is not what this test is about.
{
	printf '[gateway]\nhandshake_timeout = 60\n\n'
	demo_routes "$A" "$B" "$C"
} >routes.ini
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e -b 4096 127.0.0.1 "$C"
wait_port "$C"

sessions=0
# run NAME SECS MODE COUNT [ARGS...]: one load run; every session must
# pass, then both routes log all their closes.
run() {
	_name=$1 _secs=$2 _mode=$3 _count=$4
	shift 4
	timeout "$_secs" "$HELPERS/load" "$_mode" "$@" 127.0.0.1 "$A" \
	    "$_count" 32 >"$_name.out" 2>"$_name.err" ||
	    fail "$_name: $(cat "$_name.out") $(head -n 5 "$_name.err")"
	sessions=$((sessions + _count))
	settle
}

settle() {
	wait_count gw.log 'route=wrap .*event=close' "$sessions" 30
	wait_count gw.log 'route=unwrap .*event=close' "$sessions" 30
}

rate() {	# rate NAME: the sessions a second load measured
	sed -n 's/.* rate=\([0-9]*\).*/\1/p' "$1.out"
}

run warm 60 seq "$warm"
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") rss0=$(proc_rss "$gw")
figure "soak: after $warm sessions (warm-up): fds=$fds threads=$threads rss=${rss0} KiB"

run seq1 150 seq "$half"
wait_idle "$gw" "$fds" "$threads"
rss1=$(proc_rss "$gw")
figure "soak: after $((warm + half)) in sequence ($(rate seq1)/s): fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") rss=$rss1 KiB"
run seq2 150 seq "$half"
wait_idle "$gw" "$fds" "$threads"
rss2=$(proc_rss "$gw")
figure "soak: after $((warm + 2 * half)) in sequence ($(rate seq2)/s): fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") rss=$rss2 KiB"

# All at once: look at the gateway while every session is live.
bg conc timeout 120 "$HELPERS/load" conc -w release 127.0.0.1 "$A" "$conc" 32
wait_log conc.out "^open $conc\$" 90
tidied=$(count_lines gw.log 'event=idle rss=')	# none while they live
figure "soak: $conc at once, all open: fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") rss=$(proc_rss "$gw") KiB"
: >release
wait_exit "$BG_PID" 60 || fail "conc: $(cat conc.out) $(head -n 5 conc.err)"
sessions=$((sessions + conc))
settle
wait_idle "$gw" "$fds" "$threads" 30
wait_count gw.log 'event=idle rss=' $((tidied + 1)) 30
rss3=$(proc_rss "$gw")
figure "soak: after $conc at once: fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") rss=$rss3 KiB"

closed_clean gw.log "$sessions" 32
log_lacks gw.log 'event=reject'
proc_alive "$gw" || fail "tlsgate died"

[ -z "$(sanitizer)" ] || exit 0
# grew WHAT FROM TO MAX_KIB: VmRSS went from FROM to TO (KiB), by less
# than MAX_KIB; every excess is reported at the end.
bad=
grew() {
	[ $(($3 - $2)) -lt "$4" ] ||
	    bad="$bad${bad:+; }by $(($3 - $2)) KiB $1 ($2 -> $3 KiB, the limit is $4)"
}
grew "over $((2 * half)) sessions in sequence" "$rss0" "$rss2" 10240
grew "over the second $half sessions in sequence" "$rss1" "$rss2" 2048
grew "since the warm-up, after $conc sessions at once" "$rss0" "$rss3" 12288
[ -z "$bad" ] || fail "VmRSS grew $bad"
