#!/bin/sh
# 57-stats: the stats socket ([gateway] stats = unix:PATH, stats_mode).
#  1. promtool check metrics accepts the snapshot (curl --unix-socket, an
#     HTTP GET) before and after traffic; every histogram is consistent
#     (cumulative buckets, +Inf = _count).
#  2. Three echo sessions of known sizes through wrap+unwrap: sessions,
#     relayed bytes up and down on both routes are exactly what was sent,
#     handshakes completed = 3 (none failed), sessions_live back to 0 once
#     the close lines are logged (and 1 while a session is held open).
#  3. One refusal of each class, each on a route of its own: verification,
#     allow_peers, psk, not_tls, limits, timeout, connect. Each route
#     counts exactly 1 under its class and 0 under the eight others.
#  4. The socket is mode 0600 and owned by the test's user; stats_mode =
#     0660 makes it 0660. A client that sends nothing gets the same text
#     without an HTTP status line; HEAD gets the headers only.
#  5. tlsgate --stats PATH and --stats -c routes.ini print a row per route
#     with the counts of the snapshot.
#  6. SIGTERM: exit 0, socket gone. A second gateway on the same stats path
#     exits 1 naming the path ("in use"); a stale socket (kill -9) is
#     replaced at the next start.
. "$TESTLIB"

command -v promtool >/dev/null || skip "no promtool (Debian: prometheus)"
command -v curl >/dev/null || skip "no curl"
command -v psktool >/dev/null || skip "no psktool"
command -v gnutls-cli >/dev/null || skip "no gnutls-cli"

# Unix socket paths must fit in sun_path (108 bytes with the NUL).
sock=$PWD/s.sock
sock2=$PWD/s2.sock
if [ "${#sock2}" -ge 108 ]; then
	note "test directory too deep for sun_path: relative socket paths"
	sock=s.sock sock2=s2.sock
fi

ports A B C V P K N L H F Z E E2
psktool -u gw -p keys.psk >/dev/null || fail "psktool"
psktool -u gw -p wrong.psk >/dev/null || fail "psktool"
wrongkey=$(sed -n 's/^gw://p' wrong.psk)
if [ -z "$wrongkey" ] || [ "$wrongkey" = "$(sed -n 's/^gw://p' keys.psk)" ]; then
	fail "test bug: psk files"
fi

{
	printf '[gateway]\nstats = unix:%s\n\n' "$sock"
	demo_routes "$A" "$B" "$C"
	cat <<EOF

[verify]
$(tls_accept "$V")
connect = tcp://127.0.0.1:$C

[peers]
$(tls_accept "$P")
allow_peers = client
connect = tcp://127.0.0.1:$C

[psk]
accept = tls://127.0.0.1:$K
psk_file = keys.psk
connect = tcp://127.0.0.1:$C

[plain]
$(tls_accept "$N")
connect = tcp://127.0.0.1:$C

[limited]
accept = tcp://127.0.0.1:$L
connect = tcp://127.0.0.1:$C
max_sessions = 1

[slow]
$(tls_accept "$H")
connect = tcp://127.0.0.1:$C
handshake_timeout = 1

[nowhere]
accept = tcp://127.0.0.1:$F
connect = tcp://127.0.0.1:$Z
EOF
} >routes.ini
routes="wrap unwrap verify peers psk plain limited slow nowhere"

t_start=$(date +%s)
gw_start gw routes.ini
gw=$GW_PID
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

# scrape NAME [SOCK]: an HTTP GET of the metrics: the body in NAME.prom,
# the headers in NAME.hdr; promtool must accept the body.
scrape() {
	curl -sS --max-time 5 -D "$1.hdr" -o "$1.prom" --unix-socket \
	    "${2:-$sock}" http://localhost/metrics 2>"$1.curl" ||
	    fail "curl $1: $(cat "$1.curl")"
	head -n 1 "$1.hdr" | grep -q '^HTTP/1\.0 200 ' ||
	    fail "$1: status line: $(head -n 1 "$1.hdr")"
	grep -qi '^Content-Type: text/plain; version=0\.0\.4' "$1.hdr" ||
	    fail "$1: no Prometheus content type: $(cat "$1.hdr")"
	len=$(sed -n 's/^Content-Length: *\([0-9]*\).*/\1/Ip' "$1.hdr")
	[ "$len" = "$(wc -c <"$1.prom")" ] ||
	    fail "$1: Content-Length $len, body of $(wc -c <"$1.prom") bytes"
	promtool check metrics <"$1.prom" >"$1.promtool" 2>&1 ||
	    fail "promtool check metrics rejects $1.prom: $(head -n 5 "$1.promtool")"
	hist_ok "$1.prom"
}

# val FILE SERIES: the value of SERIES (name{labels} as written) in FILE
val() {
	awk -v k="$2" '$1 == k { print $2; f = 1; exit }
	    END { if (!f) print "missing" }' "$1"
}

# want FILE SERIES VALUE [OP]: SERIES is VALUE (or OP VALUE: -ge, -le)
want() {
	_v=$(val "$1" "$2")
	[ "$_v" != missing ] || fail "$1: no $2"
	case ${4:--eq} in
	-eq) [ "$_v" -eq "$3" ] ;;
	-ge) [ "$_v" -ge "$3" ] ;;
	-le) [ "$_v" -le "$3" ] ;;
	*) fail "test bug: want $4" ;;
	esac || fail "$1: $2 is $_v, expected ${4:--eq} $3"
}

# hist_ok FILE: every histogram series has non-decreasing buckets, ending
# with le="+Inf" equal to its _count.
hist_ok() {
	awk '
	/^#/ { next }
	$1 ~ /_bucket\{/ {
		k = $1; sub(/,le="[^"]*"\}$/, "}", k); sub(/_bucket\{/, "{", k)
		if (k in last && $2 + 0 < last[k]) bad = bad " " $1 " decreases"
		last[k] = $2 + 0
		if ($1 ~ /le="\+Inf"/) inf[k] = $2 + 0
		next
	}
	$1 ~ /_count\{/ { k = $1; sub(/_count\{/, "{", k); cnt[k] = $2 + 0 }
	END {
		for (k in cnt)
			if (!(k in inf) || inf[k] != cnt[k])
				bad = bad " " k ": +Inf " inf[k] " count " cnt[k]
		n = 0; for (k in cnt) n++
		if (n == 0) bad = " no histogram at all"
		if (bad != "") { print bad; exit 1 }
	}' "$1" >hist.err || fail "$1: histograms:$(cat hist.err)"
}

# --- 4. the socket itself, before any traffic --------------------------

[ -S "$sock" ] || fail "no socket at $sock"
[ "$(stat -c %a "$sock")" = 600 ] ||
    fail "socket mode $(stat -c %a "$sock"), expected 600"
[ "$(stat -c %u "$sock")" = "$(id -u)" ] ||
    fail "socket owned by uid $(stat -c %u "$sock"), expected $(id -u)"
log_has gw.log "event=stats socket=\"?$sock\"?( |\$)"

# --- 1. a snapshot before traffic --------------------------------------

scrape before
for r in $routes; do
	want before.prom "tlsgate_sessions_total{route=\"$r\"}" 0
	want before.prom "tlsgate_sessions_live{route=\"$r\"}" 0
done
want before.prom tlsgate_config_generation 1
want before.prom tlsgate_config_last_reload_success 1
want before.prom process_start_time_seconds "$t_start" -ge
want before.prom process_start_time_seconds "$(date +%s)" -le
want before.prom tlsgate_threads 1 -ge
want before.prom process_open_fds 1 -ge
want before.prom process_resident_memory_bytes 1 -ge
# Routes with a certificate of their own (client.pem on wrap, server.pem
# on the unwrap ones), not the psk route nor the tcp->tcp ones; the test
# certificates are valid for 10 years.
for r in wrap unwrap verify peers plain slow; do
	want before.prom "tlsgate_certificate_expiry_seconds{route=\"$r\"}" \
	    86400 -ge
done
for r in psk limited nowhere; do
	[ "$(val before.prom "tlsgate_certificate_expiry_seconds{route=\"$r\"}")" = missing ] ||
	    fail "route $r has no certificate but a certificate expiry"
done
for r in limited nowhere; do
	[ "$(val before.prom "tlsgate_handshakes_total{route=\"$r\",result=\"completed\"}")" = missing ] ||
	    fail "tcp->tcp route $r has handshake counters"
done

# A client that sends nothing gets the text alone (no HTTP status line).
if command -v nc >/dev/null && nc -h 2>&1 | grep -q -- '-U.*UNIX' &&
    nc -h 2>&1 | grep -q -- '-N.*[Ss]hutdown'; then
	timeout 5 nc -U -N "$sock" </dev/null >raw.prom 2>raw.err
elif command -v socat >/dev/null; then
	timeout 5 socat -u UNIX-CONNECT:"$sock" - </dev/null >raw.prom 2>raw.err
else
	skip "neither nc -U nor socat"
fi
[ -s raw.prom ] || fail "a client that sends nothing got nothing: $(cat raw.err)"
head -n 1 raw.prom | grep -q '^# HELP ' ||
    fail "raw snapshot starts with: $(head -n 1 raw.prom)"
log_lacks raw.prom '^HTTP/' "the raw snapshot has an HTTP status line"
log_lacks raw.prom "$(printf '\r')" "the raw snapshot has CRs"
# The same series, in the same order (values of the process may differ).
sed '/^#/!s/ [^ ]*$//' before.prom >before.keys
sed '/^#/!s/ [^ ]*$//' raw.prom >raw.keys
cmp -s before.keys raw.keys ||
    fail "the raw snapshot's series differ from the HTTP one: $(diff before.keys raw.keys | head -n 5)"
promtool check metrics <raw.prom >raw.promtool 2>&1 ||
    fail "promtool rejects the raw snapshot: $(head -n 5 raw.promtool)"

# HEAD: the headers, no body.
curl -sS --max-time 5 -I --unix-socket "$sock" http://localhost/metrics \
    >head.out 2>head.err || fail "curl -I: $(cat head.err)"
head -n 1 head.out | grep -q '^HTTP/1\.0 200 ' ||
    fail "HEAD: status line $(head -n 1 head.out)"
grep -qi '^Content-Length: *[1-9]' head.out || fail "HEAD: no Content-Length"
log_lacks head.out '^(# |tlsgate_|process_)' "HEAD got a body"

# --- 2. traffic through wrap and unwrap --------------------------------

total=0
i=0
for size in 1000 65536 250001; do
	i=$((i + 1))
	head -c "$size" /dev/urandom >"in$i"
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" <"in$i" >"out$i" \
	    2>"cli$i.err" || fail "echo session $i: $(cat "cli$i.err")"
	same_file "in$i" "out$i" "echo session $i"
	total=$((total + size))
done
wait_count gw.log 'route=wrap .*event=close reason=eof' 3
wait_count gw.log 'route=unwrap .*event=close reason=eof' 3

# --- 3. one refusal of each class ---------------------------------------

# The timeout first, in the background: a client that never sends a
# ClientHello to a route with handshake_timeout = 1.
bg silent "$HELPERS/xfer" -p 60000 127.0.0.1 "$H" /dev/null silent.got

# gnutls_to PORT NAME ARGS...: a gnutls-cli client, which must not get
# through (no retries: one connection)
gnutls_to() {
	_port=$1 _name=$2
	shift 2
	echo "from $_name" | timeout 10 gnutls-cli --logfile="$_name.cli" \
	    -p "$_port" --x509cafile "$CERTS/ca.pem" "$@" localhost \
	    >"$_name.out" 2>&1
	log_lacks "$_name.out" "^from $_name\$" "$_name: echoed back"
}

# verification: a client certificate from another CA
gnutls_to "$V" verify --x509certfile "$CERTS/other-client.pem" \
    --x509keyfile "$CERTS/other-client.key"
wait_log gw.log 'route=verify .*event=close'
# allow_peers: intruder, signed by the CA but not allowed
gnutls_to "$P" peers --x509certfile "$CERTS/intruder.pem" \
    --x509keyfile "$CERTS/intruder.key"
wait_log gw.log 'route=peers .*event=close'
# psk: the right identity with a wrong key
gnutls_to "$K" psk --priority 'NORMAL:+ECDHE-PSK:+PSK' --pskusername gw \
    --pskkey "$wrongkey"
wait_log gw.log 'route=psk .*event=close'
# not_tls: plain HTTP to a TLS port
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$N" "$(printf 'GET / HTTP/1.0\r\n\r\n')" \
    >plain.out 2>plain.err
[ ! -s plain.out ] || fail "not_tls: got an answer: $(head -c 200 plain.out)"
wait_log gw.log 'route=plain .*event=close'
# connect: a tcp->tcp route to a port where nothing listens
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$F" "hello" >nowhere.out \
    2>nowhere.err
[ ! -s nowhere.out ] || fail "connect: got an answer: $(cat nowhere.out)"
wait_log gw.log 'route=nowhere .*event=close'
# limits: max_sessions = 1, a second connection while one is held open
bg hold "$HELPERS/xfer" -p 60000 127.0.0.1 "$L" /dev/null hold.got
hold=$BG_PID
wait_log gw.log 'route=limited .*event=open'
timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$L" "over the limit" \
    >over.out 2>over.err
[ ! -s over.out ] || fail "limits: the refused client got: $(cat over.out)"
wait_log gw.log 'route=limited .*event=reject .*max_sessions'
scrape held
want held.prom 'tlsgate_sessions_live{route="limited"}' 1
want held.prom 'tlsgate_sessions_total{route="limited"}' 1
stop "$hold"
wait_log gw.log 'route=limited .*event=close'
# and the timeout, by now or within a few seconds
wait_log gw.log 'route=slow .*event=close' 5

# Each refusal was logged with a reason of its class (the source of the
# classes: stats_classify() on the logged reason).
for x in "verify:signer" "peers:allow_peers" "psk:psk identity" \
    "plain:not TLS" "limited:max_sessions" "slow:handshake timeout" \
    "nowhere:connect [^ ]*:$Z: Connection refused"; do
	log_has gw.log "^[^ ]+ warn route=${x%%:*} .*event=reject .*reason=.*${x#*:}"
done
note "rejects: $(grep -E 'event=reject' gw.log | sed 's/^[^ ]* //' | tr '\n' ';')"

# --- the counters after traffic ----------------------------------------

none_live() {
	curl -s --max-time 5 --unix-socket "$sock" http://localhost/ >live.prom &&
	    grep -q '^tlsgate_sessions_live{' live.prom &&
	    ! grep -Eq '^tlsgate_sessions_live\{.*\} [1-9]' live.prom
}
wait_for 5 "no session live" none_live
scrape after

# table FILE: the snapshot's counters per route, one line each in the
# order and columns of tlsgate --stats: route live sessions "bytes up"
# "bytes down" handshakes failed resumed refused (refusals of every class
# added up; 0 handshakes on routes without TLS).
table() {
	awk '
	/^#/ || $1 !~ /route="/ { next }
	{
		r = $1; sub(/.*route="/, "", r); sub(/".*/, "", r)
		if (!(r in seen)) { seen[r] = 1; order[++n] = r }
		c = 0
		if ($1 ~ /^tlsgate_sessions_live\{/) c = 1
		else if ($1 ~ /^tlsgate_sessions_total\{/) c = 2
		else if ($1 ~ /^tlsgate_relayed_bytes_total\{.*direction="up"/) c = 3
		else if ($1 ~ /^tlsgate_relayed_bytes_total\{.*direction="down"/) c = 4
		else if ($1 ~ /^tlsgate_handshakes_total\{.*result="completed"/) c = 5
		else if ($1 ~ /^tlsgate_handshakes_total\{.*result="failed"/) c = 6
		else if ($1 ~ /^tlsgate_handshakes_resumed_total\{/) c = 7
		else if ($1 ~ /^tlsgate_refusals_total\{/) c = 8
		if (c) v[r, c] += $2
	}
	END {
		for (i = 1; i <= n; i++) {
			r = order[i]; line = r
			for (c = 1; c <= 8; c++) line = line " " v[r, c] + 0
			print line
		}
	}' "$1"
}
table after.prom >after.table
res=$(val after.prom 'tlsgate_handshakes_resumed_total{route="wrap"}')
res2=$(val after.prom 'tlsgate_handshakes_resumed_total{route="unwrap"}')
plainfail=$(val after.prom 'tlsgate_handshakes_total{route="plain",result="failed"}')
# Every refused connection but the one over max_sessions (turned away
# before it became a session) counts as a session. A refusal after
# (verification, allow_peers) or during (psk, timeout) the handshake
# counts as a failed handshake; whether a plain-text client counts as one
# is left open. Resumptions depend on tickets: at most one a session.
cat >expected.table <<EOF
wrap 0 3 $total $total 3 0 $res 0
unwrap 0 3 $total $total 3 0 $res2 0
verify 0 1 0 0 0 1 0 1
peers 0 1 0 0 0 1 0 1
psk 0 1 0 0 0 1 0 1
plain 0 1 0 0 0 $plainfail 0 1
limited 0 1 0 0 0 0 0 1
slow 0 1 0 0 0 1 0 1
nowhere 0 1 0 0 0 0 0 1
EOF
cmp -s expected.table after.table ||
    fail "the counters differ from what was sent (route live sessions up down handshakes failed resumed refused):
$(diff expected.table after.table)"
if [ "$res" -gt 3 ] || [ "$res2" -gt 3 ] || [ "$plainfail" -gt 1 ]; then
	fail "resumed $res and $res2 of 3, plain's failed handshakes $plainfail"
fi

# Each refusal under its class, exactly once; every other class of every
# route 0 (9 routes x 11 classes, all present).
awk '$1 ~ /^tlsgate_refusals_total\{/ { n++; if ($2 != 0) print $1, $2 }
    END { print "series", n + 0 }' after.prom >refusals.got
cat >refusals.want <<EOF
tlsgate_refusals_total{route="verify",reason="verification"} 1
tlsgate_refusals_total{route="peers",reason="allow_peers"} 1
tlsgate_refusals_total{route="psk",reason="psk"} 1
tlsgate_refusals_total{route="plain",reason="not_tls"} 1
tlsgate_refusals_total{route="limited",reason="limits"} 1
tlsgate_refusals_total{route="slow",reason="timeout"} 1
tlsgate_refusals_total{route="nowhere",reason="connect"} 1
series 99
EOF
cmp -s refusals.want refusals.got ||
    fail "refusals by class:
$(diff refusals.want refusals.got)"

# The histograms count every handshake and every outgoing connection.
for r in wrap unwrap; do
	want after.prom "tlsgate_handshake_duration_seconds_count{route=\"$r\"}" 3
	want after.prom "tlsgate_connect_duration_seconds_count{route=\"$r\"}" 3
done
want after.prom 'tlsgate_handshake_duration_seconds_count{route="slow"}' 1
want after.prom 'tlsgate_connect_duration_seconds_count{route="nowhere"}' 1
want after.prom 'tlsgate_connect_duration_seconds_count{route="verify"}' 0
# The echo server saw the three echo sessions and the held one only.
[ "$(count_lines echo.err 'sink: accept')" -eq 4 ] ||
    fail "the echo server saw $(count_lines echo.err 'sink: accept') connections, expected 4"

# --- 5. tlsgate --stats --------------------------------------------------

"$TLSGATE" --stats "$sock" >table.out 2>table.err ||
    fail "tlsgate --stats $sock: exit $?: $(cat table.err)"
"$TLSGATE" --stats -c routes.ini >table2.out 2>table2.err ||
    fail "tlsgate --stats -c routes.ini: exit $?: $(cat table2.err)"
note "tlsgate --stats:"
sed 's/^/#   /' table.out
# shellcheck disable=SC2046
set -- $(head -n 1 table.out)
[ "$*" = "route live sessions bytes up bytes down handshakes failed resumed refused" ] ||
    fail "--stats header: $(head -n 1 table.out)"
# Its rows: one per route, in order, up to a blank line.
sed -n '2,/^$/p' table.out | awk 'NF { $1 = $1; print }' >table.rows
cmp -s after.table table.rows ||
    fail "tlsgate --stats rows differ from the snapshot:
$(diff after.table table.rows)"
for p in tlsgate_config_generation tlsgate_config_last_reload_success \
    tlsgate_threads process_open_fds process_resident_memory_bytes \
    process_start_time_seconds; do
	log_has table.out "^$p +[0-9]+\$" "--stats: no process line $p"
done
sed -n '1,/^$/p' table.out >table.routes
sed -n '1,/^$/p' table2.out >table2.routes
cmp -s table.routes table2.routes ||
    fail "--stats -c routes.ini differs: $(diff table.routes table2.routes | head -n 5)"

# --- 4. stats_mode, 6. a second gateway, SIGTERM -------------------------

cat >mode.ini <<EOF
[gateway]
stats = unix:$sock2
stats_mode = 0660

[extra]
accept = tcp://127.0.0.1:$E
connect = tcp://127.0.0.1:$C
EOF
gw_start gw2 mode.ini
[ "$(stat -c %a "$sock2")" = 660 ] ||
    fail "stats_mode = 0660: socket mode $(stat -c %a "$sock2")"
scrape mode "$sock2"
want mode.prom 'tlsgate_sessions_total{route="extra"}' 0
[ "$(val mode.prom 'tlsgate_sessions_total{route="wrap"}')" = missing ] ||
    fail "the second gateway's socket shows the first one's routes"
gw_stop gw2
expect_rc 0 $? "gw2 after SIGTERM"
[ ! -e "$sock2" ] || fail "$sock2 left behind after SIGTERM"

# The same stats path as gw's, other ports: refused at start.
cat >dup.ini <<EOF
[gateway]
stats = unix:$sock

[extra]
accept = tcp://127.0.0.1:$E2
connect = tcp://127.0.0.1:$C
EOF
timeout 10 "$TLSGATE" -c dup.ini >dup.out 2>dup.log </dev/null
expect_rc 1 $? "a second gateway on $sock"
log_has dup.log "event=exit .*$sock: in use" \
    "the second gateway's reason: $(tail -n 1 dup.log)"
log_lacks dup.log 'event=ready'
[ -S "$sock" ] || fail "the second gateway removed $sock"
scrape still
want still.prom 'tlsgate_sessions_total{route="wrap"}' 3

# A stale socket: gw killed with SIGKILL leaves it; the next start
# replaces it.
stop -KILL "$gw"
wait_exit "$gw" 5
[ -S "$sock" ] || fail "no stale socket after kill -9"
curl -s --max-time 5 --unix-socket "$sock" http://localhost/ >/dev/null &&
    fail "a stale socket answers"
gw_start gw3 dup.ini
scrape gw3
want gw3.prom 'tlsgate_sessions_total{route="extra"}' 0
[ "$(val gw3.prom 'tlsgate_sessions_total{route="wrap"}')" = missing ] ||
    fail "the restarted gateway shows the killed one's routes"
[ "$(stat -c %a "$sock")" = 600 ] || fail "replaced socket: mode $(stat -c %a "$sock")"
gw_stop gw3
expect_rc 0 $? "gw3 after SIGTERM"
[ ! -e "$sock" ] || fail "$sock left behind after SIGTERM"
log_lacks gw3.log 'event=stats .*reason='
"$TLSGATE" --stats "$sock" >gone.out 2>gone.err &&
    fail "tlsgate --stats on a removed socket succeeded"
note "--stats once gone: $(cat gone.err)"
