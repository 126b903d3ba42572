#!/bin/sh
# 61-proxy: the PROXY protocol (send_proxy, accept_proxy) and the address
# filters (allow_from, proxy_from), with real peers. test/helpers/ppsink is
# a server with a PROXY parser of its own (not tlsgate's pp.c): it decodes
# the header a connection starts with into key=value lines, then echoes the
# rest of the stream (half-close included); ppsink -c is a client that
# sends a file (a header, good or bad, and what follows), optionally in two
# writes with a pause.
#  1. config (-t): accept_proxy = yes without proxy_from is a warning
#     "FILE:LINE: [r] accept_proxy: yes without proxy_from: any client may
#     claim any address" (exit 0, --strict exit 1; none with proxy_from);
#     errors (exit 2, FILE:LINE: [r] key: ...): proxy_from without
#     accept_proxy, a bad CIDR ("not an IP address or block"), a bad
#     prefix length (/33, /, ::1/129), send_proxy = v3, accept_proxy on a
#     unix: accept, allow_from on a unix: accept.
#  2. send_proxy on forward routes, decoded by ppsink: v1 "PROXY TCP4
#     127.0.0.1 127.0.0.1 CPORT APORT" and v2 PROXY TCP4, src = the client
#     (the port of the route's event=open line), dst = the route's address;
#     1 MiB each way after the header intact (xfer, half-close); no header
#     with send_proxy = no. IPv6: a ::1 client on [::1] gives TCP6 in v1 and
#     v2; an IPv4 client on an IPv6 socket ([::ffff:127.0.0.1]) gives TCP4.
#  3. haproxy in front and behind (skipped without haproxy): client ->
#     haproxy (send-proxy-v2, from 127.0.0.2) -> wrap (accept_proxy,
#     proxy_from = 127.0.0.2, send_proxy = v2) -> unwrap (accept_proxy
#     before TLS, proxy_from = 127.0.0.1, send_proxy = v1) -> haproxy
#     (accept-proxy; send-proxy-v2) -> ppsink. The client's port from the
#     first haproxy's log (%cp) is in wrap's and unwrap's "event=open
#     peer=127.0.0.1:CPORT via=..." lines, in the second haproxy's log
#     (%ci:%cp, %fi:%fp = the first haproxy's address) and in ppsink's
#     src; the echo comes back. A direct TLS client to that unwrap is
#     refused ("missing (the connection starts with a TLS handshake)"), a
#     direct client to wrap from 127.0.0.1 "not in proxy_from".
#  4. Bad headers on a route with accept_proxy (each: refused with
#     reject peer=127.0.0.1:PORT reason="PROXY header: WHY" and a close
#     line with that reason, no open line, the echo server not connected,
#     a good client right after gets its echo and its open line peer=the
#     claimed address via=127.0.0.1:PORT): v1 cut then
#     close (refused at the end: "cut short (27 bytes, then the end of the
#     stream)"); v2 cut then silence (handshake_timeout = 2: closed after ~2 s,
#     "none within handshake_timeout"); v1 of 108 bytes (longer than 107)
#     and 150 bytes without CRLF; a 107-byte v1 (parsed, malformed); v1
#     UDP4; v1 with a field missing; a bad TCP4
#     address; port 65536; v2 of 2049 bytes and of 65551; a v2 of exactly
#     2048 bytes (NOOP TLV) accepted; v2 UDP4, unix
#     (0x31); v2 version 1; v2 addresses cut short; a TLS record and an
#     HTTP request (no header). Accepted: a header in two writes 200 ms
#     apart (v1 and v2), the longest v1 (TCP6, 104 bytes), v2 with TLVs;
#     what follows a header (another header, binary bytes) is echoed intact.
#     Nothing then the end is a probe: a close line "closed before sending
#     anything", no refusal. v1 UNKNOWN (two forms), v2 LOCAL (with and
#     without addresses) and v2 UNSPEC are the proxy's own connection:
#     accepted, the open line "peer=127.0.0.1:PORT proxy=local", what
#     follows echoed.
#  5. allow_from = 10.0.0.0/8 resets 127.0.0.1 ("route=R event=reject
#     peer=127.0.0.1:P reason="not in allow_from: 127.0.0.1:P"", no
#     session, no open line); 127.0.0.0/8 lets it in; 127.0.0.1/32 lets in
#     an IPv4 client of an IPv6 socket (IPv4-mapped). With accept_proxy,
#     proxy_from = 127.0.0.1 and allow_from = 192.0.2.0/24: a header
#     claiming 192.0.2.9 is let in (open peer=192.0.2.9:4242
#     via=127.0.0.1:P, passed on to ppsink as src), so is ::ffff:192.0.2.10
#     (passed on as TCP4); 198.51.100.1 and 2001:db8::1 are refused after
#     the open line (reason="not in allow_from: ADDR:PORT"), the server
#     never connected. proxy_from = 10.0.0.0/8 resets the local proxy
#     ("not in proxy_from"). The stats socket counts exactly these
#     refusals: tlsgate_refusals_total{route=R,reason="proxy"} and
#     {reason="allow_from"} per route.
#  6. TLS on the unwrap side, send_proxy = v2 to ppsink: through the demo
#     wrap -> unwrap with a client certificate, TLVs authority=localhost
#     (wrap's server_name), ssl.client=0x03 (0x05 on a resumed session),
#     verify=0, version TLSv1.3, cipher TLS_..., cn=client; openssl
#     s_client -servername x -cert client.pem directly: authority=x; no
#     certificate on verify = optional: ssl.client=0x01, verify=1, no CN.
. "$TESTLIB"

[ -x "$HELPERS/ppsink" ] || fail "no $HELPERS/ppsink (make check builds it)"
command -v openssl >/dev/null || skip "no openssl"

ports S E F0 F1 F2 X1 X2 M4 A B O HF HW HU HB P L D W MP Q R
sock=$PWD/s.sock
[ "${#sock}" -lt 100 ] || sock=s.sock
ipv6=no
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null &&
    ipv6=yes

# --- helpers ---------------------------------------------------------------

# bytes N...: the bytes of the decimal values N
bytes() {	# (no subshell: forks are slow on a loaded machine)
	_f=
	for _b in "$@"; do
		_f="$_f\\$((_b >> 6 & 7))$((_b >> 3 & 7))$((_b & 7))"
	done
	# shellcheck disable=SC2059
	printf "$_f"
}
be16() {
	bytes $(($1 >> 8)) $(($1 & 255))
}
ip4() {		# ip4 A.B.C.D: its 4 bytes
	_ifs=$IFS
	IFS=.
	# shellcheck disable=SC2086
	set -- $1
	IFS=$_ifs
	bytes "$@"
}
V2SIG='\015\012\015\012\000\015\012\121\125\111\124\012'
# v2 VERCMD FAMILY LEN: the 16 bytes that start a v2 header
v2() {
	# shellcheck disable=SC2059
	printf "$V2SIG"
	bytes "$1" "$2"
	be16 "$3"
}
# v2tcp4 SRC DST SPORT DPORT [TLVBYTES]: a v2 PROXY TCP4 header, the
# caller's TLVBYTES of TLVs to follow
v2tcp4() {
	v2 33 17 $((12 + ${5:-0}))
	ip4 "$1"
	ip4 "$2"
	be16 "$3"
	be16 "$4"
}
nchars() {	# nchars N C: N times the character C
	head -c "$1" /dev/zero | tr '\0' "$2"
}

# LOG is the gateway log that mark and since read.
mark() {
	_mark=$(wc -l <"$LOG")
}
since() {	# since ROUTE: the lines of route ROUTE after the mark
	sed -n "$((_mark + 1)),\$p" "$LOG" | grep -F "route=$1 "
}
count_since() {
	since "$1" | grep -Ec -- "$2"
}
_since_has() {
	[ "$(count_since "$1" "$2")" -ge "$3" ]
}
wait_since() {	# wait_since ROUTE ERE N
	poll_for 10 _since_has "$1" "$2" "$3" ||
	    fail "timed out waiting for $3 lines /$2/ of route $1:
$(since "$1")"
}

# ppsink's connections, numbered from 1, decoded into ppd/N
ppn=0
next_pp() {	# next_pp WHAT: the next connection ppsink decodes is WHAT's
	ppn=$((ppn + 1))
	wait_for 10 "ppsink to decode $1 (its connection $ppn)" test -f "ppd/$ppn"
	log_lacks "ppd/$ppn" '^error=' "$1: ppsink found the header malformed"
}
field() {	# field KEY: its value in ppsink's last decoding
	sed -n "s/^$1=//p" "ppd/$ppn"
}
want() {	# want WHAT KEY VALUE: ppsink's last decoding has KEY=VALUE
	_v=$(field "$2")
	[ "$_v" = "$3" ] || fail "$1: $2 is '$_v', expected '$3':
$(cat "ppd/$ppn")"
}
lacks() {	# lacks WHAT KEY: no KEY in ppsink's last decoding
	log_lacks "ppd/$ppn" "^$2=" "$1: unexpected $2 in the header:
$(cat "ppd/$ppn")"
}
# opened ROUTE: the peer of route ROUTE's last open line (after the mark)
opened() {
	since "$1" | sed -n 's/.* event=open peer=\([^ ]*\).*/\1/p' | tail -n 1
}

# --- 1. the configuration ---------------------------------------------------

# conf_try NAME KEYS...: a route r (tcp:// accept) with the lines KEYS,
# checked with -t; rc, NAME.out and NAME.err as gw_run leaves them
conf_try() {
	_n=$1
	shift
	{
		printf '[r]\naccept = tcp://127.0.0.1:%s\n' "$F0"
		printf 'connect = tcp://127.0.0.1:%s\n' "$S"
		printf '%s\n' "$@"
	} >"$_n.ini"
	gw_run "$_n" -t -c "$_n.ini"
}
# conf_bad NAME LINE MESSAGE KEYS...: -t exits 2 with "NAME.ini:LINE: MESSAGE"
conf_bad() {
	_n=$1 _line=$2 _msg=$3
	shift 3
	conf_try "$_n" "$@"
	expect_rc 2 "$rc" "-t on $_n.ini"
	grep -qxF "$_n.ini:$_line: $_msg" "$_n.err" ||
	    fail "-t on $_n.ini: no line '$_n.ini:$_line: $_msg' in:
$(cat "$_n.err")"
}
WARN='[r] accept_proxy: yes without proxy_from: any client may claim any address'
conf_try nofrom 'accept_proxy = yes'
expect_rc 0 "$rc" "-t on accept_proxy without proxy_from"
grep -qxF "nofrom.ini:4: $WARN" nofrom.err ||
    fail "no warning 'nofrom.ini:4: $WARN' in: $(cat nofrom.err)"
gw_run nofrom-strict -t --strict -c nofrom.ini
expect_rc 1 "$rc" "-t --strict on accept_proxy without proxy_from"
conf_try withfrom 'accept_proxy = yes' 'proxy_from = 127.0.0.1, ::1'
expect_rc 0 "$rc" "-t with proxy_from"
log_lacks withfrom.err 'proxy_from' "a warning with proxy_from set"
conf_bad fromalone 4 '[r] proxy_from: needs accept_proxy = yes' \
    'proxy_from = 127.0.0.1'
conf_bad badcidr 5 '[r] proxy_from: not an IP address or block: "300.1.2.3"' \
    'accept_proxy = yes' 'proxy_from = 300.1.2.3'
conf_bad badname 4 '[r] allow_from: not an IP address or block: "localhost"' \
    'allow_from = 127.0.0.1, localhost'
conf_bad prefix33 4 '[r] allow_from: bad prefix length in "10.0.0.0/33" (0-32)' \
    'allow_from = 10.0.0.0/33'
conf_bad prefixnone 4 '[r] allow_from: bad prefix length in "10.0.0.0/" (0-32)' \
    'allow_from = 10.0.0.0/'
conf_bad prefix129 4 '[r] allow_from: bad prefix length in "::1/129" (0-128)' \
    'allow_from = ::1/129'
conf_bad v3 4 '[r] send_proxy: must be v1, v2 or no, not "v3"' \
    'send_proxy = v3'
{
	printf '[u]\naccept = unix:%s/u.sock\n' "$PWD"
	printf 'connect = tcp://127.0.0.1:%s\naccept_proxy = yes\n' "$S"
	printf 'allow_from = 127.0.0.1\n'
} >unix.ini
gw_run unix -t -c unix.ini
expect_rc 2 "$rc" "-t on accept_proxy and allow_from on a unix: accept"
log_has unix.err '^unix\.ini:4: \[u\] accept_proxy: not on a unix: accept$'
log_has unix.err '^unix\.ini:5: \[u\] allow_from: not on a unix: accept'

# --- 2. send_proxy on forward routes -----------------------------------------

bg pps "$HELPERS/ppsink" -d ppd 127.0.0.1 "$S"
bg echo "$HELPERS/sink" -e 127.0.0.1 "$E"
wait_port "$S"
wait_port "$E"
{
	for r in "fwd0 $F0 no" "fwd1 $F1 v1" "fwd2 $F2 v2"; do
		set -- $r
		printf '[%s]\naccept = tcp://127.0.0.1:%s\n' "$1" "$2"
		printf 'connect = tcp://127.0.0.1:%s\nsend_proxy = %s\n\n' \
		    "$S" "$3"
	done
	printf '[mapped]\naccept = tcp://[::ffff:127.0.0.1]:%s\n' "$M4"
	printf 'connect = tcp://127.0.0.1:%s\nsend_proxy = v2\n\n' "$S"
	if [ "$ipv6" = yes ]; then
		printf '[six1]\naccept = tcp://[::1]:%s\n' "$X1"
		printf 'connect = tcp://127.0.0.1:%s\nsend_proxy = v1\n\n' "$S"
		printf '[six2]\naccept = tcp://[::1]:%s\n' "$X2"
		printf 'connect = tcp://127.0.0.1:%s\nsend_proxy = v2\n\n' "$S"
	fi
	demo_routes "$A" "$B" "$S"
	echo "send_proxy = v2"
	printf '\n[opt]\n'
	tls_accept "$O"
	printf 'verify = optional\nconnect = tcp://127.0.0.1:%s\n' "$S"
	echo "send_proxy = v2"
} >gw1.ini
gw_start gw1 gw1.ini
gw1=$GW_PID
LOG=gw1.log

head -c 1048576 /dev/urandom >mib.bin
# fwd ROUTE PORT VERSION FAMILY: 1 MiB each way through ROUTE to ppsink,
# whose decoding has the client (ROUTE's open line) as src
fwd() {
	mark
	timeout 20 "$HELPERS/xfer" 127.0.0.1 "$2" mib.bin "$1.got" \
	    2>"$1.err" || fail "$1: xfer: $(cat "$1.err")"
	same_file mib.bin "$1.got" "$1: the echo of 1 MiB"
	next_pp "$1"
	wait_since "$1" 'event=close reason=eof' 1
	want "$1" version "$3"
	want "$1" family "$4"
	if [ "$3" != none ]; then
		want "$1" src "$(opened "$1")"
		want "$1" dst "127.0.0.1:$2"
	fi
	wait_log pps.err "^ppsink: conn $ppn eof after 1048576 bytes\$"
}
fwd fwd1 "$F1" 1 TCP4
want fwd1 header_len $(($(printf 'PROXY TCP4 127.0.0.1 127.0.0.1 %s %s\r\n' \
    "$(field src | sed 's/.*://')" "$F1" | wc -c)))
note "fwd1 (v1): $(tr '\n' ' ' <"ppd/$ppn")"
fwd fwd2 "$F2" 2 TCP4
want fwd2 command PROXY
want fwd2 header_len 28
want fwd2 tlvs ''
note "fwd2 (v2): $(tr '\n' ' ' <"ppd/$ppn")"
fwd fwd0 "$F0" none ''
want fwd0 header_len 0
# An IPv4 client of an IPv6 socket is an IPv4 client.
mark
got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$M4" mapped 2>mapped.err) ||
    fail "mapped: $(cat mapped.err)"
[ "$got" = mapped ] || fail "mapped: got '$got'"
next_pp mapped
wait_since mapped 'event=close reason=eof' 1
note "mapped: $(since mapped | grep 'event=open')"
want mapped family TCP4
want mapped src "127.0.0.1:$(opened mapped | sed 's/.*://')"
want mapped dst "127.0.0.1:$M4"
if [ "$ipv6" = yes ]; then
	for r in "six1 $X1 1" "six2 $X2 2"; do
		set -- $r
		mark
		got=$(timeout 10 "$HELPERS/halfclose" ::1 "$2" "$1" \
		    2>"$1.err") || fail "$1: $(cat "$1.err")"
		[ "$got" = "$1" ] || fail "$1: got '$got'"
		next_pp "$1"
		wait_since "$1" 'event=close reason=eof' 1
		want "$1" version "$3"
		want "$1" family TCP6
		want "$1" src "$(opened "$1")"
		want "$1" dst "[::1]:$2"
		note "$1: $(since "$1" | grep 'event=open')"
	done
else
	note "no ::1 on this host: the IPv6 (TCP6) cases are skipped"
fi

# --- 3. haproxy in front and behind -------------------------------------------

if command -v haproxy >/dev/null; then
	cat >haproxy.cfg <<EOF
global
	log stdout format raw local0 info
defaults
	mode tcp
	log global
	timeout connect 5s
	timeout client 20s
	timeout server 20s
frontend front
	bind 127.0.0.1:$HF
	log-format "front client=%ci:%cp frontend=%fi:%fp"
	default_backend gateway
backend gateway
	server wrap 127.0.0.1:$HW send-proxy-v2 source 127.0.0.2
frontend back
	bind 127.0.0.1:$HB accept-proxy
	log-format "back client=%ci:%cp frontend=%fi:%fp"
	default_backend server
backend server
	server ppsink 127.0.0.1:$S send-proxy-v2
EOF
	{
		printf '[hwrap]\naccept = tcp://127.0.0.1:%s\n' "$HW"
		printf 'accept_proxy = yes\nproxy_from = 127.0.0.2\n'
		printf 'send_proxy = v2\n'
		tls_connect "$HU"
		printf '\n[hunwrap]\n'
		tls_accept "$HU"
		printf 'accept_proxy = yes\nproxy_from = 127.0.0.1\n'
		printf 'send_proxy = v1\nconnect = tcp://127.0.0.1:%s\n' "$HB"
	} >gw2.ini
	gw_start gw2 gw2.ini
	LOG=gw2.log
	bg haproxy haproxy -db -f haproxy.cfg
	wait_port "$HF"
	wait_port "$HB"
	mark
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$HF" "end to end" \
	    2>e2e.err) || fail "through haproxy: $(cat e2e.err)"
	[ "$got" = "end to end" ] || fail "through haproxy: got '$got'"
	wait_log haproxy.out '^back client='
	wait_log haproxy.out '^front client='
	client=$(sed -n 's/^front client=\([^ ]*\) .*/\1/p' haproxy.out)
	case $client in
	127.0.0.1:[0-9]*) ;;
	*) fail "no client address in haproxy's log: $(cat haproxy.out)" ;;
	esac
	wait_since hwrap 'event=close reason=eof' 1
	wait_since hunwrap 'event=close reason=eof' 1
	for l in "hwrap 127\\.0\\.0\\.2" "hunwrap 127\\.0\\.0\\.1"; do
		set -- $l
		[ "$(count_since "$1" "event=open peer=$client via=$2:[0-9]+\$")" \
		    -eq 1 ] || fail "$1 did not log the client $client" \
		    "(haproxy: $(cat haproxy.out)): $(since "$1")"
	done
	log_has haproxy.out "^back client=$client frontend=127\\.0\\.0\\.1:$HF\$" \
	    "the second haproxy did not get the client $client: $(cat haproxy.out)"
	next_pp "haproxy's connection"
	want haproxy version 2
	want haproxy src "$client"
	want haproxy dst "127.0.0.1:$HF"
	note "haproxy: $(tr '\n' ' ' <haproxy.out)"
	note "$(since hwrap | grep 'event=open')"
	note "$(since hunwrap | grep 'event=open')"

	# A TLS client straight to the unwrap route sends no header.
	mark
	echo direct | timeout 10 openssl s_client -connect "127.0.0.1:$HU" \
	    -servername localhost >direct.out 2>&1
	wait_since hunwrap 'event=close ' 1
	[ "$(count_since hunwrap 'event=reject peer=127\.0\.0\.1:[0-9]+ reason="PROXY header: missing \(the connection starts with a TLS handshake\)"$')" \
	    -eq 1 ] || fail "a direct TLS client to hunwrap: $(since hunwrap)"
	[ "$(count_since hunwrap 'event=(open|tls|connect) ')" -eq 0 ] ||
	    fail "a direct TLS client to hunwrap got in: $(since hunwrap)"
	# A client of 127.0.0.1 straight to wrap is not its proxy.
	mark
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$HW" "direct" \
	    >direct2.out 2>direct2.err
	expect_rc 3 $? "a direct client to hwrap (reset)"
	log_has gw2.log "route=hwrap event=reject peer=(127\\.0\\.0\\.1:[0-9]+) reason=\"not in proxy_from: \\1\"\$"
	[ "$(count_since hwrap 'event=(open|connect) ')" -eq 0 ] ||
	    fail "a direct client to hwrap got in: $(since hwrap)"
	[ "$(grep -c . haproxy.out)" -eq 2 ] ||
	    fail "haproxy saw more than one session: $(cat haproxy.out)"
else
	note "no haproxy (Debian: haproxy): section 3 skipped"
fi

# --- 4. bad headers ---------------------------------------------------------------

{
	printf '[gateway]\nstats = unix:%s\n\n' "$sock"
	printf '[pp]\naccept = tcp://127.0.0.1:%s\n' "$P"
	printf 'accept_proxy = yes\nproxy_from = 127.0.0.1\n'
	printf 'handshake_timeout = 5\nconnect = tcp://127.0.0.1:%s\n\n' "$E"
	printf '[slow]\naccept = tcp://127.0.0.1:%s\n' "$L"
	printf 'accept_proxy = yes\nproxy_from = 127.0.0.1\n'
	printf 'handshake_timeout = 2\nconnect = tcp://127.0.0.1:%s\n\n' "$E"
	printf '[deny]\naccept = tcp://127.0.0.1:%s\n' "$D"
	printf 'allow_from = 10.0.0.0/8\nconnect = tcp://127.0.0.1:%s\n\n' "$E"
	printf '[allow]\naccept = tcp://127.0.0.1:%s\n' "$W"
	printf 'allow_from = 10.0.0.0/8, 127.0.0.0/8\n'
	printf 'connect = tcp://127.0.0.1:%s\n\n' "$E"
	printf '[mapped]\naccept = tcp://[::ffff:127.0.0.1]:%s\n' "$MP"
	printf 'allow_from = ::1, 127.0.0.1/32\n'
	printf 'connect = tcp://127.0.0.1:%s\n\n' "$E"
	printf '[claims]\naccept = tcp://127.0.0.1:%s\n' "$Q"
	printf 'accept_proxy = yes\nproxy_from = 127.0.0.1/32\n'
	printf 'allow_from = 192.0.2.0/24\nsend_proxy = v2\n'
	printf 'connect = tcp://127.0.0.1:%s\n\n' "$S"
	printf '[proxies]\naccept = tcp://127.0.0.1:%s\n' "$R"
	printf 'accept_proxy = yes\nproxy_from = 10.0.0.0/8\n'
	printf 'connect = tcp://127.0.0.1:%s\n' "$E"
} >gw3.ini
gw_start gw3 gw3.ini
gw3=$GW_PID
LOG=gw3.log
echoes=0	# connections the echo server must have seen
nbad=0		# refusals on route pp

# The slow cases, on route slow, in the background: a cut v1 header then
# the end; a cut v2 header then silence, the connection held open.
printf 'PROXY TCP4 192.0.2.1 127.0.' >slow1.bin
v2tcp4 192.0.2.2 127.0.0.1 4242 "$L" | head -c 20 >slow2.bin
t_slow=$(now_ms)
bg slow1 timeout 10 "$HELPERS/ppsink" -c 127.0.0.1 "$L" slow1.bin
slow1=$BG_PID
bg slow2 timeout 10 "$HELPERS/ppsink" -c -k 127.0.0.1 "$L" slow2.bin
slow2=$BG_PID

# What the good clients send after their header: another header of each
# version, and binary bytes.
{
	printf 'PROXY TCP4 198.51.100.1 127.0.0.1 1 2\r\n'
	v2tcp4 198.51.100.1 127.0.0.1 1 2
	head -c 3000 /dev/urandom
} >data.bin
# good N [SPLIT]: to route pp, a header claiming 192.0.2.N (v1 for odd N,
# v2 with TLVs for even N), then bytes that must arrive intact: another
# header and binary data. The echo is whole, the open line shows the
# claimed address via the local client, and the echo server saw one more
# connection. With SPLIT, the header is sent in two writes, 200 ms apart,
# the first of SPLIT bytes.
good() {
	mark
	if [ $(($1 % 2)) -eq 1 ]; then
		printf 'PROXY TCP4 192.0.2.%s 127.0.0.1 %s %s\r\n' "$1" \
		    $((4000 + $1)) "$P" >"good$1.bin"
	else
		{
			v2tcp4 "192.0.2.$1" 127.0.0.1 $((4000 + $1)) "$P" 18
			bytes 4 0 3 0 0 0	# NOOP, 3 bytes
			bytes 2 0 9
			printf 'authority'	# AUTHORITY, 9 bytes
		} >"good$1.bin"
	fi
	cat data.bin >>"good$1.bin"
	timeout 10 "$HELPERS/ppsink" -c ${2:+-s "$2"} 127.0.0.1 "$P" \
	    "good$1.bin" >"good$1.got" 2>"good$1.err" ||
	    fail "good client $1: $(cat "good$1.err")"
	same_file data.bin "good$1.got" "good client $1: the echo"
	echoes=$((echoes + 1))
	wait_since pp 'event=close reason=eof' 1
	[ "$(count_since pp "event=open peer=192\\.0\\.2\\.$1:$((4000 + $1)) via=127\\.0\\.0\\.1:[0-9]+\$")" \
	    -eq 1 ] || fail "good client $1: no open line: $(since pp)"
	[ "$(count_lines echo.err 'sink: accept')" -eq "$echoes" ] ||
	    fail "good client $1: the echo server saw" \
	    "$(count_lines echo.err 'sink: accept') connections, expected $echoes"
}

# local NAME: the header in NAME.bin (v2 LOCAL or v1 UNKNOWN: a proxy's own
# connection) is taken and what follows is echoed intact; the session is
# the proxy's: "peer=127.0.0.1:PORT proxy=local".
local_ok() {
	mark
	cat data.bin >>"$1.bin"
	timeout 10 "$HELPERS/ppsink" -c 127.0.0.1 "$P" "$1.bin" >"$1.got" \
	    2>"$1.err" || fail "$1: $(cat "$1.err")"
	same_file data.bin "$1.got" "$1: the echo"
	echoes=$((echoes + 1))
	wait_since pp 'event=close reason=eof' 1
	[ "$(count_since pp 'event=open peer=127\.0\.0\.1:[0-9]+ proxy=local$')" \
	    -eq 1 ] || fail "$1: no open line of the proxy's own: $(since pp)"
}

# bad NAME WHY: the file NAME.bin sent to route pp (then the end) is
# refused for "PROXY header: WHY": no open line, no connect, nothing back;
# a good client right after works.
bad() {
	mark
	timeout 15 "$HELPERS/ppsink" -c 127.0.0.1 "$P" "$1.bin" >"$1.got" \
	    2>"$1.err"
	_rc=$?
	nbad=$((nbad + 1))
	[ "$_rc" -eq 0 ] || [ "$_rc" -eq 3 ] ||
	    fail "$1: client exit $_rc: $(cat "$1.err")"
	[ ! -s "$1.got" ] || fail "$1: the client got an answer"
	wait_since pp 'event=close ' 1
	since pp >"$1.log"
	_why="reason=\"PROXY header: $2\""
	[ "$(grep -F " $_why" "$1.log" |
	    grep -Ec ' event=reject peer=127\.0\.0\.1:[0-9]+ reason=')" \
	    -eq 1 ] || fail "$1: not refused with $_why: $(cat "$1.log")"
	[ "$(grep -F " $_why" "$1.log" | grep -c ' event=close ')" -eq 1 ] ||
	    fail "$1: no close line with $_why: $(cat "$1.log")"
	log_lacks "$1.log" 'event=(open|connect) ' \
	    "$1: the session was let in: $(cat "$1.log")"
	good $((nbad + 10))
}

good 1
good 2
# Nothing at all, then the end: a probe (a port check), closed without a
# refusal; a good client right after works.
mark
timeout 10 "$HELPERS/ppsink" -c 127.0.0.1 "$P" /dev/null >empty.got 2>empty.err
wait_since pp 'event=close reason="closed before sending anything" ' 1
[ "$(count_since pp 'event=(reject|open|connect) ')" -eq 0 ] ||
    fail "a connection that sent nothing: $(since pp)"
good 9
# v1: 108 bytes without CRLF in the first 107; 150 bytes without CRLF;
# 107 bytes with CRLF: parsed (7 fields), not "longer".
{ printf 'PROXY TCP4 192.0.2.1 127.0.0.1 1 2 '; nchars 71 x; printf '\r\n'; } \
    >v1long108.bin
[ "$(wc -c <v1long108.bin)" -eq 108 ] || fail "test bug: v1long108.bin"
bad v1long108 'v1 header longer than 107 bytes'
{ printf 'PROXY TCP4 '; nchars 139 1; } >v1long150.bin
bad v1long150 'v1 header longer than 107 bytes'
{ printf 'PROXY TCP4 192.0.2.1 127.0.0.1 1 2 '; nchars 70 x; printf '\r\n'; } \
    >v1at107.bin
[ "$(wc -c <v1at107.bin)" -eq 107 ] || fail "test bug: v1at107.bin"
bad v1at107 'v1: malformed (PROXY TCP4 SRC DST SPORT DPORT)'
printf 'PROXY UNKNOWN\r\n' >v1unknown.bin
local_ok v1unknown
printf 'PROXY UNKNOWN 192.0.2.1 127.0.0.1 1 2\r\n' >v1unknown2.bin
local_ok v1unknown2
printf 'PROXY UDP4 192.0.2.1 127.0.0.1 1 2\r\n' >v1udp.bin
bad v1udp 'v1: unknown protocol (TCP4 or TCP6 expected)'
printf 'PROXY TCP4 192.0.2.1 127.0.0.1 1\r\n' >v1short.bin
bad v1short 'v1: malformed (PROXY TCP4 SRC DST SPORT DPORT)'
printf 'PROXY TCP4 192.0.2.300 127.0.0.1 1 2\r\n' >v1addr.bin
bad v1addr 'v1: bad TCP4 address'
printf 'PROXY TCP4 192.0.2.1 127.0.0.1 65536 2\r\n' >v1port.bin
bad v1port 'v1: bad port'
# v2: too long (2049 and 65551 bytes); exactly 2048 (a NOOP TLV) is fine
{ v2tcp4 192.0.2.1 127.0.0.1 1 2 2021; bytes 4; be16 2018; nchars 2018 z; } \
    >v2at2049.bin
[ "$(wc -c <v2at2049.bin)" -eq 2049 ] || fail "test bug: v2at2049.bin"
bad v2at2049 'v2 header of 2049 bytes, more than 2048'
v2 33 17 65535 >v2huge.bin
nchars 3000 z >>v2huge.bin
bad v2huge 'v2 header of 65551 bytes, more than 2048'
{ v2tcp4 192.0.2.3 127.0.0.1 4003 "$P" 2020; bytes 4; be16 2017; nchars 2017 z
    printf 'after 2048\n'; } >v2at2048.bin
[ "$(wc -c <v2at2048.bin)" -eq 2059 ] || fail "test bug: v2at2048.bin"
mark
got=$(timeout 10 "$HELPERS/ppsink" -c 127.0.0.1 "$P" v2at2048.bin \
    2>v2at2048.err) || fail "a v2 header of 2048 bytes: $(cat v2at2048.err)"
[ "$got" = "after 2048" ] || fail "a v2 header of 2048 bytes: got '$got'"
echoes=$((echoes + 1))
wait_since pp 'event=close reason=eof' 1
log_has gw3.log "route=pp session=[0-9]+ event=open peer=192\\.0\\.2\\.3:4003 via="
# v2 LOCAL; UNSPEC, UDP4 and unix families; version 1; addresses cut short
v2 32 0 0 >v2local.bin
local_ok v2local
{ v2 32 17 12; ip4 192.0.2.1; ip4 127.0.0.1; be16 1; be16 2; } >v2local4.bin
local_ok v2local4	# addresses, ignored
v2 33 0 0 >v2unspec.bin
local_ok v2unspec	# no address: the connection's own
{ v2 33 18 12; ip4 192.0.2.1; ip4 127.0.0.1; be16 1; be16 2; } >v2udp.bin
bad v2udp 'v2: unsupported address family and protocol 0x12 (TCP over IPv4 or IPv6 expected)'
{ v2 33 49 216; printf '/tmp/a'; head -c 210 /dev/zero; printf '/tmp/b'
    head -c 210 /dev/zero; } >v2unix.bin
bad v2unix 'v2: unsupported address family and protocol 0x31 (TCP over IPv4 or IPv6 expected)'
{ v2 17 17 12; ip4 192.0.2.1; ip4 127.0.0.1; be16 1; be16 2; } >v2ver1.bin
bad v2ver1 'v2: unknown version 1'
{ v2 33 17 8; ip4 192.0.2.1; ip4 127.0.0.1; } >v2cut.bin
bad v2cut 'v2: addresses cut short'
{ v2 33 33 20; nchars 20 a; } >v2cut6.bin
bad v2cut6 'v2: addresses cut short'
# No header: a TLS record, an HTTP request.
{ bytes 22 3 1 0 5 1 0 0 1 0; } >tls.bin
bad tls 'missing (the connection starts with a TLS handshake)'
printf 'GET / HTTP/1.0\r\n\r\n' >http.bin
bad http 'missing (the connection starts with something else)'
# Accepted: headers in two writes 200 ms apart, cut inside the v1 prefix,
# inside the v2 signature, inside the v2 addresses
good 41 3
good 42 7
good 44 22
[ "$(count_since pp 'event=close reason=eof .* ms=([2-9][0-9]{2}|[0-9]{4,})$')" \
    -eq 1 ] || fail "the split header did not take 200 ms: $(since pp)"
# The longest v1 header: TCP6, 104 bytes.
mark
{ printf 'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff '
  printf 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\nlongest\n'; } \
    >v1max.bin
[ "$(wc -c <v1max.bin)" -eq 112 ] || fail "test bug: v1max.bin"
got=$(timeout 10 "$HELPERS/ppsink" -c 127.0.0.1 "$P" v1max.bin \
    2>v1max.err) || fail "the longest v1 header: $(cat v1max.err)"
[ "$got" = longest ] || fail "the longest v1 header: got '$got'"
echoes=$((echoes + 1))
wait_since pp 'event=close reason=eof' 1
log_has gw3.log 'route=pp session=[0-9]+ event=open peer=\[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\]:65535 via='

# The slow ones: both refused, the held one after handshake_timeout.
wait_exit "$slow1" 10
rc1=$?
wait_exit "$slow2" 10
rc2=$?
t_slow=$(($(now_ms) - t_slow))
LOG=gw3.log _mark=0
wait_since slow 'event=close ' 2
[ "$(count_since slow 'event=reject peer=127\.0\.0\.1:[0-9]+ reason="PROXY header: ')" \
    -eq 2 ] || fail "the slow clients were not both refused: $(since slow)"
[ "$(count_since slow 'event=(open|connect) ')" -eq 0 ] ||
    fail "a slow client was let in: $(since slow)"
[ "$(count_since slow 'event=close reason="PROXY header: none within handshake_timeout" up=0 down=0 ms=(19[0-9]{2}|2[0-9]{3}|3[0-4][0-9]{2})$')" \
    -ge 1 ] || fail "the cut v2 header held open was not closed after" \
    "handshake_timeout = 2: $(since slow)"
[ "$t_slow" -ge 1900 ] || fail "the slow clients ended after ${t_slow} ms"
# the cut v1 header is refused at the end of its stream, not at the timeout
[ "$(count_since slow 'event=close reason="PROXY header: cut short \(27 bytes, then the end of the stream\)" up=0 down=0 ms=[0-9]{1,3}$')" \
    -eq 1 ] || fail "the cut v1 header then the end was not refused at" \
    "once as cut short: $(since slow)"
note "slow clients: exit $rc1 and $rc2 after ${t_slow} ms;" \
    "$(since slow | grep 'event=close' | sed 's/.*event=close //' | tr '\n' ';')"

# --- 5. allow_from and proxy_from --------------------------------------------

# refused_at ROUTE PORT LIST: a client of 127.0.0.1 is reset at once, one
# reject line names it (no session, no open line), nothing reaches the
# server
refused_at() {
	mark
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$2" "to $1" >"$1.out" \
	    2>"$1.err"
	expect_rc 3 $? "a client of 127.0.0.1 to route $1 (reset)"
	wait_since "$1" 'event=reject ' 1
	[ "$(count_since "$1" "^[^ ]+ warn route=$1 event=reject peer=(127\\.0\\.0\\.1:[0-9]+) reason=\"not in $3: \\1\"\$")" \
	    -eq 1 ] || fail "route $1: no reject line for 127.0.0.1: $(since "$1")"
	[ "$(count_since "$1" 'event=(open|connect|close) ')" -eq 0 ] ||
	    fail "route $1: a session was opened: $(since "$1")"
	note "$(since "$1")"
}
refused_at deny "$D" allow_from
refused_at proxies "$R" proxy_from
[ "$(count_lines echo.err 'sink: accept')" -eq "$echoes" ] ||
    fail "a refused client reached the echo server"
for r in "allow $W" "mapped $MP"; do
	set -- $r
	mark
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$2" "to $1" \
	    2>"$1.err") || fail "route $1: $(cat "$1.err")"
	[ "$got" = "to $1" ] || fail "route $1: got '$got'"
	echoes=$((echoes + 1))
	wait_since "$1" 'event=close reason=eof' 1
	note "$(since "$1" | grep event=open)"
done
[ "$(count_lines echo.err 'sink: accept')" -eq "$echoes" ] ||
    fail "the echo server saw $(count_lines echo.err 'sink: accept')" \
    "connections, expected $echoes"

# claim NAME: the header in NAME.hdr and a line, to route claims
claim() {
	{ cat "$1.hdr"; echo "from $1"; } >"$1.bin"
	mark
	timeout 10 "$HELPERS/ppsink" -c 127.0.0.1 "$Q" "$1.bin" >"$1.got" \
	    2>"$1.err"
}
printf 'PROXY TCP4 192.0.2.9 127.0.0.1 4242 %s\r\n' "$Q" >in4.hdr
claim in4 ||
    fail "a claim of 192.0.2.9: $(cat in4.err)"
[ "$(cat in4.got)" = "from in4" ] || fail "a claim of 192.0.2.9: got '$(cat in4.got)'"
wait_since claims 'event=close reason=eof' 1
[ "$(count_since claims 'event=open peer=192\.0\.2\.9:4242 via=127\.0\.0\.1:[0-9]+$')" \
    -eq 1 ] || fail "a claim of 192.0.2.9: $(since claims)"
next_pp "a claim of 192.0.2.9, passed on"
want claimed src 192.0.2.9:4242
want claimed dst "127.0.0.1:$Q"
note "$(since claims | grep event=open)"
printf 'PROXY TCP6 ::ffff:192.0.2.10 ::ffff:127.0.0.1 4243 %s\r\n' "$Q" \
    >in6.hdr
claim in6 ||
    fail "a claim of ::ffff:192.0.2.10: $(cat in6.err)"
[ "$(cat in6.got)" = "from in6" ] || fail "a claim of ::ffff:192.0.2.10: got '$(cat in6.got)'"
wait_since claims 'event=close reason=eof' 1
next_pp "a claim of ::ffff:192.0.2.10, passed on"
want claimed6 family TCP4
want claimed6 src 192.0.2.10:4243
want claimed6 dst "127.0.0.1:$Q"
note "$(since claims | grep event=open)"
# out NAME ERE-ADDR: the claim was refused after its open line
out() {
	wait_since claims 'event=close ' 1
	[ "$(count_since claims "event=open peer=$2 via=127\\.0\\.0\\.1:[0-9]+\$")" \
	    -eq 1 ] || fail "$1: no open line: $(since claims)"
	[ "$(count_since claims "event=reject reason=\"not in allow_from: $2\"\$")" \
	    -eq 1 ] || fail "$1: not refused (allow_from): $(since claims)"
	[ "$(count_since claims 'event=connect ')" -eq 0 ] ||
	    fail "$1: connected: $(since claims)"
	[ ! -s "$1.got" ] || fail "$1: got an answer"
	note "$(since claims | tr '\n' ' ')"
}
v2tcp4 198.51.100.1 127.0.0.1 5151 "$Q" >out4.hdr
claim out4
out out4 '198\.51\.100\.1:5151'
printf 'PROXY TCP6 2001:db8::1 ::1 5152 %s\r\n' "$Q" >out6.hdr
claim out6
out out6 '\[2001:db8::1\]:5152'
wait_count pps.err 'ppsink: accept' "$ppn"
[ "$(count_lines pps.err 'ppsink: accept')" -eq "$ppn" ] ||
    fail "a refused claim reached the server: $(tail -n 3 pps.err)"

# The refusals counted.
if command -v curl >/dev/null; then
	curl -sS --max-time 5 --unix-socket "$sock" http://localhost/metrics \
	    >stats.prom 2>stats.err || fail "curl: $(cat stats.err)"
	refusals() {	# refusals ROUTE REASON: the count
		sed -n "s/^tlsgate_refusals_total{route=\"$1\",reason=\"$2\"} //p" \
		    stats.prom
	}
	for c in "pp proxy $nbad" "pp allow_from 0" "slow proxy 2" \
	    "deny allow_from 1" "deny proxy 0" "proxies proxy 1" \
	    "proxies allow_from 0" "claims allow_from 2" "claims proxy 0" \
	    "allow allow_from 0" "mapped allow_from 0"; do
		set -- $c
		[ "$(refusals "$1" "$2")" = "$3" ] ||
		    fail "refusals of route $1 for $2: '$(refusals "$1" "$2")'," \
		    "expected $3: $(grep "route=\"$1\"" stats.prom |
		    grep refusals_total | grep -v ' 0$')"
	done
	figure "proxy: refusals counted: $(grep '^tlsgate_refusals_total' \
	    stats.prom | grep -v ' 0$' | sed 's/tlsgate_refusals_total//' |
	    tr '\n' ' ')"
else
	note "no curl: the stats counters are not checked"
fi
proc_alive "$gw3" || fail "gw3 died"

# --- 6. TLS on the unwrap side: the v2 TLVs -----------------------------------

LOG=gw1.log
# tls_hop WHAT: a demo client through wrap and unwrap (send_proxy = v2);
# ppsink gets the TLVs of unwrap's client, wrap
tls_hop() {
	mark
	got=$(timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "$1" \
	    2>"$1.err")
	proc_alive "$gw1" || fail "tlsgate died (unwrap, send_proxy = v2)" \
	    "on the first TLS client"
	[ "$got" = "$1" ] || fail "$1 through wrap and unwrap: got '$got':" \
	    "$(cat "$1.err")"
	next_pp "$1"
	wait_since unwrap 'event=close reason=eof' 1
	want "$1" version 2
	want "$1" family TCP4
	want "$1" src "$(opened unwrap)"
	want "$1" dst "127.0.0.1:$B"
	want "$1" tlv.authority localhost
	want "$1" ssl.verify 0
	want "$1" ssl.version TLSv1.3
	want "$1" ssl.cn client
	case $(field ssl.cipher) in
	TLS_[A-Z0-9_]*) ;;
	*) fail "$1: ssl.cipher is '$(field ssl.cipher)'" ;;
	esac
	if [ "$(count_since unwrap 'event=tls .* resumed=yes$')" -eq 1 ]; then
		want "$1 (resumed)" ssl.client 0x05
	else
		want "$1" ssl.client 0x03
	fi
	note "$1: $(since unwrap | grep event=tls | sed 's/.*event=tls //')"
	note "$1: $(tr '\n' ' ' <"ppd/$ppn")"
}
tls_hop first
tls_hop second
# openssl s_client straight to unwrap, with another server name
mark
echo sni | timeout 10 openssl s_client -connect "127.0.0.1:$B" \
    -servername x -CAfile "$CERTS/ca.pem" -cert "$CERTS/client.pem" \
    -key "$CERTS/client.key" >sni.out 2>&1 || fail "s_client: $(cat sni.out)"
proc_alive "$gw1" || fail "tlsgate died"
next_pp "s_client -servername x"
want sni tlv.authority x
want sni ssl.client 0x03
want sni ssl.verify 0
want sni ssl.cn client
want sni src "$(opened unwrap)"
note "s_client: $(tr '\n' ' ' <"ppd/$ppn")"
# no client certificate on verify = optional
mark
echo nocert | timeout 10 openssl s_client -connect "127.0.0.1:$O" \
    -servername y -CAfile "$CERTS/ca.pem" >nocert.out 2>&1 ||
    fail "s_client: $(cat nocert.out)"
proc_alive "$gw1" || fail "tlsgate died"
next_pp "s_client without a certificate"
want nocert tlv.authority y
want nocert ssl.client 0x01
want nocert ssl.verify 1
want nocert ssl.version TLSv1.3
lacks nocert ssl.cn
note "no certificate: $(tr '\n' ' ' <"ppd/$ppn")"
