#!/bin/sh
# 40-install: make install DESTDIR=... lays out the binary, both man pages,
# the example configuration and the systemd unit under PREFIX; the pages
# pass mandoc -T lint; the unit passes systemd-analyze verify (where
# systemd is installed); make uninstall removes what install laid out.
# timeout: 180
. "$TESTLIB"

dest=$(pwd)/dest
make -s -C "$SRCDIR" install DESTDIR="$dest" PREFIX=/usr/local \
    >install.out 2>&1 || fail "make install: $(tail -n 5 install.out)"
for f in usr/local/sbin/tlsgate usr/local/share/man/man8/tlsgate.8 \
    usr/local/share/man/man5/tlsgate.ini.5 \
    etc/tlsgate/routes.ini.example \
    usr/local/lib/systemd/system/tlsgate.service; do
	[ -f "$dest/$f" ] || fail "make install did not lay out /$f"
done
[ -x "$dest/usr/local/sbin/tlsgate" ] || fail "the binary is not executable"
"$dest/usr/local/sbin/tlsgate" -V | grep -q '^tlsgate ' ||
    fail "the installed binary does not run"
unit=$dest/usr/local/lib/systemd/system/tlsgate.service
log_has "$unit" '^ExecStart=/usr/local/sbin/tlsgate -c /etc/tlsgate/routes.ini$'
log_has "$unit" '^ExecReload=/bin/kill -HUP \$MAINPID$'
for k in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE; do
	log_has "$unit" "^$k"
done

if command -v mandoc >/dev/null; then
	mandoc -T lint -W warning "$dest/usr/local/share/man/man8/tlsgate.8" \
	    "$dest/usr/local/share/man/man5/tlsgate.ini.5" >lint.out 2>&1 ||
	    fail "mandoc -T lint: $(cat lint.out)"
fi

# The example configuration parses (its files do not exist here: only
# file errors are allowed).
"$dest/usr/local/sbin/tlsgate" --check -c "$dest/etc/tlsgate/routes.ini.example" \
    >check.out 2>&1
grep -v 'cannot read' check.out | grep -E '^[^ ]+:[0-9]+: ' &&
    fail "routes.ini.example has errors other than missing files"

if command -v systemd-analyze >/dev/null; then
	# Verify a copy whose paths point into DESTDIR, so that the binary
	# it names exists; man pages are looked up in DESTDIR too.
	sed -e "s|/usr/local/sbin|$dest/usr/local/sbin|g" \
	    -e "s|/etc/tlsgate|$dest/etc/tlsgate|g" "$unit" >tlsgate.service
	MANPATH=$dest/usr/local/share/man systemd-analyze verify \
	    ./tlsgate.service >verify.out 2>&1 ||
	    fail "systemd-analyze verify: $(cat verify.out)"
	grep -v 'man tlsgate' verify.out | grep -q . &&
	    fail "systemd-analyze verify: $(cat verify.out)"
else
	note "systemd-analyze not installed: unit not verified"
fi

make -s -C "$SRCDIR" uninstall DESTDIR="$dest" PREFIX=/usr/local \
    >uninstall.out 2>&1 || fail "make uninstall: $(cat uninstall.out)"
left=$(find "$dest" -type f | head -n 5)
[ -z "$left" ] || fail "make uninstall left: $left"
exit 0
