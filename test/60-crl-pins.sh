#!/bin/sh
# 60-crl-pins: certificate revocation lists (crl, crl_expired) and key
# pinning (pin_sha256, verify = pin), with real peers on both sides.
#  1. tlsgate --pin C.pem prints what openssl prints for the SHA-256 of
#     the certificate's SubjectPublicKeyInfo, in base64 (four
#     certificates, each pin different); --pin of a missing file or of a
#     key file exits 1 with a message on stderr and nothing on stdout.
#  2. Configuration errors (-t exits 2, stderr names the route and key):
#     crl without ca, with verify = none, with verify = pin; a CRL signed
#     by another CA ("crl: FILE: CRL 1: not signed by a CA of ca"), the
#     second CRL of a file so ("CRL 2: ..."); a certificate given as crl;
#     crl_expired without crl, or not warn/refuse; pin_sha256 not the
#     base64 of 32 bytes (text, 16 bytes, one bad item of two), or with
#     no verification; verify = pin without pin_sha256, or with ca.
#  3. The main gateway: -t exits 0 without a warning, -t -v says "not
#     revoked by its crl", "with a pinned key", "whose key is pinned
#     (pin_sha256)"; at start "info route=crl event=crl
#     next_update_in_days=29" (a CRL made with 30 days), no event=crl for
#     a route without crl, no event=config warning.
#  4. crl on an unwrap route: CN=client (gnutls-cli, openssl s_client) is
#     served; CN=revoked (its serial in the CRL) is refused by both with
#     'warn route=crl session=N event=reject reason="certificate
#     revoked"', the client gets a TLS alert (bad certificate), its line
#     never reaches the plaintext server; a client whose own serial is not
#     revoked but whose presented intermediate CA is, is refused so too
#     (the same chain is served by a route without crl).
#  5. crl on wrap routes: tlsgate's wrap -> unwrap chain (crl and a
#     matching pin_sha256 on the wrap side) carries data; a wrap route
#     with a revoked client certificate is refused by the unwrap route
#     (certificate revoked), no data; a wrap route to openssl s_server
#     with a revoked server certificate refuses it ("certificate
#     revoked"), s_server gets an alert, the plaintext client gets
#     nothing; a wrap route with crl to gnutls-serv (not revoked) gets
#     its echo.
#  6. Reloads (SIGHUP) of route hup: without crl CN=revoked is served and
#     an openssl s_client session of it (and of CN=client) resumes; a
#     reload that adds crl: the revoked client's saved session is not
#     resumed and is refused (certificate revoked), no data; CN=client's
#     session saved before is not resumed (the ticket key changed) but it
#     is served; event=crl is logged at the reload; a reload to a CRL of
#     another CA fails (error event=config error="...: CRL 1: not signed
#     by a CA of ca", result=failed) and the revoked client stays out; a
#     reload to a CRL without its serial lets it in again.
#  7. pin_sha256 after chain verification (verify = require): CN=client,
#     listed second, is served; CN=intruder (a valid chain) is refused
#     with reason="key not pinned: the peer's pin_sha256 is <its pin>";
#     a pinned self-signed certificate is refused for its chain
#     (signer not found) before pins are looked at. A wrap route with the
#     wrong pin for tlsgate's unwrap server is refused so too.
#  8. verify = pin (no chain check): on an unwrap route a self-signed
#     client certificate that is pinned is served (gnutls-cli and openssl
#     s_client), another self-signed one (s_client) and a CA-signed one
#     (gnutls-cli) are refused with the key-not-pinned reason and an
#     alert; on a wrap route to gnutls-serv with a self-signed server
#     certificate, the pinned key gets the echo, a route pinning another
#     key is refused with the server's pin in the reason, no data.
#  9. An expired CRL (next update 2020-02-01): -t prints "FILE:LINE:
#     [stale-warn] crl: PATH is past its next update: peers are still
#     checked against it" (and a line for the crl_expired = refuse route),
#     exits 0, 1 with --strict; the gateway logs them as warn event=config
#     warning="...", and "warn route=stale-warn event=crl
#     next_update_in_days=-N" (N: the days since); with the default
#     crl_expired = warn CN=client is served and CN=revoked refused
#     (certificate revoked); with crl_expired = refuse CN=client is
#     refused with reason="certificate revocation list expired
#     (crl_expired = refuse)", CN=revoked with "certificate revoked", and
#     a client of another CA of the route's ca (no CRL of its issuer) is
#     served.
# Finally the plaintext server saw exactly the connections that were let
# in.
. "$TESTLIB"

for t in certtool gnutls-cli gnutls-serv openssl base64; do
	command -v "$t" >/dev/null 2>&1 || skip "no $t"
done
umask 077	# keys open to others would be warned about

ports B1 B2 B3 B4 B5 B6 A1 A2 A3 A4 A5 A6 A7 S1 S2 S3 C

# --- certificates and CRLs -------------------------------------------------

key() {
	certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
	    --outfile "$1.key" >/dev/null 2>&1 || fail "certtool: key $1"
}

# signed NAME CA LINES...: NAME.pem/NAME.key signed by CA (CA.pem, CA.key)
signed() {
	_n=$1 _ca=$2
	shift 2
	key "$_n"
	printf '%s\n' "$@" signing_key "expiration_days = 3650" >"$_n.tmpl"
	certtool --generate-certificate --load-privkey "$_n.key" \
	    --load-ca-certificate "$_ca.pem" --load-ca-privkey "$_ca.key" \
	    --template "$_n.tmpl" --outfile "$_n.pem" >/dev/null 2>&1 ||
	    fail "certtool: certificate $_n"
}

# selfsigned NAME LINES...: a self-signed NAME.pem/NAME.key
selfsigned() {
	_n=$1
	shift
	key "$_n"
	printf '%s\n' "$@" signing_key "expiration_days = 3650" >"$_n.tmpl"
	certtool --generate-self-signed --load-privkey "$_n.key" \
	    --template "$_n.tmpl" --outfile "$_n.pem" >/dev/null 2>&1 ||
	    fail "certtool: self-signed $_n"
}

# crl OUT CA REVOKED LINES...: a CRL of CA into OUT revoking the
# certificates of the file REVOKED (none if empty), template LINES
crl() {
	_o=$1 _ca=$2 _rev=$3
	shift 3
	printf '%s\n' "$@" >"$_o.tmpl"
	# shellcheck disable=SC2086
	certtool --generate-crl --load-ca-privkey "$_ca.key" \
	    --load-ca-certificate "$_ca.pem" \
	    ${_rev:+--load-certificate "$_rev"} --template "$_o.tmpl" \
	    --outfile "$_o" >/dev/null 2>&1 || fail "certtool: CRL $_o"
}

CA=$CERTS/ca
signed revoked "$CA" "cn = revoked" tls_www_client
signed revoked-server "$CA" "cn = localhost" "dns_name = localhost" \
    "ip_address = 127.0.0.1" tls_www_server
signed inter "$CA" "cn = intermediate CA" ca cert_signing_key \
    crl_signing_key
signed via-inter inter "cn = via-inter" tls_www_client
cat via-inter.pem inter.pem >via-inter-chain.pem
cp via-inter.key via-inter-chain.key
selfsigned self-a "cn = self-a" tls_www_client
selfsigned self-b "cn = self-b" tls_www_client
selfsigned self-srv "cn = localhost" "dns_name = localhost" \
    "ip_address = 127.0.0.1" tls_www_server
cat revoked.pem inter.pem revoked-server.pem >revoke-list.pem
crl crl.pem "$CA" revoke-list.pem "crl_next_update = 30"
crl empty.pem "$CA" "" "crl_next_update = 30"
crl other.pem "$CERTS/other-ca" "" "crl_next_update = 30"
cat crl.pem other.pem >two.pem
crl expired.pem "$CA" revoked.pem \
    'crl_this_update_date = "2020-01-01 00:00:00"' \
    'crl_next_update_date = "2020-02-01 00:00:00"' \
    'crl_revocation_date = "2020-01-01 00:00:00"'
cat "$CERTS/ca.pem" "$CERTS/other-ca.pem" >cas.pem
[ "$(certtool --crl-info --infile crl.pem | grep -c 'Serial Number')" \
    -eq 3 ] || fail "test bug: crl.pem does not revoke 3 certificates"

# --- 1. --pin ----------------------------------------------------------------

ossl_pin() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin \
	    -outform der | openssl dgst -sha256 -binary | base64
}
# pin VAR FILE: VAR gets tlsgate --pin FILE, which must be openssl's
pins_seen=
pin() {
	gw_run pin --pin "$2"
	expect_rc 0 "$rc" "--pin $2 ($(cat pin.err))"
	_p=$(cat pin.out)
	printf '%s\n' "$_p" | grep -Eqx '[A-Za-z0-9+/]{43}=' ||
	    fail "--pin $2 printed \"$_p\", not the base64 of 32 bytes"
	[ "$_p" = "$(ossl_pin "$2")" ] ||
	    fail "--pin $2 printed $_p, openssl says $(ossl_pin "$2")"
	case " $pins_seen " in *" $_p "*) fail "--pin $2: $_p again" ;; esac
	pins_seen="$pins_seen $_p"
	eval "$1=\$_p"
}
pin PIN_CLIENT "$CERTS/client.pem"
pin PIN_INTRUDER "$CERTS/intruder.pem"
pin PIN_SERVER "$CERTS/server.pem"
pin PIN_OTHER_SERVER "$CERTS/other-server.pem"
pin PIN_SELF_A self-a.pem
pin PIN_SELF_B self-b.pem
pin PIN_SELF_SRV self-srv.pem
gw_run nopin --pin /nonexistent
expect_rc 1 "$rc" "--pin /nonexistent"
grep -q '/nonexistent' nopin.err ||
    fail "--pin /nonexistent: no message naming it: $(cat nopin.err)"
[ ! -s nopin.out ] || fail "--pin /nonexistent printed $(cat nopin.out)"
gw_run keypin --pin "$CERTS/client.key"
expect_rc 1 "$rc" "--pin of a key file"
if [ ! -s keypin.err ] || [ -s keypin.out ]; then
	fail "--pin of a key file: stdout \"$(cat keypin.out)\", stderr" \
	    "\"$(cat keypin.err)\""
fi

# --- 2. configuration errors -------------------------------------------------

# lit TEXT: an ERE that matches TEXT literally
lit() {
	printf '%s\n' "$1" | sed 's,[][\.*^$+?(){}|],\\&,g'
}

# unwrap PORT: an unwrap route's keys but ca (INI lines)
unwrap() {
	printf 'accept = tls://127.0.0.1:%s\ncert = %s\nkey = %s\n' "$1" \
	    "$CERTS/server.pem" "$CERTS/server.key"
	printf 'connect = tcp://127.0.0.1:%s\n' "$C"
}

# bad NAME KEY ERE: [NAME] with the INI lines of stdin (after unwrap's)
# is refused by -t: exit 2, and stderr has "NAME.ini:LINE: [NAME] KEY: "
# followed by ERE, LINE being that of KEY
bad() {
	{ echo "[$1]"; unwrap "$B1"; cat; } >"$1.ini"
	_l=$(grep -n "^$2 = " "$1.ini" | head -n 1 | cut -d: -f1)
	gw_run "$1" -t -c "$1.ini"
	expect_rc 2 "$rc" "-t on $1.ini ($(cat "$1.err"))"
	grep -Eq "^$(lit "$1.ini:$_l: [$1] $2: ")$3" "$1.err" ||
	    fail "$1.ini: no error \"$1.ini:$_l: [$1] $2: $3\" in: $(cat "$1.err")"
}
bad crl-no-ca crl 'needs chain verification' <<EOF
crl = $PWD/crl.pem
EOF
bad crl-verify-none crl 'needs chain verification' <<EOF
ca = $CERTS/ca.pem
verify = none
crl = $PWD/crl.pem
EOF
bad crl-verify-pin crl 'needs chain verification' <<EOF
verify = pin
pin_sha256 = $PIN_CLIENT
crl = $PWD/crl.pem
EOF
bad crl-other crl "$(lit "$PWD/other.pem: CRL 1: not signed by a CA of ca")\$" <<EOF
ca = $CERTS/ca.pem
crl = $PWD/other.pem
EOF
bad crl-second crl "$(lit "$PWD/two.pem: CRL 2: not signed by a CA of ca")\$" <<EOF
ca = $CERTS/ca.pem
crl = $PWD/two.pem
EOF
bad crl-cert crl "$(lit "no PEM CRL in $CERTS/client.pem")" <<EOF
ca = $CERTS/ca.pem
crl = $CERTS/client.pem
EOF
bad crl-expired-alone crl_expired 'needs crl' <<EOF
ca = $CERTS/ca.pem
crl_expired = refuse
EOF
bad crl-expired-bad crl_expired 'must be warn or refuse' <<EOF
ca = $CERTS/ca.pem
crl = $PWD/crl.pem
crl_expired = maybe
EOF
bad pin-text pin_sha256 'not the base64 of a SHA-256 digest' <<EOF
ca = $CERTS/ca.pem
pin_sha256 = not a pin
EOF
bad pin-short pin_sha256 'not the base64 of a SHA-256 digest' <<EOF
ca = $CERTS/ca.pem
pin_sha256 = $(head -c 16 /dev/urandom | base64)
EOF
bad pin-one-bad pin_sha256 "$(lit "not the base64 of a SHA-256 digest: \"${PIN_CLIENT}AAAA\"")" <<EOF
ca = $CERTS/ca.pem
pin_sha256 = $PIN_INTRUDER, ${PIN_CLIENT}AAAA
EOF
bad pin-no-verify pin_sha256 'needs verification' <<EOF
pin_sha256 = $PIN_CLIENT
EOF
bad pin-alone verify 'pin needs pin_sha256' <<EOF
verify = pin
EOF
bad pin-ca ca 'not used with verify = pin' <<EOF
ca = $CERTS/ca.pem
verify = pin
pin_sha256 = $PIN_CLIENT
EOF

# --- 3. the main gateway ---------------------------------------------------

# conf [CRL]: routes.ini; route hup gets crl = CRL if given
conf() {
	cat <<EOF
[crl]
$(tls_accept "$B1")
crl = $PWD/crl.pem
connect = tcp://127.0.0.1:$C

[hup]
$(tls_accept "$B2")
${1:+crl = $1}
connect = tcp://127.0.0.1:$C

[pinned]
$(tls_accept "$B3")
pin_sha256 = $PIN_SELF_A, $PIN_CLIENT
connect = tcp://127.0.0.1:$C

[pin-only]
$(unwrap "$B4")
verify = pin
pin_sha256 = $PIN_SELF_A

[wrap-good]
accept = tcp://127.0.0.1:$A1
$(tls_connect "$B1")
crl = $PWD/crl.pem
pin_sha256 = $PIN_SERVER

[wrap-revoked]
accept = tcp://127.0.0.1:$A2
connect = tls://127.0.0.1:$B1
ca = $CERTS/ca.pem
cert = $PWD/revoked.pem
key = $PWD/revoked.key
server_name = localhost

[wrap-badpin]
accept = tcp://127.0.0.1:$A3
$(tls_connect "$B1")
pin_sha256 = $PIN_OTHER_SERVER

[to-revoked-srv]
accept = tcp://127.0.0.1:$A4
connect = tls://127.0.0.1:$S1
ca = $CERTS/ca.pem
crl = $PWD/crl.pem
server_name = localhost

[to-good-srv]
accept = tcp://127.0.0.1:$A5
$(tls_connect "$S2")
crl = $PWD/crl.pem

[to-self-srv]
accept = tcp://127.0.0.1:$A6
connect = tls://127.0.0.1:$S3
verify = pin
pin_sha256 = $PIN_SELF_SRV

[to-self-srv-badpin]
accept = tcp://127.0.0.1:$A7
connect = tls://127.0.0.1:$S3
verify = pin
pin_sha256 = $PIN_SELF_A
EOF
}
conf >routes.ini
gw_run check -t -v -c routes.ini
expect_rc 0 "$rc" "-t on routes.ini ($(cat check.err))"
[ ! -s check.err ] || fail "-t on routes.ini warned: $(cat check.err)"
gw_run strict -t --strict -c routes.ini
expect_rc 0 "$rc" "-t --strict on routes.ini ($(cat strict.err))"
log_has check.out "^  crl: .*chains to $(lit "$CERTS/ca.pem"), not revoked by its crl;"
log_has check.out "^  pinned: .*chains to $(lit "$CERTS/ca.pem"), with a pinned key;"
log_has check.out '^  pin-only: accepts TLS .* from clients whose key is pinned \(pin_sha256\);'
log_has check.out '^  to-self-srv: .*checking that the server.s key is pinned \(pin_sha256\)'
log_has check.out '^  wrap-good: .*chains to .*, not revoked by its crl, with a pinned key and is valid for localhost'

gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"
log_has gw.log '^[^ ]+ info route=crl event=crl next_update_in_days=29$'
log_has gw.log '^[^ ]+ info route=to-revoked-srv event=crl next_update_in_days=29$'
log_lacks gw.log 'route=(hup|pinned|pin-only) event=crl '
log_lacks gw.log 'event=config warning'
served=0	# connections the plaintext server must have seen so far
reloads=0

# --- helpers ---------------------------------------------------------------

# mark: remember where gw.log ends; since ROUTE: its lines after the mark
mark() {
	_mark=$(wc -l <"${LOG:-gw.log}")
}
since() {
	sed -n "$((_mark + 1)),\$p" "${LOG:-gw.log}" | grep -F "route=$1 "
}
count_since() {	# count_since ROUTE ERE
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

# client TOOL PORT CERT LINE [ARGS...]: gnutls-cli or openssl s_client
# with CERT.pem/CERT.key to PORT sends LINE; output in LINE.out, status in
# crc. A refused openssl s_client is given -ign_eof by the caller, so that
# it reads on (to the alert) after its input ends.
client() {
	_tool=$1 _p=$2 _c=$3 _l=$4
	shift 4
	mark
	case $_tool in
	gnutls)
		echo "$_l" | timeout 10 gnutls-cli -p "$_p" \
		    --x509cafile "$CERTS/ca.pem" --x509certfile "$_c.pem" \
		    --x509keyfile "$_c.key" "$@" localhost >"$_l.out" 2>&1
		;;
	openssl)
		echo "$_l" | timeout 10 openssl s_client \
		    -connect "127.0.0.1:$_p" -servername localhost \
		    -CAfile "$CERTS/ca.pem" -cert "$_c.pem" -key "$_c.key" \
		    "$@" >"$_l.out" 2>&1
		;;
	esac
	crc=$?
}

# served ROUTE LINE PEER: the client of LINE was let in: it exited 0,
# LINE reached the server, the route logged event=tls with peer="PEER",
# event=connect and no reject
served() {
	[ "$crc" -eq 0 ] || fail "$2: the client exited $crc:
$(grep -Ei 'alert|error|fatal' "$2.out" | head -n 5)
$(since "$1")"
	served=$((served + 1))
	wait_log sink.out "^$2\$"
	wait_since "$1" 'event=close reason=eof' 1
	if [ "$(count_since "$1" "event=tls .*peer=\"$3\"")" -ne 1 ] ||
	    [ "$(count_since "$1" 'event=connect ')" -ne 1 ] ||
	    [ "$(count_since "$1" 'event=reject')" -ne 0 ]; then
		fail "$2: not let in as $3: $(since "$1")"
	fi
}

# refused ROUTE LINE REASON [ALERT-ERE]: the route refused the session:
# one 'warn route=ROUTE session=N event=reject reason="REASON"', no
# event=tls (nor event=connect on an unwrap route), LINE never reached
# the server; the client's output
# matches ALERT-ERE (a TLS alert) if given
refused() {
	wait_since "$1" 'event=close ' 1
	[ "$(count_since "$1" "^[^ ]+ warn route=$1 session=[0-9]+ event=reject reason=\"$(lit "$3")\"\$")" \
	    -eq 1 ] || fail "$2: not refused with reason=\"$3\": $(since "$1")"
	# a wrap route connects (TCP) before its handshake; an unwrap one after
	case $1 in wrap-*|to-*) _let='event=tls ' ;; *) _let='event=(tls|connect) ' ;; esac
	[ "$(count_since "$1" "$_let")" -eq 0 ] ||
	    fail "$2: a refused session was let in: $(since "$1")"
	[ -z "${4:-}" ] || grep -Eqi -- "$4" "$2.out" ||
	    fail "$2: the client saw no alert /$4/:
$(grep -Ei 'alert|error|fatal|verif' "$2.out" | head -n 5)"
	wait_count sink.err 'sink: accept' "$served"
	[ "$(count_lines sink.err 'sink: accept')" -eq "$served" ] ||
	    fail "$2: the server saw $(count_lines sink.err 'sink: accept')" \
	    "connections, expected $served"
	log_lacks sink.out "^$2\$" "$2: its data reached the server"
}

GNUTLS_ALERT='Received alert \[42\]: Certificate is bad'
OPENSSL_ALERT='alert bad certificate'
REVOKED='certificate revoked'
notpinned() {
	echo "key not pinned: the peer's pin_sha256 is $1"
}

# wrap PORT LINE: the plaintext client sends LINE to a wrap route, reads
# the answer into LINE.got; status in wrc
wrap() {
	mark
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" "$2
" >"$2.got" 2>"$2.err"
	wrc=$?
}

# --- 4. crl on an unwrap route -----------------------------------------

client gnutls "$B1" "$CERTS/client" crl-good-gnutls
served crl crl-good-gnutls CN=client
client openssl "$B1" "$CERTS/client" crl-good-openssl
served crl crl-good-openssl CN=client
client gnutls "$B1" revoked crl-revoked-gnutls
refused crl crl-revoked-gnutls "$REVOKED" "$GNUTLS_ALERT"
client openssl "$B1" revoked crl-revoked-openssl -ign_eof
refused crl crl-revoked-openssl "$REVOKED" "$OPENSSL_ALERT"
client gnutls "$B1" via-inter-chain crl-via-inter
refused crl crl-via-inter "$REVOKED" "$GNUTLS_ALERT"

# --- 5. crl on wrap routes -----------------------------------------------

# tlsgate -> tlsgate, both with crl (and the server's key pinned)
wrap "$A1" wrap-good
[ "$wrc" -eq 0 ] || fail "wrap-good: client exit $wrc: $(cat wrap-good.err)"
served=$((served + 1))
wait_log sink.out '^wrap-good$'
wait_since crl 'event=close reason=eof' 1
wait_since wrap-good 'event=close reason=eof' 1
[ "$(count_since wrap-good 'event=tls .*peer="CN=localhost"')" -eq 1 ] ||
    fail "wrap-good: $(since wrap-good)"
[ "$(count_since crl 'event=tls .*peer="CN=client"')" -eq 1 ] ||
    fail "wrap-good: $(since crl)"

# a wrap route with a revoked client certificate: the unwrap route refuses
wrap "$A2" wrap-revoked
refused crl wrap-revoked "$REVOKED"
[ ! -s wrap-revoked.got ] || fail "wrap-revoked: got $(cat wrap-revoked.got)"
wait_since wrap-revoked 'event=close ' 1

# a wrap route with crl to openssl s_server with a revoked certificate
bg s_server openssl s_server -accept "127.0.0.1:$S1" -rev -naccept 1 \
    -cert revoked-server.pem -key revoked-server.key
wait_port "$S1"
wrap "$A4" to-revoked-srv
refused to-revoked-srv to-revoked-srv "$REVOKED"
[ ! -s to-revoked-srv.got ] ||
    fail "to-revoked-srv: got $(cat to-revoked-srv.got)"
wait_exit "$(pid_of s_server)" 10
grep -qi "$OPENSSL_ALERT" s_server.err s_server.out ||
    fail "to-revoked-srv: s_server saw no alert: $(cat s_server.err)"

# a wrap route with crl to gnutls-serv (not revoked): its echo comes back
bg gnutls-serv gnutls-serv --echo --require-client-cert \
    --verify-client-cert -p "$S2" --x509cafile "$CERTS/ca.pem" \
    --x509certfile "$CERTS/server.pem" --x509keyfile "$CERTS/server.key"
wait_port "$S2"
wrap "$A5" to-good-srv
[ "$wrc" -eq 0 ] || fail "to-good-srv: client exit $wrc: $(cat to-good-srv.err)"
[ "$(cat to-good-srv.got)" = to-good-srv ] ||
    fail "to-good-srv: no echo: \"$(cat to-good-srv.got)\""
wait_since to-good-srv 'event=close reason=eof' 1
[ "$(count_since to-good-srv 'event=reject')" -eq 0 ] ||
    fail "to-good-srv: $(since to-good-srv)"

# --- 6. reloads and resumption -----------------------------------------

# reload [CRL]: routes.ini with route hup's crl = CRL; SIGHUP; RESULT
# (ok unless set) expected
reload() {
	conf "$@" >routes.ini
	mark
	kill -HUP "$GW_PID" || fail "cannot signal tlsgate"
	reloads=$((reloads + 1))
	wait_count gw.log 'event=reload result=' "$reloads"
	[ "$(sed -n "$((_mark + 1)),\$p" gw.log |
	    grep -Ec "event=reload result=${RESULT:-ok}( |\$)")" -eq 1 ] ||
	    fail "reload ${1:-without crl}: not result=${RESULT:-ok}:
$(sed -n "$((_mark + 1)),\$p" gw.log)"
}

# save_session FILE CERT LINE: a full TLS 1.3 handshake of CERT with route
# hup that sends LINE and saves its session (ticket) in FILE. The ticket
# comes after the handshake, so s_client's stdin is a fifo held open
# (read-write: opening it never blocks) until FILE exists.
save_session() {
	rm -f "$1" save.fifo
	mkfifo save.fifo || fail "mkfifo"
	exec 8<>save.fifo
	mark
	# shellcheck disable=SC2016
	bg save sh -c 'exec "$@" <save.fifo >"$0" 2>&1' "$3.out" \
	    timeout 10 openssl s_client -connect "127.0.0.1:$B2" \
	    -servername localhost -CAfile "$CERTS/ca.pem" \
	    -cert "$2.pem" -key "$2.key" -sess_out "$1"
	_save=$BG_PID
	echo "$3" >&8
	poll_for 10 test -s "$1" || {
		exec 8>&-
		fail "no session saved in $1: $(cat "$3.out")"
	}
	exec 8>&-
	crc=0
	wait_exit "$_save" 10 || crc=$?
	grep -q '^New, TLSv1.3' "$3.out" ||
	    fail "$1: not a new TLS 1.3 session: $(grep -E '^(New|Reused)' \
	    "$3.out")"
}

# offer FILE CERT LINE [ARGS...]: s_client offers the session of FILE
offer() {
	_f=$1
	shift
	client openssl "$B2" "$@" -sess_in "$_f"
}

# reused LINE: s_client resumed the session, logged resumed=yes
reused() {
	grep -q '^Reused, TLSv1.3' "$1.out" ||
	    fail "$1: the session was not resumed: $(grep -E '^(New|Reused)' \
	    "$1.out")"
	[ "$(count_since hup 'event=tls .* resumed=yes$')" -eq 1 ] ||
	    fail "$1: no resumed=yes in the log: $(since hup)"
}
not_reused() {
	! grep -q '^Reused' "$1.out" || fail "$1: the session was resumed"
	[ "$(count_since hup 'resumed=yes')" -eq 0 ] ||
	    fail "$1: resumed=yes in the log: $(since hup)"
}

# without crl: the revoked client is served, and so is the chain through
# the (revoked) intermediate CA; sessions saved and resumed
client gnutls "$B2" revoked hup-revoked-before
served hup hup-revoked-before CN=revoked
client gnutls "$B2" via-inter-chain hup-via-inter
served hup hup-via-inter CN=via-inter
save_session revoked.sess revoked hup-save-revoked
served hup hup-save-revoked CN=revoked
save_session client.sess "$CERTS/client" hup-save-client
served hup hup-save-client CN=client
offer revoked.sess revoked hup-resume-revoked
served hup hup-resume-revoked CN=revoked
reused hup-resume-revoked

# a reload that adds the CRL
reload "$PWD/crl.pem"
log_has gw.log '^[^ ]+ info route=hup event=crl next_update_in_days=29$'
offer revoked.sess revoked hup-offer-revoked -ign_eof
refused hup hup-offer-revoked "$REVOKED" "$OPENSSL_ALERT"
not_reused hup-offer-revoked
offer client.sess "$CERTS/client" hup-offer-client
served hup hup-offer-client CN=client
not_reused hup-offer-client
client gnutls "$B2" revoked hup-revoked-after
refused hup hup-revoked-after "$REVOKED" "$GNUTLS_ALERT"

# a reload to a CRL the route's ca did not sign fails: the old CRL stays
RESULT=failed reload "$PWD/other.pem"
log_has gw.log "^[^ ]+ error event=config error=\"routes.ini:[0-9]+: \\[hup\\] crl: $(lit "$PWD/other.pem: CRL 1: not signed by a CA of ca")\"\$"
client gnutls "$B2" revoked hup-revoked-failed
refused hup hup-revoked-failed "$REVOKED" "$GNUTLS_ALERT"

# a reload to a CRL without the serial: the revoked client is back
reload "$PWD/empty.pem"
client gnutls "$B2" revoked hup-revoked-lifted
served hup hup-revoked-lifted CN=revoked

# --- 7. pin_sha256 after the chain -------------------------------------

client gnutls "$B3" "$CERTS/client" pinned-client
served pinned pinned-client CN=client
client gnutls "$B3" "$CERTS/intruder" pinned-intruder
refused pinned pinned-intruder "$(notpinned "$PIN_INTRUDER")" \
    "$GNUTLS_ALERT"
client openssl "$B3" self-a pinned-self-a -ign_eof
refused pinned pinned-self-a 'certificate signer not found'
wrap "$A3" wrap-badpin
wait_since wrap-badpin 'event=close ' 1
[ "$(count_since wrap-badpin "event=reject reason=\"$(lit \
    "$(notpinned "$PIN_SERVER")")\"\$")" -eq 1 ] ||
    fail "wrap-badpin: $(since wrap-badpin)"
[ ! -s wrap-badpin.got ] || fail "wrap-badpin: got $(cat wrap-badpin.got)"
log_lacks sink.out '^wrap-badpin$'

# --- 8. verify = pin ---------------------------------------------------

client gnutls "$B4" self-a pin-only-self-a
served pin-only pin-only-self-a CN=self-a
client openssl "$B4" self-a pin-only-self-a-openssl
served pin-only pin-only-self-a-openssl CN=self-a
client openssl "$B4" self-b pin-only-self-b -ign_eof
refused pin-only pin-only-self-b "$(notpinned "$PIN_SELF_B")" \
    "$OPENSSL_ALERT"
client gnutls "$B4" "$CERTS/client" pin-only-client
refused pin-only pin-only-client "$(notpinned "$PIN_CLIENT")" \
    "$GNUTLS_ALERT"

bg self-srv gnutls-serv --echo -p "$S3" --x509certfile self-srv.pem \
    --x509keyfile self-srv.key
wait_port "$S3"
wrap "$A6" to-self-srv
[ "$wrc" -eq 0 ] || fail "to-self-srv: client exit $wrc: $(cat to-self-srv.err)"
[ "$(cat to-self-srv.got)" = to-self-srv ] ||
    fail "to-self-srv: no echo: \"$(cat to-self-srv.got)\""
wait_since to-self-srv 'event=close reason=eof' 1
[ "$(count_since to-self-srv 'event=tls .*peer="CN=localhost"')" -eq 1 ] ||
    fail "to-self-srv: $(since to-self-srv)"
wrap "$A7" to-self-srv-badpin
wait_since to-self-srv-badpin 'event=close ' 1
[ "$(count_since to-self-srv-badpin "event=reject reason=\"$(lit \
    "$(notpinned "$PIN_SELF_SRV")")\"\$")" -eq 1 ] ||
    fail "to-self-srv-badpin: $(since to-self-srv-badpin)"
[ ! -s to-self-srv-badpin.got ] ||
    fail "to-self-srv-badpin: got $(cat to-self-srv-badpin.got)"

# --- the plaintext server's view of the main gateway ---------------------

[ "$(count_lines sink.err 'sink: accept')" -eq "$served" ] ||
    fail "the server saw $(count_lines sink.err 'sink: accept')" \
    "connections, expected $served"
gw_stop gw || fail "tlsgate gw exited $?"

# --- 9. an expired CRL ---------------------------------------------------

cat >stale.ini <<EOF
[stale-warn]
$(tls_accept "$B5")
crl = $PWD/expired.pem
connect = tcp://127.0.0.1:$C

[stale-refuse]
$(unwrap "$B6")
ca = $PWD/cas.pem
crl = $PWD/expired.pem
crl_expired = refuse
EOF
line_of() {	# line_of SECTION KEY: the line of KEY in [SECTION] of stale.ini
	awk -v s="[$1]" -v k="$2" '/^\[/ { sec = ($0 == s); next }
	    sec && $1 == k && $2 == "=" { print NR; exit }' stale.ini
}
WARN_STALE="stale.ini:$(line_of stale-warn crl): [stale-warn] crl: $PWD/expired.pem is past its next update: peers are still checked against it"
WARN_REFUSE="stale.ini:$(line_of stale-refuse crl): [stale-refuse] crl: $PWD/expired.pem is past its next update"
gw_run stale -t -c stale.ini
expect_rc 0 "$rc" "-t on stale.ini ($(cat stale.err))"
if [ "$(grep -c . stale.err)" -ne 2 ] ||
    ! grep -Fqx -- "$WARN_STALE" stale.err ||
    ! grep -Eq -- "^$(lit "$WARN_REFUSE")" stale.err; then
	fail "-t on stale.ini: expected the warnings
$WARN_STALE
$WARN_REFUSE...
got: $(cat stale.err)"
fi
gw_run stale-strict -t --strict -c stale.ini
expect_rc 1 "$rc" "-t --strict on stale.ini"

gw_start gw2 stale.ini
LOG=gw2.log
log_has gw2.log "^[^ ]+ warn event=config warning=\"$(lit "$WARN_STALE")\"\$"
log_has gw2.log "^[^ ]+ warn event=config warning=\"$(lit "$WARN_REFUSE")"
days=$(sed -n 's/^[^ ]* warn route=stale-warn event=crl next_update_in_days=\(-[0-9][0-9]*\)$/\1/p' gw2.log)
want=$((-1 - ($(date +%s) - $(date -u -d '2020-02-01 00:00:00' +%s)) / 86400))
# logged at start: the same day count as now, or one day less past it
case $days in
"$want"|"$((want + 1))") ;;
*) fail "no 'warn route=stale-warn event=crl next_update_in_days=$want':
$(grep 'event=crl' gw2.log)" ;;
esac

client gnutls "$B5" "$CERTS/client" stale-warn-client
served stale-warn stale-warn-client CN=client
client gnutls "$B5" revoked stale-warn-revoked
refused stale-warn stale-warn-revoked "$REVOKED" "$GNUTLS_ALERT"
client gnutls "$B6" "$CERTS/client" stale-refuse-client
refused stale-refuse stale-refuse-client \
    'certificate revocation list expired (crl_expired = refuse)' \
    "$GNUTLS_ALERT"
client openssl "$B6" revoked stale-refuse-revoked -ign_eof
refused stale-refuse stale-refuse-revoked "$REVOKED" "$OPENSSL_ALERT"
client gnutls "$B6" "$CERTS/other-client" stale-refuse-other-ca
served stale-refuse stale-refuse-other-ca CN=client
[ "$(count_lines sink.err 'sink: accept')" -eq "$served" ] ||
    fail "the server saw $(count_lines sink.err 'sink: accept')" \
    "connections, expected $served"
