#!/bin/sh
# 21-cli: the command line and its exit statuses.
#  - -h/--help: usage, exit 0; -V/--version: exit 0, names the GnuTLS
#    version; an unknown option, a missing argument or a bad -l level:
#    exit 2.
#  - --check/-t on a good file: one line per route on stdout, exit 0; the
#    default file is ./routes.ini.
#  - --check on bad files: exit 2, every error as "FILE:LINE: [route] key:
#    reason" on stderr (a missing key: the section's line); several errors
#    are all reported. Starting on a bad file: exit 2 too.
#  - a port that cannot be bound: exit 1, no event=ready.
. "$TESTLIB"

gw_run help -h
expect_rc 0 "$rc" "-h"
grep -qi 'usage' help.out help.err || fail "-h prints no usage"
grep -q -- '--check' help.out help.err || fail "-h does not mention --check"
gw_run help2 --help
expect_rc 0 "$rc" "--help"

gv=$(gnutls-cli --version 2>/dev/null | sed -n '1s/^gnutls-cli //p')
[ -n "$gv" ] || gv=$(pkg-config --modversion gnutls 2>/dev/null)
gw_run version -V
expect_rc 0 "$rc" "-V"
grep -qi 'gnutls' version.out || fail "-V does not name GnuTLS: $(cat version.out)"
[ -z "$gv" ] || grep -qF "$gv" version.out ||
    fail "-V does not give the GnuTLS version $gv: $(cat version.out)"
gw_run version2 --version
expect_rc 0 "$rc" "--version"

gw_run badopt -Z
expect_rc 2 "$rc" "an unknown option"
[ -s badopt.err ] || fail "an unknown option: nothing on stderr"
gw_run badlong --no-such-option
expect_rc 2 "$rc" "an unknown long option"
gw_run noarg -c
expect_rc 2 "$rc" "-c without its argument"
gw_run badlevel -l chatty -c nowhere.ini
expect_rc 2 "$rc" "-l chatty"
gw_run nofile -c nowhere.ini
expect_rc 2 "$rc" "a missing config file"
grep -q 'nowhere.ini' nofile.err || fail "a missing file is not named: $(cat nofile.err)"

# A good file: three routes, one of each kind.
ports A B C P
{
	demo_routes "$A" "$B" "$C"
	printf '\n[forward]\naccept = tcp://127.0.0.1:%s\nconnect = tcp://127.0.0.1:%s\n' "$P" "$C"
} >good.ini
gw_run check --check -c good.ini
expect_rc 0 "$rc" "--check on a good file"
[ "$(grep -c . check.out)" -eq 3 ] ||
    fail "--check printed $(grep -c . check.out) lines for 3 routes: $(cat check.out)"
for r in wrap unwrap forward; do
	grep -Eq "(^|[^a-z])$r([^a-z]|$)" check.out || fail "--check does not list route $r"
done
gw_run check-t -t -c good.ini
expect_rc 0 "$rc" "-t on a good file"
mkdir default && cp good.ini default/routes.ini
(cd default && timeout 10 "$TLSGATE" --check >../default.out 2>../default.err)
expect_rc 0 $? "--check with the default ./routes.ini"
[ "$(grep -c . default.out)" -eq 3 ] || fail "--check ./routes.ini: $(cat default.out)"

# bad NAME WANT_ERE...: NAME.ini must fail --check (and start) with exit
# 2 and each WANT_ERE matched by a line of stderr.
bad() {
	_b=$1
	shift
	gw_run "$_b" --check -c "$_b.ini"
	expect_rc 2 "$rc" "--check on $_b.ini"
	for _w in "$@"; do
		grep -Eq -- "$_w" "$_b.err" ||
		    fail "$_b.ini: no line /$_w/ in: $(cat "$_b.err")"
	done
	note "$_b.ini: $(head -n 1 "$_b.err")"
	gw_run "$_b-start" -c "$_b.ini"
	expect_rc 2 "$rc" "starting with $_b.ini"
	grep -q 'event=ready' "$_b-start.err" && fail "$_b.ini: started anyway"
	return 0
}

# good.ini: [wrap] on line 1, [unwrap] on 9, [forward] on 16.
sed 's/^server_name = localhost$/server_name = localhost\ncolour = blue/' good.ini >unknown.ini
bad unknown '^unknown\.ini:8: \[wrap\] colour: '

sed "s|^cert = .*/server.pem\$|cert = $PWD/missing.pem|" good.ini >nocert.ini
bad nocert "^nocert\\.ini:11: \\[unwrap\\] cert: .*missing\\.pem.*No such file or directory"

sed "s|^accept = tcp://127.0.0.1:$P\$|accept = tls://127.0.0.1:$P|" good.ini >tlstls.ini
cat >>tlstls.ini <<EOF
cert = $CERTS/server.pem
key = $CERTS/server.key
EOF
sed -i "s|^connect = tcp://127.0.0.1:$C\$|connect = tls://127.0.0.1:$C|" tlstls.ini
grep -q "connect = tls://127.0.0.1:$C" tlstls.ini || fail "test bug: tlstls.ini"
bad tlstls '^tlstls\.ini:[0-9]+: \[unwrap\] (connect|accept): ' \
    '^tlstls\.ini:[0-9]+: \[forward\] (connect|accept): '

sed 's/^server_name = localhost$/server_name = localhost\npriority = NORMAL:+NO-SUCH-THING/' good.ini >prio.ini
bad prio '^prio\.ini:8: \[wrap\] priority: '

sed "/^connect = tcp:\/\/127.0.0.1:$C\$/d" good.ini >noconnect.ini
bad noconnect '^noconnect\.ini:9: \[unwrap\] connect: ' '^noconnect\.ini:15: \[forward\] connect: '

sed "s|^accept = tcp://127.0.0.1:$A\$|accept = http://127.0.0.1:$A|; s/^idle_timeout.*//" good.ini >scheme.ini
printf 'idle_timeout = soon\n' >>scheme.ini
bad scheme '^scheme\.ini:2: \[wrap\] accept: ' '^scheme\.ini:[0-9]+: \[forward\] idle_timeout: '

# A port already in use: exit 1.
bg busy "$HELPERS/sink" 127.0.0.1 "$P"
wait_port "$P"
gw_run busy --config good.ini
expect_rc 1 "$rc" "a port in use"
grep -qi 'in use' busy.err || fail "bind failure not explained: $(cat busy.err)"
grep -q 'event=ready' busy.err && fail "event=ready although a port could not be bound"
true
