#!/bin/sh
# 34-resume-authz: on unwrap routes (tls:// accept), a session that
# resumes is authorized exactly like a full handshake.
#  1. allow_peers = client, intruder's certificate, gnutls-cli --resume,
#     TLS 1.3 and TLS 1.2: both connections are refused with
#     reason="peer not in allow_peers: CN=intruder" (two event=reject),
#     no event=tls (so never resumed=yes), no event=connect, and none of
#     its data reaches the plaintext server.
#  2. verify = optional, allow_peers = client, other-client (CN=client
#     from a CA the route does not trust), TLS 1.3 and TLS 1.2: the same,
#     with reason="certificate signer not found".
#  3. The good client (CN=client) with gnutls-cli --resume: under TLS 1.3
#     its second connection is resumed ("*** This is a resumed session",
#     event=tls ... peer="CN=client" resumed=yes); both connections reach
#     the server and its data arrives. Under TLS 1.2 it is served (both
#     connections reach the server, its data arrives); resumption there is
#     not asserted.
#  4. Across reloads (SIGHUP, event=reload result=ok), with sessions
#     saved by openssl s_client -sess_out and offered with -sess_in:
#     a. a reload that only adds an unrelated route: the good client's
#        session saved before it still resumes ("Reused, TLSv1.3",
#        resumed=yes) and its data arrives;
#     b. a reload that narrows allow_peers to intruder: that session
#        (shown valid just before) is refused with the allow_peers reason
#        and its data does not arrive;
#     c. a reload that changes ca to other-ca.pem: a session saved just
#        before (and shown to resume) is not let in: refused, no data.
#  5. Across routes with the same cert, key and CA: the good client's
#     session from route "peers" offered to "others" (allow_peers =
#     intruder) is not resumed and is refused (allow_peers), no data;
#     offered to "twin" (identical to "peers" but for its name) it is not
#     "Reused" (a full handshake, served).
# Finally the plaintext server saw exactly the connections of the
# sessions that were let in, and none of the refused clients' lines.
. "$TESTLIB"

ports BP BO BT BX BE C

# conf ALLOW CA [EXTRA]: routes.ini; route peers gets allow_peers = ALLOW
# and ca = CA; with EXTRA, an unrelated forward route is added.
conf() {
	cat <<EOF
[peers]
accept = tls://127.0.0.1:$BP
cert = $CERTS/server.pem
key = $CERTS/server.key
ca = $2
allow_peers = $1
connect = tcp://127.0.0.1:$C

[optional]
$(tls_accept "$BO")
verify = optional
allow_peers = client
connect = tcp://127.0.0.1:$C

[twin]
$(tls_accept "$BT")
allow_peers = client
connect = tcp://127.0.0.1:$C

[others]
$(tls_accept "$BX")
allow_peers = intruder
connect = tcp://127.0.0.1:$C
EOF
	[ -z "${3:-}" ] ||
	    printf '\n[extra]\naccept = tcp://127.0.0.1:%s\n%s\n' "$BE" \
	    "connect = tcp://127.0.0.1:$C"
}

conf client "$CERTS/ca.pem" >routes.ini
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"
served=0	# connections the plaintext server must have seen so far
reloads=0

# --- helpers ------------------------------------------------------------

# mark: remember where gw.log ends; since ROUTE: its lines after the mark
mark() {
	_mark=$(wc -l <gw.log)
}
since() {
	sed -n "$((_mark + 1)),\$p" gw.log | grep -F "route=$1 "
}
# count_since ROUTE ERE: how many of since ROUTE's lines match
count_since() {
	since "$1" | grep -Ec -- "$2"
}
# wait_since ROUTE ERE N: until N lines of since ROUTE match
_since_has() {
	[ "$(count_since "$1" "$2")" -ge "$3" ]
}
wait_since() {
	poll_for 10 _since_has "$1" "$2" "$3" ||
	    fail "timed out waiting for $3 lines /$2/ of route $1:
$(since "$1")"
}

# gcli OUT CERT PORT LINE [ARGS...]: gnutls-cli --resume with CERT's
# certificate to PORT; LINE is sent on its second connection (gnutls-cli
# sends nothing on the first). Output in OUT; its status is not judged.
gcli() {
	_out=$1 _c=$2 _p=$3 _l=$4
	shift 4
	echo "$_l" | timeout 10 gnutls-cli --resume "$@" -p "$_p" \
	    --x509cafile "$CERTS/ca.pem" --x509certfile "$CERTS/$_c.pem" \
	    --x509keyfile "$CERTS/$_c.key" localhost >"$_out" 2>&1
	return 0
}

# twice OUT: gnutls-cli in OUT connected twice
twice() {
	[ "$(grep -c '^Connecting to ' "$1")" -eq 2 ] ||
	    fail "gnutls-cli ($1) did not connect twice:
$(grep -E '^(\*|- |Connecting)' "$1" | grep -v '^- Certificate')"
}

# nothing_through ROUTE WHAT LINE: none of since ROUTE's sessions got
# through (no event=tls, no resumed=yes, no event=connect), the server saw
# no new connection and not LINE.
nothing_through() {
	[ "$(count_since "$1" 'resumed=yes')" -eq 0 ] ||
	    fail "$2: a refused peer resumed and was let in:
$(since "$1")"
	[ "$(count_since "$1" 'event=(tls|connect) ')" -eq 0 ] ||
	    fail "$2: a session was let in:
$(since "$1")"
	[ "$(count_lines sink.err 'sink: accept')" -eq "$served" ] ||
	    fail "$2: the server saw $(count_lines sink.err 'sink: accept')" \
	    "connections, expected $served"
	log_lacks sink.out "^$3\$" "$2: its data reached the server"
}

# refused_twice ROUTE PORT CERT REASON LINE [ARGS...]: gnutls-cli
# --resume with CERT's certificate: both connections refused for REASON.
refused_twice() {
	_r=$1 _p=$2 _c=$3 _why=$4 _l=$5
	shift 5
	mark
	gcli "$_l.out" "$_c" "$_p" "$_l" "$@"
	twice "$_l.out"
	wait_since "$_r" 'event=close ' 2
	[ "$(count_since "$_r" "event=reject reason=\"$_why\"\$")" -eq 2 ] ||
	    fail "$_l: not both connections refused with" \
	    "reason=\"$_why\" (gnutls-cli:" \
	    "$(grep -E '^\*\*\*' "$_l.out" | tr '\n' ' '))
$(since "$_r")"
	nothing_through "$_r" "$_l" "$_l"
}

# ssl OUT PORT [ARGS...]: openssl s_client as the good client (CN=client)
# to PORT, stdin as given; OUT and OUT.err get its output
ssl() {
	_out=$1 _p=$2
	shift 2
	timeout 10 openssl s_client -connect "127.0.0.1:$_p" \
	    -servername localhost -CAfile "$CERTS/ca.pem" \
	    -cert "$CERTS/client.pem" -key "$CERTS/client.key" \
	    -verify_return_error "$@" >"$_out" 2>"$_out.err"
}

# save_session FILE ROUTE PORT LINE: a full handshake of the good client
# to PORT that sends LINE and saves its session (the TLS 1.3 ticket) in
# FILE (ssl_save); LINE reaches the server
save_session() {
	mark
	ssl_save "$1" "$3" "$4"
	served=$((served + 1))
	wait_log sink.out "^$4\$"
	wait_since "$2" 'event=close reason=eof' 1
}

# resumes FILE ROUTE PORT LINE: the session in FILE resumes on PORT
# ("Reused"), logged resumed=yes, and LINE reaches the server
resumes() {
	mark
	echo "$4" | ssl "$4.out" "$3" -sess_in "$1" ||
	    fail "$4: s_client: $(cat "$4.out.err")"
	served=$((served + 1))
	grep -q '^Reused, TLSv1.3' "$4.out" ||
	    fail "$4: the session of $1 was not resumed:" \
	    "$(grep -E '^(New|Reused)' "$4.out")"
	wait_log sink.out "^$4\$"
	wait_since "$2" 'event=close reason=eof' 1
	[ "$(count_since "$2" \
	    'event=tls .*peer="CN=client" resumed=yes$')" -eq 1 ] ||
	    fail "$4: no resumed=yes in the log: $(since "$2")"
}

# kept_out FILE ROUTE PORT REASON LINE: the session in FILE, offered to
# PORT, is refused for REASON and LINE does not reach the server
kept_out() {
	mark
	echo "$5" | ssl "$5.out" "$3" -sess_in "$1"
	wait_since "$2" 'event=close ' 1
	[ "$(count_since "$2" "event=reject reason=\"$4\"\$")" -eq 1 ] ||
	    fail "$5: not refused with reason=\"$4\"" \
	    "(s_client: $(grep -E '^(New|Reused)' "$5.out")):
$(since "$2")"
	nothing_through "$2" "$5" "$5"
}

# reload ALLOW CA [EXTRA]: rewrite routes.ini with conf and send SIGHUP
reload() {
	conf "$@" >routes.ini
	kill -HUP "$GW_PID" || fail "cannot signal tlsgate"
	reloads=$((reloads + 1))
	wait_count gw.log 'event=reload result=ok' "$reloads"
	log_lacks gw.log 'event=reload result=failed'
}

INTRUDER='peer not in allow_peers: CN=intruder'
TLS12='NORMAL:-VERS-ALL:+VERS-TLS1.2'

# --- 1. allow_peers: intruder, TLS 1.3 and TLS 1.2 ----------------------
refused_twice peers "$BP" intruder "$INTRUDER" intruder-13
refused_twice peers "$BP" intruder "$INTRUDER" intruder-12 \
    --priority "$TLS12"

# --- 2. verify = optional: an untrusted CA, TLS 1.3 and TLS 1.2 ---------
refused_twice optional "$BO" other-client 'certificate signer not found' \
    untrusted-13
refused_twice optional "$BO" other-client 'certificate signer not found' \
    untrusted-12 --priority "$TLS12"

# --- 3. the good client ------------------------------------------------
# good LINE [ARGS...]: gnutls-cli --resume as the good client to route
# peers: both connections let in (event=tls, event=connect, no reject),
# both reach the server, and LINE arrives
good() {
	_l=$1
	shift
	mark
	gcli "$_l.out" client "$BP" "$_l" "$@"
	twice "$_l.out"
	served=$((served + 2))
	wait_log sink.out "^$_l\$"
	wait_since peers 'event=close ' 2
	if [ "$(count_since peers 'event=reject ')" -ne 0 ] ||
	    [ "$(count_since peers 'event=tls .*peer="CN=client"')" -ne 2 ] ||
	    [ "$(count_since peers 'event=connect ')" -ne 2 ]; then
		fail "$_l: the good client was not let in twice: $(since peers)"
	fi
	wait_count sink.err 'sink: accept' "$served"
}
good client-13
grep -q '^\*\*\* This is a resumed session' client-13.out ||
    fail "client-13: the good client did not resume (TLS 1.3):" \
    "$(grep -E '^(\*|- (Handshake|Resume))' client-13.out)"
[ "$(count_since peers 'event=tls .*peer="CN=client" resumed=yes$')" \
    -eq 1 ] || fail "client-13: no resumed=yes in the log: $(since peers)"
good client-12 --priority "$TLS12"	# served; resumption not judged

# --- 5. across routes ---------------------------------------------------
save_session s1.pem peers "$BP" saved-s1
kept_out s1.pem others "$BX" 'peer not in allow_peers: CN=client' \
    s1-to-others
grep -q '^Reused' s1-to-others.out &&
    fail "s1-to-others: a ticket of route peers resumed on route others"
mark
echo s1-to-twin | ssl s1-to-twin.out "$BT" -sess_in s1.pem ||
    fail "s1-to-twin: s_client: $(cat s1-to-twin.out.err)"
served=$((served + 1))
grep -q '^Reused' s1-to-twin.out &&
    fail "s1-to-twin: a ticket of route peers resumed on route twin"
wait_log sink.out '^s1-to-twin$'
wait_since twin 'event=close reason=eof' 1
[ "$(count_since twin 'resumed=yes')" -eq 0 ] ||
    fail "s1-to-twin: resumed: $(since twin)"

# --- 4. across reloads ------------------------------------------------
# a. nothing changes for the route: the session still resumes
reload client "$CERTS/ca.pem" extra
wait_port "$BE"
resumes s1.pem peers "$BP" s1-after-reload

# b. allow_peers no longer lists client: the same session is kept out
reload intruder "$CERTS/ca.pem" extra
kept_out s1.pem peers "$BP" 'peer not in allow_peers: CN=client' \
    s1-after-narrowing

# c. ca changes: a session saved (and resumed) just before is kept out
reload client "$CERTS/ca.pem" extra
save_session s3.pem peers "$BP" saved-s3
resumes s3.pem peers "$BP" s3-before-ca
reload client "$CERTS/other-ca.pem" extra
kept_out s3.pem peers "$BP" 'certificate signer not found' s3-after-ca

# --- the server's view ------------------------------------------------
for l in intruder-13 intruder-12 untrusted-13 untrusted-12 \
    s1-to-others s1-after-narrowing s3-after-ca; do
	log_lacks sink.out "^$l\$" "$l reached the server"
done
[ "$(count_lines sink.err 'sink: accept')" -eq "$served" ] ||
    fail "the server saw $(count_lines sink.err 'sink: accept')" \
    "connections, expected $served"
log_lacks gw.log 'peer="CN=intruder" resumed=yes'
