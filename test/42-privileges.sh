#!/bin/sh
# 42-privileges: [gateway] user and group. Started as root, tlsgate binds
# its listeners and reads its keys, then runs as that user (its /proc
# status shows the uid and gid) and serves; a reload reads files as that
# user, so keys only root can read make the reload fail, logged, with the
# old routes still serving. require_drop = yes without a user refuses to
# run as root (exit 1).
. "$TESTLIB"

[ "$(id -u)" -eq 0 ] || skip "needs root to drop privileges"
id nobody >/dev/null 2>&1 || skip "no user nobody"
group=$(id -gn nobody)
uid=$(id -u nobody)
gid=$(id -g nobody)
ports A B C
# Keys only root can read, in a directory anyone may enter.
mkdir pki
chmod 755 pki . 
cp "$CERTS"/ca.pem "$CERTS"/server.pem "$CERTS"/client.pem pki/
cp "$CERTS"/server.key "$CERTS"/client.key pki/
chmod 644 pki/*.pem
chmod 600 pki/*.key
CERTS=$(pwd)/pki demo_routes "$A" "$B" "$C" >routes.body
{
	printf '[gateway]\nuser = nobody\ngroup = %s\n\n' "$group"
	cat routes.body
} >routes.ini
chmod 644 routes.ini
bg srv "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"
gw_start gw routes.ini
log_has gw.log "event=privileges uid=$uid gid=$gid"
pid=$(pid_of gw)
grep -Eq "^Uid:[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid" /proc/"$pid"/status ||
    fail "not running as nobody: $(grep -E '^(Uid|Gid)' /proc/"$pid"/status)"
grep -Eq "^Gid:[[:space:]]+$gid[[:space:]]+$gid[[:space:]]+$gid" /proc/"$pid"/status ||
    fail "not running with group $group"
grep -Eq '^Groups:[[:space:]]*('"$gid"')?[[:space:]]*$' /proc/"$pid"/status ||
    fail "supplementary groups kept: $(grep ^Groups /proc/"$pid"/status)"

"$HELPERS/halfclose" 127.0.0.1 "$A" one >one.out 2>one.err ||
    fail "no session as nobody: $(cat one.err)"
[ "$(cat one.out)" = one ] || fail "echo through the chain: got '$(cat one.out)'"

kill -HUP "$pid"
wait_log gw.log 'event=reload result=failed'
log_has gw.log 'Permission denied'
"$HELPERS/halfclose" 127.0.0.1 "$A" two >two.out 2>two.err ||
    fail "old routes stopped serving after a failed reload: $(cat two.err)"
[ "$(cat two.out)" = two ] || fail "after the reload: got '$(cat two.out)'"
gw_stop gw || fail "tlsgate exited with status $?"

# require_drop without a user, as root: refused.
{ printf '[gateway]\nrequire_drop = yes\n\n'; cat routes.body; } >strict.ini
"$TLSGATE" -c strict.ini >strict.out 2>strict.log </dev/null &
spid=$!
track "$spid"
rc=0
wait_exit "$spid" 10 || rc=$?
expect_rc 1 "$rc" "require_drop = yes as root without user"
log_has strict.log 'event=exit reason="running as root, require_drop = yes and no user set"'
log_lacks strict.log 'event=ready'
