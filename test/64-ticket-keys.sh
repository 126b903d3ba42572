#!/bin/sh
# 64-ticket-keys: one resumption domain across processes (ticket_key_file,
# tlsgate --gen-ticket-key), with openssl s_client and tlsgate's own wrap
# route as clients.
#  1. --gen-ticket-key FILE makes FILE with mode 0600 and one key (a line
#     of base64 of 64 bytes); run again, it holds a new key first and the
#     old one second; a FILE that is not a key file is refused (exit 1)
#     and left as it was.
#  2. -t: ticket_key_file missing, empty, with a bad line, with three keys
#     exits 2 naming "[gateway] ticket_key_file" and why; a file open to
#     group or others is a warning (exit 0, 1 with --strict); -t -v says
#     the route's tickets are sealed with a key made from the file.
#  3. Unwrap processes A and B with the same file: a session of A
#     (s_client -sess_out) resumes on B ("Reused", B logs resumed=yes, the
#     data gets through); process C, the same routes but a key file of
#     its own, does a full handshake for it and serves it.
#  4. A's two routes, with the same trust settings: a ticket of one does
#     not resume on the other.
#  5. Rotation: --gen-ticket-key, SIGHUP to B: the ticket of the key that
#     is now the previous one still resumes on B; after a second rotation
#     and SIGHUP, a ticket of the key that left the file gets a full
#     handshake, and is served.
#  6. A tlsgate wrap route in front of A and B sharing one port
#     (reuse_port): 40 sessions through it, each echoed whole; A and B
#     each log resumed sessions.
# timeout: 120
. "$TESTLIB"

ports PA PA2 PB PC PS PE PW
bg sink "$HELPERS/sink" -r 127.0.0.1 "$PS"	# what s_client sends
bg echo "$HELPERS/sink" -e 127.0.0.1 "$PE"	# the wrap route's sessions
wait_port "$PS"
wait_port "$PE"
BACKEND=$PS

# --- 1. --gen-ticket-key --------------------------------------------------------

KEY_RE='^[A-Za-z0-9+/]{86}==$'
keys() {	# keys FILE: the key lines of FILE
	grep -v '^#' "$1" | grep -v '^$'
}
gw_run gen1 --gen-ticket-key keys.txt
expect_rc 0 "$rc" "--gen-ticket-key: $(cat gen1.err)"
[ "$(stat -c %a keys.txt)" = 600 ] ||
    fail "--gen-ticket-key made mode $(stat -c %a keys.txt), not 600"
[ "$(keys keys.txt | wc -l)" -eq 1 ] && keys keys.txt | grep -Eq "$KEY_RE" ||
    fail "not one key in base64: $(cat keys.txt)"
first=$(keys keys.txt)
gw_run gen2 --gen-ticket-key keys.txt
expect_rc 0 "$rc" "--gen-ticket-key again: $(cat gen2.err)"
[ "$(keys keys.txt | wc -l)" -eq 2 ] &&
    [ "$(keys keys.txt | sed -n 2p)" = "$first" ] &&
    [ "$(keys keys.txt | sed -n 1p)" != "$first" ] ||
    fail "the second run did not put a new key before the old one:
$(cat keys.txt)"
log_has gen2.out 'keys\.txt: a new current key, and the one it replaces as the previous key'
echo 'not a key' >other.txt
gw_run gen3 --gen-ticket-key other.txt
expect_rc 1 "$rc" "--gen-ticket-key over a file that is not a key file"
log_has gen3.err '^tlsgate: --gen-ticket-key: other\.txt: line 1: not a ticket key'
[ "$(cat other.txt)" = 'not a key' ] || fail "other.txt was changed"

# --- 2. configuration ----------------------------------------------------------

# conf FILE KEYFILE: routes in and in2 on PA and PA2 (and nothing else)
conf() {
	{
		printf '[gateway]\nticket_key_file = %s\n\n[in]\n' "$2"
		tls_accept "$3"
		printf 'connect = tcp://127.0.0.1:%s\n' "$BACKEND"
		if [ -n "${4:-}" ]; then
			printf '\n[in2]\n'
			tls_accept "$4"
			printf 'connect = tcp://127.0.0.1:%s\n' "$BACKEND"
		fi
		printf '%s\n' "${5:-}"
	} >"$1"
}
check_bad() {	# check_bad NAME KEYFILE ERE: -t exits 2, stderr matches ERE
	conf "$1.ini" "$2" "$PA"
	gw_run "$1" -t -c "$1.ini"
	expect_rc 2 "$rc" "-t with ticket_key_file $2"
	log_has "$1.err" "^$1\\.ini:2: \\[gateway\\] ticket_key_file: $3"
}
check_bad missing "$PWD/none.txt" ".*none\\.txt: No such file or directory"
check_bad empty "" 'empty'
printf '# keys\n%s\nnot base64!\n' "$first" >bad.txt
check_bad badline "$PWD/bad.txt" '.*bad\.txt: line 3: not a ticket key'
{ keys keys.txt; echo "$first"; } >three.txt
check_bad three "$PWD/three.txt" '.*three\.txt: line 3: a third key'

cp keys.txt open.txt
chmod 644 open.txt
conf open.ini "$PWD/open.txt" "$PA"
gw_run open -t -c open.ini
expect_rc 0 "$rc" "-t with a key file others can read: $(cat open.err)"
log_has open.err "^open\\.ini:2: \\[gateway\\] ticket_key_file: .*open\\.txt is open to group or others \\(mode 0644\\)"
gw_run open -t --strict -c open.ini
expect_rc 1 "$rc" "-t --strict with a key file others can read"

conf a.ini "$PWD/keys.txt" "$PA" "$PA2"
gw_run explain -t -v -c a.ini
expect_rc 0 "$rc" "-t -v: $(cat explain.err)"
log_has explain.out '^  in: accepts TLS .*; its session tickets, sealed with a key made from .*keys\.txt \(its current key; tickets of its previous key resume too\), resume on every process that reads the file$'
! grep -qF "$first" explain.out || fail "-t -v printed a key"

# --- 3. one domain, A and B; not C -------------------------------------------

conf b.ini "$PWD/keys.txt" "$PB"
gw_run genc --gen-ticket-key own.txt	# a key of its own
conf c.ini "$PWD/own.txt" "$PC"
gw_start a a.ini
gw_start b b.ini
gw_start c c.ini
n=0

save() {	# save FILE PORT: a new session to PORT, saved in FILE (ssl_save)
	n=$((n + 1))
	ssl_save "$1" "$2" "save-$n"
}

# offer FILE PORT GW: s_client offers the session in FILE to PORT
# (gateway GW); sets how to "Reused" or "New". Its line must reach the
# server whichever it is.
offer() {
	n=$((n + 1))
	_before=$(count_lines "$3.log" 'resumed=yes')
	echo "offer-$n" | timeout 10 openssl s_client -connect \
	    "127.0.0.1:$2" -servername localhost -CAfile "$CERTS/ca.pem" \
	    -cert "$CERTS/client.pem" -key "$CERTS/client.key" \
	    -verify_return_error -sess_in "$1" \
	    >"offer$n.out" 2>"offer$n.err"
	wait_log sink.out "^offer-$n\$" 10
	how=$(sed -n 's/^\(New\|Reused\), TLSv1\.3.*/\1/p' "offer$n.out")
	_after=$(count_lines "$3.log" 'resumed=yes')
	if [ "$how" = Reused ]; then
		[ "$_after" -eq $((_before + 1)) ] ||
		    fail "offer $n: Reused, but $3 logged no resumed=yes"
	elif [ "$how" = New ]; then
		[ "$_after" -eq "$_before" ] ||
		    fail "offer $n: New, but $3 logged resumed=yes"
	else
		fail "offer $n: neither New nor Reused: $(cat "offer$n.out")"
	fi
}

save a1.sess "$PA"
offer a1.sess "$PB" b
[ "$how" = Reused ] || fail "a session of A did not resume on B ($how)"
offer a1.sess "$PC" c
[ "$how" = New ] || fail "a session of A resumed on C, which has its own key"

# --- 4. routes stay apart --------------------------------------------------------

offer a1.sess "$PA2" a
[ "$how" = New ] || fail "a ticket of route in resumed on route in2"

# --- 5. rotation ---------------------------------------------------------------

gw_run rot1 --gen-ticket-key keys.txt
expect_rc 0 "$rc" "rotation 1: $(cat rot1.err)"
kill -HUP "$(pid_of b)"
wait_count b.log 'event=reload result=ok' 1 10
offer a1.sess "$PB" b
[ "$how" = Reused ] || fail "a ticket of the previous key did not resume"
save b3.sess "$PB"	# a ticket of the current key
gw_run rot2 --gen-ticket-key keys.txt
kill -HUP "$(pid_of b)"
wait_count b.log 'event=reload result=ok' 2 10
offer b3.sess "$PB" b
[ "$how" = Reused ] || fail "after the second rotation, the then current key's ticket did not resume"
offer a1.sess "$PB" b
[ "$how" = New ] || fail "a ticket of a key no longer in the file resumed"

# --- 6. a wrap route in front of two processes on one port ----------------------

gw_stop a
gw_stop b
cp keys.txt shared.txt
BACKEND=$PE
conf ra.ini "$PWD/shared.txt" "$PA" "" 'reuse_port = yes'
conf rb.ini "$PWD/shared.txt" "$PA" "" 'reuse_port = yes'
gw_start ra ra.ini
gw_start rb rb.ini
{
	printf '[wrap]\naccept = tcp://127.0.0.1:%s\n' "$PW"
	tls_connect "$PA"
} >w.ini
gw_start w w.ini
echo_each "$PW" 40 "through the wrap route"
ra=$(count_lines ra.log 'resumed=yes')
rb=$(count_lines rb.log 'resumed=yes')
[ "$ra" -gt 0 ] && [ "$rb" -gt 0 ] ||
    fail "the wrap route's sessions did not resume on both processes" \
    "(resumed: $ra and $rb of 40)"
figure "ticket keys: 40 wrap sessions over two processes, resumed $ra + $rb"
