#!/bin/sh
# 28-allow-peers: which names allow_peers matches.
#  - allow_peers = spiffe://demo/client (a URI SAN): the client
#    certificate is served, intruder (same CA) is refused;
#  - allow_peers = nobody, intruder (a list; intruder's DNS SAN and CN):
#    intruder is served, client is refused.
# Refusals are logged with reason allow_peers; only served clients' data
# reaches the plaintext server.
. "$TESTLIB"

ports B1 B2 C
cat >routes.ini <<EOF
[by-uri]
$(tls_accept "$B1")
allow_peers = spiffe://demo/client
connect = tcp://127.0.0.1:$C

[by-list]
$(tls_accept "$B2")
allow_peers = nobody, intruder
connect = tcp://127.0.0.1:$C
EOF
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"

# as NAME PORT: gnutls-cli with NAME's certificate sends "NAME to PORT"
as() {
	echo "$1 to $2" | timeout 10 gnutls-cli --logfile="$1-$2.err" -p "$2" \
	    --x509cafile "$CERTS/ca.pem" --x509certfile "$CERTS/$1.pem" \
	    --x509keyfile "$CERTS/$1.key" localhost >/dev/null 2>&1
}
served() {	# served NAME PORT ROUTE
	closes=$(count_lines gw.log "route=$3 .*event=close reason=eof")
	as "$1" "$2" || fail "$1 to $3: $(tail -n 3 "$1-$2.err")"
	wait_log sink.out "^$1 to $2\$"
	wait_count gw.log "route=$3 .*event=close reason=eof" $((closes + 1))
}
refused() {	# refused NAME PORT ROUTE
	closes=$(count_lines gw.log "route=$3 .*event=close")
	as "$1" "$2"
	wait_count gw.log "route=$3 .*event=close" $((closes + 1))
	grep -E "route=$3 .*event=close" gw.log | tail -n 1 |
	    grep -q 'reason=.*allow_peers' ||
	    fail "$1 to $3: not refused for allow_peers: $(grep "route=$3 " gw.log | tail -n 2)"
	log_has gw.log "^[^ ]+ warn route=$3 .*event=reject .*allow_peers"
}

served client "$B1" by-uri
refused intruder "$B1" by-uri
served intruder "$B2" by-list
refused client "$B2" by-list
log_lacks sink.out "^intruder to $B1\$"
log_lacks sink.out "^client to $B2\$"
[ "$(count_lines sink.err 'sink: accept')" -eq 2 ] ||
    fail "the server saw $(count_lines sink.err 'sink: accept') connections, expected 2"
