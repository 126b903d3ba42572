#!/bin/sh
# 26-psk: pre-shared keys instead of certificates (psk_file, psktool's
# format). A wrap route with psk_identity and an unwrap route with the same
# file carry data; gnutls-cli with the identity and key is served too. A
# wrap route whose file has another key for the same identity, and
# gnutls-cli with a wrong key, are refused with a reason, and the
# plaintext server never sees them.
. "$TESTLIB"

command -v psktool >/dev/null || skip "no psktool"
ports A A2 B C
psktool -u gw -p keys.psk >/dev/null || fail "psktool"
psktool -u spare -p keys.psk >/dev/null || fail "psktool"
psktool -u gw -p wrong.psk >/dev/null || fail "psktool"
key=$(sed -n 's/^gw://p' keys.psk)
wrongkey=$(sed -n 's/^gw://p' wrong.psk)
if [ -z "$key" ] || [ "$key" = "$wrongkey" ]; then
	fail "test bug: psk files"
fi

cat >routes.ini <<EOF
[wrap]
accept = tcp://127.0.0.1:$A
connect = tls://127.0.0.1:$B
psk_file = keys.psk
psk_identity = gw

[wrap-wrong]
accept = tcp://127.0.0.1:$A2
connect = tls://127.0.0.1:$B
psk_file = wrong.psk
psk_identity = gw

[unwrap]
accept = tls://127.0.0.1:$B
psk_file = keys.psk
connect = tcp://127.0.0.1:$C
EOF
gw_start gw routes.ini
bg sink "$HELPERS/sink" -r 127.0.0.1 "$C"
wait_port "$C"

timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A" "through psk wrap
" >/dev/null 2>cli.err || fail "client: $(cat cli.err)"
wait_log sink.out '^through psk wrap$'
wait_log gw.log 'route=unwrap .*event=close reason=eof'
log_has gw.log 'route=unwrap .*event=tls .*version=TLS1\.3'

echo "from gnutls-cli with a psk" |
    timeout 10 gnutls-cli --logfile=gnutls-cli.err -p "$B" \
    --priority 'NORMAL:+ECDHE-PSK:+PSK' --pskusername gw --pskkey "$key" \
    localhost >/dev/null || fail "gnutls-cli with the key: $(tail -n 3 gnutls-cli.err)"
wait_log sink.out '^from gnutls-cli with a psk$'
wait_count gw.log 'route=unwrap .*event=close reason=eof' 2

timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$A2" "secret with the wrong key" \
    >/dev/null 2>&1
wait_log gw.log 'route=wrap-wrong .*event=close'
log_has gw.log '^[^ ]+ warn route=wrap-wrong .*event=reject .*reason='
wait_count gw.log 'route=unwrap .*event=reject .*reason=' 1

echo "secret with the wrong key" |
    timeout 10 gnutls-cli --logfile=gnutls-cli2.err -p "$B" \
    --priority 'NORMAL:+ECDHE-PSK:+PSK' --pskusername gw --pskkey "$wrongkey" \
    localhost >/dev/null 2>&1
wait_count gw.log 'route=unwrap .*event=reject .*reason=' 2
log_lacks sink.out 'wrong key'
[ "$(count_lines sink.err 'sink: accept')" -eq 2 ] ||
    fail "the server saw $(count_lines sink.err 'sink: accept') connections, expected 2"
