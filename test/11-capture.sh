#!/bin/sh
# 11-capture: what crosses the black side. tcpdump records lo on the three
# ports of the demo chain while a request and an answer, each carrying a
# sentinel string, go through wrap and unwrap. Both sentinels are seen on A
# (red, client side) and C (red, server side) and never on B (black), where
# tshark finds TLS records: a ClientHello and application data.
# Skips when tcpdump or tshark is missing or capturing is not permitted.
. "$TESTLIB"

command -v tcpdump >/dev/null || skip "no tcpdump"
command -v tshark >/dev/null || skip "no tshark"

ports A B C P
demo_routes "$A" "$B" "$C" >routes.ini
gw_start gw routes.ini

# tcpdump -U --immediate-mode writes every packet as it comes, so probes
# (connection attempts to the closed port P) show when the capture is
# really running, and later that it has caught up.
tcpdump -i lo --immediate-mode -U -n -w cap.pcap \
    "tcp port $A or tcp port $B or tcp port $C or tcp port $P" \
    >tcpdump.out 2>tcpdump.err &
dump=$!
track "$dump"
_capturing() {
	proc_alive "$dump" || skip "tcpdump cannot capture on lo: $(cat tcpdump.err)"
	grep -q 'listening on' tcpdump.err
}
wait_for 10 "tcpdump to start" _capturing
probes() {
	tcpdump -r cap.pcap -n "tcp port $P" 2>/dev/null | grep -c . || true
}
_probe_seen() {
	nc -z -w 1 127.0.0.1 "$P" 2>/dev/null
	[ "$(probes)" -gt "$seen" ]
}
seen=0
wait_for 10 "the probe packets in the capture" _probe_seen

tag=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
up="SENTINEL-UP-$tag"
down="SENTINEL-DOWN-$tag"
printf '%s\n' "$up" >request
printf '%s\n' "$down" >answer
exchange "$C" "$A" request answer "the sentinels"
wait_log gw.log 'route=wrap .*event=close reason=eof'
wait_log gw.log 'route=unwrap .*event=close reason=eof'

seen=$(probes)
wait_for 10 "the capture to catch up" _probe_seen
kill -INT "$dump"
wait_exit "$dump" 10 || true

# frames PORT FILTER: how many frames on PORT match the display filter
frames() {
	tshark -r cap.pcap -d "tcp.port==$B,tls" \
	    -Y "tcp.port==$1 && ($2)" -T fields -e frame.number 2>/dev/null |
	    grep -c . || true
}
for s in "$up" "$down"; do
	[ "$(frames "$A" "frame contains \"$s\"")" -ge 1 ] ||
	    fail "$s not seen in clear on port $A (capture broken?)"
	[ "$(frames "$C" "frame contains \"$s\"")" -ge 1 ] ||
	    fail "$s not seen in clear on port $C (capture broken?)"
	[ "$(frames "$B" "frame contains \"$s\"")" -eq 0 ] ||
	    fail "$s crossed port $B in clear"
done
[ "$(frames "$B" "tls.handshake.type == 1")" -ge 1 ] ||
    fail "no TLS ClientHello on port $B"
[ "$(frames "$B" "tls.record.content_type == 23 || tls.record.opaque_type == 23")" -ge 1 ] ||
    fail "no TLS application data on port $B"
[ "$(frames "$B" "tls.record")" -ge 4 ] || fail "too few TLS records on port $B"
note "TLS frames on $B: $(frames "$B" "tls.record")"
