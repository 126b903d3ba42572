#!/bin/sh
# 58-check: the warnings about a weakened configuration.
#  - A clean file (demo_routes: loopback only, verify against ca, default
#    priority, keys mode 0600): -t prints no warning, -t --strict exits 0,
#    the gateway logs no event=config warning, and event=cert at info
#    level for the long-lived test certificates.
#  - A file with one weakening per route: -t prints on stderr exactly the
#    expected "FILE:LINE: [route] key: what" lines (LINE: the key's line,
#    or the section's when the key is not written), exits 0; -t --strict
#    exits 1. Each route alone in a file: --strict exits 1 with its own
#    warnings, 0 for the routes that weaken nothing (PSK-only wrap with
#    verify = none, loopback forward).
#  - -t -v explains an unwrap, a wrap and a forward route in a sentence
#    after the route's line (addresses, ca, allow_peers, "plaintext").
#  - The gateway logs the same warnings as warn event=config warning="...",
#    and event=cert (warn for a certificate that expires in 10 days or has
#    expired, info for a long-lived one); after the file is edited and
#    SIGHUP (event=reload result=ok), the new file's warnings and only
#    them.
#  - A priority string only narrower than the default gets no warning.
#  - IPv6 addresses are shown in brackets, in warnings and in -t -v; an
#    IPv4-mapped loopback is the loopback (and listens on IPv4); -v and
#    --strict without -t are a usage error (exit 2).
. "$TESTLIB"

# line_of FILE SECTION [KEY]: the line of KEY in [SECTION] of FILE, or of
# the [SECTION] line without KEY; nothing if there is none.
line_of() {
	awk -v s="[$2]" -v k="${3:-}" '
	    /^\[/ { sec = ($0 == s); if (sec && k == "") { print NR; exit }
		    next }
	    sec && $1 == k && $2 == "=" { print NR; exit }' "$1"
}

# lit TEXT: an ERE that matches TEXT literally
lit() {
	printf '%s\n' "$1" | sed 's,[][\.*^$+?(){}|],\\&,g'
}

# want_re FILE ROUTE KEY ERE: if FILE has [ROUTE] (in $sections), expect
# the warning "FILE:LINE: [ROUTE] KEY: <ERE>" (LINE: that of KEY, else of
# [ROUTE]); its ERE goes to stdout.
want_re() {
	case $sections in *" $2 "*) ;; *) return 0 ;; esac
	_h=$(line_of "$1" "$2")
	_l=$(line_of "$1" "$2" "$3")
	echo "^$(lit "$1:${_l:-$_h}: [$2] $3: ")$4\$"
}

want() {	# want FILE ROUTE KEY TEXT: want_re with a literal TEXT
	want_re "$1" "$2" "$3" "$(lit "$4")"
}

# The ERE of a priority warning: a list of the known items.
item='(TLS1\.1|TLS1\.0|CBC ciphers|RSA key exchange|SHA-1 signatures|other cipher suites)'
prio_re="allows what the default does not: $item(, $item)*"

# expectations FILE: the EREs of every warning FILE must get, one a line,
# for every route of this test that FILE holds.
expectations() {
	sections=" $(sed -n 's/^\[\(.*\)\]$/\1/p' "$1" | tr '\n' ' ') "
	want "$1" wrap-none verify "none: the server's certificate is not checked"
	want "$1" unwrap-noca ca "none (no ca): any client is accepted"
	want "$1" unwrap-none verify "none (no ca): any client is accepted"
	want "$1" unwrap-optional verify "optional: a client without a certificate is accepted"
	want "$1" wrap-optional verify "optional: the server's certificate is checked only if it sends one"
	want "$1" any-v4 accept "plaintext accepted from the network (0.0.0.0), not only from this host"
	want "$1" to-net connect "plaintext sent to 10.1.2.3, which may be another host"
	want "$1" to-name connect "plaintext sent to backend.example, which may be another host"
	want_re "$1" prio-cbc priority "$prio_re"
	want_re "$1" prio-tls11 priority "$prio_re"
	want_re "$1" prio-rsa priority "$prio_re"
	want "$1" key-open key "$PWD/open.key is open to group or others (mode 0644)"
	want "$1" psk-open psk_file "$PWD/psk-open.txt is open to group or others (mode 0640)"
	want_re "$1" cert-soon cert "$(lit "$PWD/soon.pem") expires in (9|10) days"
	want "$1" cert-old cert "$PWD/old.pem has expired"
	want "$1" eku-server cert "$CERTS/client.pem is not for TLS servers (its extended key usage)"
	want "$1" eku-client cert "$CERTS/server.pem is not for TLS clients (its extended key usage)"
	want "$1" any-v6 accept "plaintext accepted from the network ([::]), not only from this host"
	want "$1" other-addr accept "plaintext accepted from the network (192.0.2.1), not only from this host"
	want "$1" other-addr connect "plaintext sent to [2001:db8::1], which may be another host"
	# the routes of the reloaded file
	want "$1" late-optional verify "optional: a client without a certificate is accepted"
	want "$1" late-net connect "plaintext sent to 10.1.2.3, which may be another host"
	want_re "$1" late-soon cert "$(lit "$PWD/soon.pem") expires in (9|10) days"
}

# check_warnings GOT WANT WHAT: each line of GOT matches one ERE of WANT,
# each ERE one line of GOT.
check_warnings() {
	_g=$(grep -c . "$1") _w=$(grep -c . "$2")
	[ "$_g" -eq "$_w" ] || fail "$3: $_g warnings, expected $_w; got:
$(cat "$1")
expected:
$(cat "$2")"
	while IFS= read -r _re; do
		[ "$(grep -Ec -- "$_re" "$1")" -eq 1 ] ||
		    fail "$3: $(grep -Ec -- "$_re" "$1") lines match /$_re/; got:
$(cat "$1")"
	done <"$2"
}

# prio_items FILE ROUTE: the list of the route's priority warning in FILE
prio_items() {
	sed -n "s/^.*: \\[$2\\] priority: allows what the default does not: //p" "$1"
}

ports A B C P1 P2 P3 P4 P5 P6 P7 P8 P9 P10 P11 P12 P13 P14 P15 P16 P17 \
    P18 P19 P20 D1 D2 D3

# --- the test certificates and keys ------------------------------------

for k in server client; do
	m=$(stat -c %a "$CERTS/$k.key") || fail "no $CERTS/$k.key"
	[ "$m" = 600 ] || fail "test bug: $CERTS/$k.key has mode $m, not 600"
done
certtool --version >/dev/null 2>&1 || skip "no certtool"
# cert NAME TEMPLATE-LINES...: NAME.pem/NAME.key for localhost, signed by
# the test CA
cert() {
	_c=$1
	shift
	(umask 077 && certtool --generate-privkey --key-type=ecdsa \
	    --curve=secp256r1 --outfile "$_c.key") 2>"$_c.err" ||
	    fail "certtool: $(cat "$_c.err")"
	chmod 600 "$_c.key"
	printf '%s\n' "cn = localhost" "dns_name = localhost" \
	    "ip_address = 127.0.0.1" tls_www_server signing_key "$@" >"$_c.tmpl"
	certtool --generate-certificate --load-privkey "$_c.key" \
	    --load-ca-certificate "$CERTS/ca.pem" \
	    --load-ca-privkey "$CERTS/ca.key" --template "$_c.tmpl" \
	    --outfile "$_c.pem" 2>"$_c.err" || fail "certtool: $(cat "$_c.err")"
}
cert soon "expiration_days = 10"
cert old 'activation_date = "2020-01-01 00:00:00"' \
    'expiration_date = "2021-01-01 00:00:00"'
certtool -i --infile old.pem | grep -q 'Not After: .* 2021' ||
    fail "test bug: old.pem: $(certtool -i --infile old.pem | grep -A2 Validity)"
cp "$CERTS/server.key" open.key && chmod 644 open.key
printf 'id1:00112233445566778899aabbccddeeff\n' >psk.txt
chmod 600 psk.txt
cp psk.txt psk-open.txt && chmod 640 psk-open.txt

# --- a clean file ------------------------------------------------------

{
	demo_routes "$A" "$B" "$C"
	printf '\n[forward]\naccept = tcp://127.0.0.1:%s\nconnect = tcp://localhost:%s\n' "$P1" "$C"
} >clean.ini
sed -i "/^\\[unwrap\\]/,/^\\[forward\\]/ s/^connect = .*/allow_peers = client\\n&/" clean.ini
sed -i "/^\\[wrap\\]/,/^\\[unwrap\\]/ s/^server_name = localhost\$/&\\nallow_peers = localhost/" clean.ini
grep -c '^allow_peers' clean.ini | grep -qx 2 || fail "test bug: clean.ini"

gw_run clean -t -c clean.ini
expect_rc 0 "$rc" "-t on a clean file"
[ ! -s clean.err ] || fail "-t on a clean file warns: $(cat clean.err)"
[ "$(grep -c . clean.out)" -eq 3 ] || fail "-t on a clean file: $(cat clean.out)"
gw_run clean-strict -t --strict -c clean.ini
expect_rc 0 "$rc" "-t --strict on a clean file"
[ ! -s clean-strict.err ] || fail "-t --strict on a clean file: $(cat clean-strict.err)"

# -t -v: each route's line, then its sentence
gw_run explain -t -v -c clean.ini
expect_rc 0 "$rc" "-t -v on a clean file"
[ ! -s explain.err ] || fail "-t -v on a clean file: $(cat explain.err)"
note "-t -v: $(cat explain.out)"
[ "$(grep -c . explain.out)" -eq 6 ] || fail "-t -v: not 6 lines: $(cat explain.out)"
# sentence ROUTE ERE: the line after ROUTE's line is "  ROUTE: ..." and
# matches ERE
sentence() {
	_s=$(awk -v r="$1" 'p { print; exit } $1 == r { p = 1 }' explain.out)
	printf '%s\n' "$_s" | grep -Eq -- "^  $1: $2" ||
	    fail "-t -v: the sentence of $1 is not /$2/: '$_s'"
}
ca_re=$(lit "$CERTS/ca.pem")
sentence unwrap "accepts TLS on 127\\.0\\.0\\.1:$B .*chains to $ca_re.* names client.*; then connects in plaintext to 127\\.0\\.0\\.1:$C; its session tickets resume on this process only\$"
sentence wrap "accepts plaintext on 127\\.0\\.0\\.1:$A; .*connects with TLS to 127\\.0\\.0\\.1:$B, .*chains to $ca_re .*valid for localhost.* names localhost.*certificate of $(lit "$CERTS/client.pem")"
sentence forward "accepts plaintext on 127\\.0\\.0\\.1:$P1 .*plaintext to localhost:$C"
grep -q '^  ' clean.out && fail "-t without -v explains: $(cat clean.out)"

gw_start clean clean.ini
log_lacks clean.log 'event=config'
log_lacks clean.log '^[^ ]+ warn '
log_has clean.log "^[^ ]+ info route=unwrap event=cert expires_in_days=36(49|50)\$"
log_has clean.log "^[^ ]+ info route=wrap event=cert expires_in_days=36(49|50)\$"
log_lacks clean.log 'route=forward .*event=cert'
gw_stop clean
expect_rc 0 $? "the clean gateway after SIGTERM"

# --- one weakening per route -------------------------------------------

# The routes a gateway can start with (main.part), then those with an
# address it may not be able to listen on, that only -t reads (tail.part,
# last so that the lines of main.part stay the same in both files).
cat >main.part <<EOF
[wrap-none]
accept = tcp://127.0.0.1:$P1
connect = tls://127.0.0.1:$B
ca = $CERTS/ca.pem
verify = none
server_name = localhost

[unwrap-noca]
accept = tls://127.0.0.1:$P2
cert = $CERTS/server.pem
key = $CERTS/server.key
connect = tcp://127.0.0.1:$C

[unwrap-none]
accept = tls://127.0.0.1:$P3
cert = $CERTS/server.pem
key = $CERTS/server.key
verify = none
connect = tcp://127.0.0.1:$C

[unwrap-optional]
$(tls_accept "$P4")
verify = optional
connect = tcp://127.0.0.1:$C

[wrap-optional]
accept = tcp://127.0.0.1:$P5
connect = tls://127.0.0.1:$B
ca = $CERTS/ca.pem
server_name = localhost
verify = optional

[any-v4]
accept = tcp://0.0.0.0:$P6
connect = tcp://127.0.0.1:$C

[to-net]
accept = tcp://127.0.0.1:$P7
connect = tcp://10.1.2.3:$C

[to-name]
accept = tcp://127.0.0.1:$P8
connect = tcp://backend.example:$C

[prio-cbc]
accept = tcp://127.0.0.1:$P9
$(tls_connect "$B")
priority = NORMAL:-VERS-ALL:+VERS-TLS1.2:+AES-128-CBC:+SHA1

[prio-tls11]
accept = tcp://127.0.0.1:$P10
$(tls_connect "$B")
priority = NORMAL:+VERS-TLS1.1

[prio-rsa]
$(tls_accept "$P11")
priority = NORMAL:+RSA
connect = tcp://127.0.0.1:$C

[key-open]
accept = tls://127.0.0.1:$P12
cert = $CERTS/server.pem
key = $PWD/open.key
ca = $CERTS/ca.pem
connect = tcp://127.0.0.1:$C

[psk-open]
accept = tls://127.0.0.1:$P13
psk_file = $PWD/psk-open.txt
connect = tcp://127.0.0.1:$C

[cert-soon]
accept = tls://127.0.0.1:$P14
ca = $CERTS/ca.pem
cert = $PWD/soon.pem
key = $PWD/soon.key
connect = tcp://127.0.0.1:$C

[cert-old]
accept = tls://127.0.0.1:$P15
ca = $CERTS/ca.pem
cert = $PWD/old.pem
key = $PWD/old.key
connect = tcp://127.0.0.1:$C

[eku-server]
accept = tls://127.0.0.1:$P16
cert = $CERTS/client.pem
key = $CERTS/client.key
ca = $CERTS/ca.pem
connect = tcp://127.0.0.1:$C

[eku-client]
accept = tcp://127.0.0.1:$P17
connect = tls://127.0.0.1:$B
ca = $CERTS/ca.pem
cert = $CERTS/server.pem
key = $CERTS/server.key
server_name = localhost

[psk-wrap]
accept = tcp://127.0.0.1:$P18
connect = tls://127.0.0.1:$P13
psk_file = $PWD/psk.txt
verify = none

[local]
accept = tcp://127.0.0.2:$P19
connect = tcp://LOCALHOST:$C

[local6]
accept = tcp://[::ffff:127.0.0.1]:$P20
connect = tcp://[::1]:$C
EOF
cat >tail.part <<EOF

[any-v6]
accept = tcp://[::]:$D1
connect = tcp://127.0.0.1:$C

[other-addr]
accept = tcp://192.0.2.1:$D2
connect = tcp://[2001:db8::1]:$C
EOF
cat main.part tail.part >warn.ini
nroutes=$(grep -c '^\[' warn.ini)

expectations warn.ini >warn.want
[ "$(grep -c . warn.want)" -eq 20 ] || fail "test bug: $(cat warn.want)"
if [ "$(line_of warn.ini wrap-none verify)" != 5 ] ||
    [ "$(line_of warn.ini unwrap-noca)" != 8 ] ||
    [ -n "$(line_of warn.ini unwrap-noca ca)" ]; then
	fail "test bug: line_of"
fi

gw_run warn -t -c warn.ini
expect_rc 0 "$rc" "-t on a file with warnings"
note "-t warnings: $(cat warn.err)"
[ "$(grep -c . warn.out)" -eq "$nroutes" ] ||
    fail "-t: $(grep -c . warn.out) lines on stdout for $nroutes routes: $(cat warn.out)"
log_lacks warn.out 'warn\.ini:' "-t prints warnings on stdout"
check_warnings warn.err warn.want "-t on warn.ini"
items=$(prio_items warn.err prio-cbc)
case $items in
*TLS1.*) fail "prio-cbc allows only TLS 1.2, but: $items" ;;
esac
case $items in
*"CBC ciphers"*"SHA-1 signatures"*) ;;
*) fail "prio-cbc: no CBC ciphers, SHA-1 signatures in: $items" ;;
esac
case $(prio_items warn.err prio-tls11) in
*TLS1.1*) ;;
*) fail "prio-tls11: no TLS1.1 in: $(prio_items warn.err prio-tls11)" ;;
esac
case $(prio_items warn.err prio-rsa) in
*"RSA key exchange"*) ;;
*) fail "prio-rsa: no RSA key exchange in: $(prio_items warn.err prio-rsa)" ;;
esac

gw_run warn-strict -t --strict -c warn.ini
expect_rc 1 "$rc" "-t --strict on a file with warnings"
same_file warn.err warn-strict.err "the warnings of -t --strict"
same_file warn.out warn-strict.out "the routes of -t --strict"

# -t -v of a route that any client reaches
gw_run warn-v -t -v -c warn.ini
expect_rc 0 "$rc" "-t -v on warn.ini"
log_has warn-v.out "^  unwrap-noca: accepts TLS on 127\\.0\\.0\\.1:$P2 from any client; then connects in plaintext to 127\\.0\\.0\\.1:$C; its session tickets resume on this process only\$"
log_has warn-v.out "^  wrap-optional: .*valid for localhost \\(if it sends one\\)\$"
log_has warn-v.out "^  any-v6: accepts plaintext on \\[::\\]:$D1 and connects in plaintext to 127\\.0\\.0\\.1:$C, without TLS\$"
log_has warn-v.out "^  other-addr: .* to \\[2001:db8::1\\]:$C, without TLS\$"

# -v and --strict only go with -t: alone they are a usage error.
for o in -v --strict; do
	gw_run alone "$o" -c warn.ini
	expect_rc 2 "$rc" "$o without -t"
	log_has alone.err "^tlsgate: $o goes with -t\$"
done

# Each route alone in a file.
for r in $(sed -n 's/^\[\(.*\)\]$/\1/p' warn.ini); do
	awk -v s="[$r]" '/^\[/ { p = ($0 == s) } p' warn.ini >"one-$r.ini"
	expectations "one-$r.ini" >"one-$r.want"
	gw_run "one-$r" -t -c "one-$r.ini"
	expect_rc 0 "$rc" "-t on one-$r.ini"
	check_warnings "one-$r.err" "one-$r.want" "-t on one-$r.ini"
	gw_run "one-$r-strict" -t --strict -c "one-$r.ini"
	if [ -s "one-$r.want" ]; then
		expect_rc 1 "$rc" "-t --strict on one-$r.ini"
	else
		expect_rc 0 "$rc" "-t --strict on one-$r.ini"
	fi
	same_file "one-$r.err" "one-$r-strict.err" "-t --strict on one-$r.ini"
	# fewer files for test/run to show on a failure (still searched
	# for sanitizer reports)
	cat "one-$r.err" "one-$r-strict.err" >>one-routes.err
	rm -f "one-$r.err" "one-$r-strict.err" "one-$r.out" "one-$r-strict.out"
done

# --- the gateway: at start, and after a reload --------------------------

# config_warnings LOG FIRST: the warnings of LOG from its line FIRST on
config_warnings() {
	tail -n "+$2" "$1" |
	    sed -n 's/^[^ ]* warn event=config warning="\(.*\)"$/\1/p'
}

cp main.part routes.ini
expectations routes.ini >start.want
gw_start gw routes.ini
config_warnings gw.log 1 >start.got
check_warnings start.got start.want "the warnings logged at start"
[ "$(count_lines gw.log 'event=config')" -eq "$(grep -c . start.got)" ] ||
    fail "event=config lines not as warn event=config warning=\"...\": $(grep 'event=config' gw.log)"
log_has gw.log "^[^ ]+ warn route=cert-soon event=cert expires_in_days=(9|10)\$"
# [::ffff:127.0.0.1] listens on IPv4's 127.0.0.1: a client reaches it
# (and is reset at once: nothing listens where local6 connects)
timeout 5 nc -z 127.0.0.1 "$P20" >/dev/null 2>&1
wait_log gw.log 'route=local6 session=[0-9]+ event=open peer=\[::ffff:127\.0\.0\.1\]:[0-9]+$' 5
since=$(( ($(date +%s) - $(date -d '2021-01-01 00:00:00Z' +%s)) / 86400 ))
log_has gw.log "^[^ ]+ warn route=cert-old event=cert expires_in_days=-($since|$((since + 1)))\$"
log_has gw.log "^[^ ]+ info route=key-open event=cert expires_in_days=36(49|50)\$"
log_has gw.log "^[^ ]+ info route=eku-server event=cert expires_in_days=36(49|50)\$"
log_lacks gw.log 'route=(to-net|psk-open|psk-wrap|wrap-optional) .*event=cert'

# The file edited: the clean routes, and three new weakenings.
{
	demo_routes "$A" "$B" "$C"
	cat <<EOF

[late-optional]
$(tls_accept "$D1")
verify = optional
connect = tcp://127.0.0.1:$C

[late-net]
accept = tcp://127.0.0.1:$D2
connect = tcp://10.1.2.3:$C

[late-soon]
accept = tls://127.0.0.1:$D3
ca = $CERTS/ca.pem
cert = $PWD/soon.pem
key = $PWD/soon.key
connect = tcp://127.0.0.1:$C
EOF
} >routes.new
mv routes.new routes.ini
expectations routes.ini >reload.want
[ "$(grep -c . reload.want)" -eq 3 ] || fail "test bug: $(cat reload.want)"
first=$(($(wc -l <gw.log) + 1))
kill -HUP "$GW_PID" || fail "cannot signal tlsgate"
wait_log gw.log 'event=reload result=ok'
config_warnings gw.log "$first" >reload.got
check_warnings reload.got reload.want "the warnings logged at the reload"
tail -n "+$first" gw.log >reload.log
log_has reload.log "^[^ ]+ warn route=late-soon event=cert expires_in_days=(9|10)\$"
log_has reload.log "^[^ ]+ info route=unwrap event=cert expires_in_days=36(49|50)\$"
log_lacks reload.log 'route=cert-(soon|old) event=cert'
gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"

# --- a priority only narrower than the default --------------------------

cat >narrow.ini <<EOF
[narrow]
accept = tcp://127.0.0.1:$P1
$(tls_connect "$B")
priority = NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:-MAC-ALL:+AEAD:-GROUP-ALL:+GROUP-X25519
EOF
gw_run narrow -t --strict -c narrow.ini
[ ! -s narrow.err ] || fail "a priority narrower than the default warns: $(cat narrow.err)"
expect_rc 0 "$rc" "-t --strict with a narrower priority"
