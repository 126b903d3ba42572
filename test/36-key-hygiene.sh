#!/bin/sh
# 36-key-hygiene: what tlsgate does with the secrets it reads.
#  1. A private key file or a PSK file open to group or others (mode 0644)
#     is loaded with a warning naming FILE:LINE, the key, the file and its
#     mode, at start-up and by --check; mode 0600 gets none.
#  2. Once loaded, the text of the key files is nowhere in the process's
#     memory: neither the base64 lines of the private key's PEM, nor the
#     hex keys of the PSK file, nor their copies in freed buffers; each
#     PSK key is held once, in the array GnuTLS reads it from (no copy
#     left behind by an array that grew); and the decoded part of a bad
#     key line of a reload that failed is gone. Read through
#     /proc/PID/mem (test/helpers/memscan); skipped where that is not
#     permitted.
. "$TESTLIB"

ports A B
cp "$CERTS/server.pem" "$CERTS/server.key" .
# Ten PSK keys; the reload's file adds a bad line (not hex at its end).
: >keys.psk
: >hexkeys
for i in 1 2 3 4 5 6 7 8 9 10; do
	k=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	echo "id$i:$k" >>keys.psk
	echo "$k" >>hexkeys
done
bad=$(od -An -tx1 -N31 /dev/urandom | tr -d ' \n')
{ cat keys.psk; echo "mallory:${bad}zz"; } >bad.psk
chmod 644 server.key keys.psk
cat >routes.ini <<EOF
[unwrap]
accept = tls://127.0.0.1:$A
cert = server.pem
key = server.key
connect = tcp://127.0.0.1:$B

[psk]
accept = tls://127.0.0.1:$B
psk_file = keys.psk
connect = tcp://127.0.0.1:$A
EOF

# 1. The warnings.
"$TLSGATE" -c routes.ini -t >check.out 2>check.err ||
    fail "--check: $(cat check.err)"
log_has check.err '^routes.ini:4: \[unwrap\] key: server.key is open to group or others \(mode 0644\)$'
log_has check.err '^routes.ini:9: \[psk\] psk_file: keys.psk is open to group or others \(mode 0644\)$'
gw_start gw routes.ini
log_has gw.log 'warn event=config warning="routes.ini:4: \[unwrap\] key: server.key is open to group or others \(mode 0644\)"'
log_has gw.log 'warn event=config warning="routes.ini:9: \[psk\] psk_file: keys.psk is open to group or others \(mode 0644\)"'
gw_stop gw
chmod 600 server.key keys.psk
"$TLSGATE" -c routes.ini -t >check2.out 2>check2.err ||
    fail "--check: $(cat check2.err)"
log_lacks check2.err 'open to group'

# 2. The memory of a gateway that has loaded them, and then failed to
# load the bad PSK file on a reload. Not under a sanitizer: AddressSanitizer
# keeps freed memory aside unwiped on purpose (its quarantine), and its
# shadow memory is terabytes of mappings.
[ -z "$(sanitizer)" ] || skip "the memory check needs a build without a sanitizer"
gw_start gw2 routes.ini
gw2=$GW_PID
sed 's/keys.psk/bad.psk/' routes.ini >bad.ini
cp bad.ini routes.ini
kill -HUP "$gw2"
wait_log gw2.log 'event=reload result=failed'
log_has gw2.log 'bad.psk:11: key is not hex'
# The text: the PEM body of the key and the hex keys, nowhere.
sed '/^-----/d' server.key >text
cat hexkeys >>text
echo "$bad" >>text
# memscan_ok ARGS...: memscan the gateway; skip if its memory cannot be
# read, fail on what it found.
memscan_ok() {
	"$HELPERS/memscan" "$@" >scan.out 2>scan.err
	rc=$?
	[ "$rc" -ne 2 ] || skip "cannot read the gateway's memory: $(cat scan.err)"
	[ "$rc" -eq 0 ] || fail "key material left in the gateway's memory:
$(cat scan.out)"
}
memscan_ok "$gw2" text
# The keys as bytes: each once; the bad line's, never.
memscan_ok -x -n 1 "$gw2" hexkeys
echo "$bad" | cut -c1-40 >badkey
memscan_ok -x "$gw2" badkey
note "no key text, no stray key copy in the memory of pid $gw2"
