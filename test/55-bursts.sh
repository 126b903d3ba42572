#!/bin/sh
# 55-bursts: memory stays flat under bursts. Ten bursts of 1,000
# concurrent sessions through wrap and unwrap in one gateway, full
# handshakes (resumption = no), each session echoing 32 bytes
# (test/helpers/load conc). Every session succeeds; after each burst the
# gateway is back to its idle descriptors and threads, gives back the
# memory the burst left free once it has been quiet for a second (it logs
# event=idle), and its VmRSS is taken. VmRSS after the first burst is within 12 MiB of the idle figure
# (after a warm-up), and after the tenth within 2 MiB of the first: the
# handshakes run on the handshake stage's few long-lived threads, so the
# threads that come and go with a burst (the copy threads) leave nothing
# of GnuTLS behind. The figures are printed (# bursts: ...). Under a
# sanitizer the bursts are smaller and VmRSS is not judged.
# timeout: 300
. "$TESTLIB"

bursts=10 conc=1000
case $(sanitizer) in
asan) bursts=3 conc=300 ;;
tsan) bursts=3 conc=200 ;;
esac
need_fds $((4 * conc + 64))

ports A B C
{
	printf '[gateway]\nhandshake_timeout = 60\n\n'
	demo_routes "$A" "$B" "$C"
	echo "resumption = no"
} | sed 's/^\(server_name = localhost\)$/\1\nresumption = no/' >routes.ini
grep -c '^resumption = no$' routes.ini | grep -qx 2 ||
    fail "routes.ini: resumption = no on both routes: $(cat routes.ini)"
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e -b 4096 127.0.0.1 "$C"
wait_port "$C"

sessions=0
settle() {
	wait_count gw.log 'route=wrap .*event=close' "$sessions" 60
	wait_count gw.log 'route=unwrap .*event=close' "$sessions" 60
}
timeout 60 "$HELPERS/load" seq 127.0.0.1 "$A" 300 32 >warm.out 2>warm.err ||
    fail "warm-up: $(cat warm.out) $(head -n 5 warm.err)"
sessions=300
settle
wait_count gw.log 'event=idle rss=' 1 30
fds=$(proc_fds "$gw") threads=$(proc_threads "$gw") idle=$(proc_rss "$gw")
figure "bursts: idle after 300 sessions: fds=$fds threads=$threads rss=$idle KiB"

i=0 all=
while [ "$i" -lt "$bursts" ]; do
	i=$((i + 1))
	timeout 120 "$HELPERS/load" conc 127.0.0.1 "$A" "$conc" 32 \
	    >burst$i.out 2>burst$i.err ||
	    fail "burst $i: $(cat burst$i.out) $(head -n 5 burst$i.err)"
	sessions=$((sessions + conc))
	settle
	wait_idle "$gw" "$fds" "$threads" 30
	# A second after the last session the gateway gives back what the
	# burst left free, and logs event=idle.
	wait_count gw.log 'event=idle rss=' $((i + 1)) 30
	rss=$(proc_rss "$gw")
	[ "$i" -eq 1 ] && first=$rss
	all="$all${all:+ }$((rss - idle))"
	figure "bursts: after burst $i of $conc: rss=$rss KiB (+$((rss - idle)) KiB)"
done
figure "bursts: KiB over idle after each burst: $all"
log_lacks gw.log 'event=reject'
closed_clean gw.log "$sessions" 32
log_lacks gw.log 'resumed=yes'

[ -z "$(sanitizer)" ] || exit 0
[ $((first - idle)) -le 12288 ] ||
    fail "VmRSS after the first burst is $((first - idle)) KiB over idle (at most 12288)"
[ $((rss - first)) -le 2048 ] ||
    fail "VmRSS grew by $((rss - first)) KiB from the first burst to the last (at most 2048)"
