#!/bin/sh
# 65-haproxy-front: the recipe of examples/haproxy-front as shipped (only
# its ports, certificate paths and key file path changed): a tlsgate wrap
# route -> haproxy (tcp mode, health checks, PROXY v2 both ways) -> two
# tlsgate unwrap processes with one ticket_key_file -> a plaintext server
# that reads PROXY v1 (test/helpers/ppsink) and echoes.
#  1. haproxy -c accepts haproxy.cfg; tlsgate -t accepts the three INI
#     files without a warning.
#  2. 40 sessions through the wrap route, one after another: each echoed
#     whole; both gateways served some; each gateway logged resumed
#     sessions (the wrap route's tickets resume on either); the plaintext
#     server saw, for a session, the very client address and port the
#     wrap route logged (the client carried through haproxy and tlsgate).
#  3. haproxy's health checks (a PROXY v2 LOCAL header, then the end,
#     every 500 ms) leave no warning in the gateways' logs: they are
#     logged as probes ("closed before sending anything", info), and
#     gateway a's statistics count them as probes, with no refusal.
#  4. Gateway a is killed (SIGKILL) while a loader runs through the wrap
#     route; once haproxy says a is DOWN, a second loader's sessions all
#     succeed (failed=0), all go to b, and b logs no warning meanwhile.
#     The sessions the first loader lost in the instant of the kill (and
#     what b logs of them) are reported, not judged.
# timeout: 150
. "$TESTLIB"

command -v haproxy >/dev/null 2>&1 || skip "no haproxy (Debian: haproxy)"
EX=$SRCDIR/examples/haproxy-front
ports PW PH PA PB PS
gw_run key --gen-ticket-key ticket.key
expect_rc 0 "$rc" "--gen-ticket-key: $(cat key.err)"
for f in haproxy.cfg unwrap-a.ini unwrap-b.ini wrap.ini; do
	sed -e "s|127\\.0\\.0\\.1:7000|127.0.0.1:$PW|" \
	    -e "s|127\\.0\\.0\\.1:7443|127.0.0.1:$PH|" \
	    -e "s|127\\.0\\.0\\.1:7001|127.0.0.1:$PA|" \
	    -e "s|127\\.0\\.0\\.1:7002|127.0.0.1:$PB|" \
	    -e "s|127\\.0\\.0\\.1:7080|127.0.0.1:$PS|" \
	    -e "s|demo/|$CERTS/|" \
	    -e "s|= ticket\\.key|= $PWD/ticket.key|" "$EX/$f" >"$f" ||
	    fail "cannot copy $f"
	cmp -s "$EX/$f" "$f" && [ "$f" != haproxy.cfg ] &&
	    fail "test bug: nothing changed in $f"
done
# gateway a serves its statistics too
sed -i "s|^ticket_key_file = .*|&\nstats = unix:$PWD/a.sock|" unwrap-a.ini

# --- 1. the files are valid -------------------------------------------------------

haproxy -c -f haproxy.cfg >hacheck.out 2>&1 ||
    fail "haproxy -c: $(cat hacheck.out)"
for f in unwrap-a unwrap-b wrap; do
	gw_run "check-$f" -t -c "$f.ini"
	expect_rc 0 "$rc" "-t $f.ini: $(cat "check-$f.err")"
	[ ! -s "check-$f.err" ] || fail "-t $f.ini warns: $(cat "check-$f.err")"
done

mkdir pp
bg ppsink "$HELPERS/ppsink" -d pp 127.0.0.1 "$PS"
wait_port "$PS"
gw_start a unwrap-a.ini
gw_start b unwrap-b.ini
bg haproxy haproxy -db -f haproxy.cfg
wait_port "$PH"
gw_start w wrap.ini

# --- 2. sessions through both gateways, resumed on both ----------------------------

opened() {	# opened NAME: sessions NAME opened
	count_lines "$1.log" 'route=unwrap session=[0-9]+ event=open peer=127\.0\.0\.1:[0-9]+ via='
}
echo_each "$PW" 40 "through haproxy"
[ "$(opened a)" -gt 0 ] && [ "$(opened b)" -gt 0 ] ||
    fail "not both gateways served: $(opened a) and $(opened b) of 40"
ra=$(count_lines a.log 'event=tls .*resumed=yes')
rb=$(count_lines b.log 'event=tls .*resumed=yes')
[ "$ra" -gt 0 ] && [ "$rb" -gt 0 ] ||
    fail "the wrap route's sessions did not resume on both gateways" \
    "(resumed: $ra on a, $rb on b)"
figure "haproxy-front: 40 sessions, a served $(opened a) ($ra resumed)," \
    "b $(opened b) ($rb resumed)"

# The last session: the client's address as the wrap route logged it is
# what the plaintext server got in its PROXY v1 header.
client=$(sed -n 's/.* event=open peer=\(127\.0\.0\.1:[0-9]*\)$/\1/p' w.log |
    tail -n 1)
[ -n "$client" ] || fail "no open line in the wrap route's log"
poll_for 10 grep -qlx "src=$client" pp/* ||
    fail "the plaintext server never saw the client $client: $(cat pp/* |
    grep '^src=' | tail -n 3)"
f=$(grep -lx "src=$client" pp/* | head -n 1)
log_has "$f" '^version=1$'
log_has "$f" '^family=TCP4$'

# --- 3. health checks are not refusals ---------------------------------------------

poll_for 10 sh -c "[ \$(grep -c 'proxy=local' a.log) -ge 2 ] &&
    [ \$(grep -c 'proxy=local' b.log) -ge 2 ]" ||
    fail "no health checks in the gateways' logs"
log_has a.log 'event=close reason="closed before sending anything"'
log_lacks a.log ' warn ' "gateway a logged warnings: $(grep ' warn ' a.log)"
log_lacks b.log ' warn ' "gateway b logged warnings: $(grep ' warn ' b.log)"
figure "haproxy-front: $(grep -c 'proxy=local' a.log) health checks on a," \
    "logged at info"
curl -s --max-time 5 --unix-socket a.sock http://localhost/ >a.prom ||
    fail "no statistics from gateway a"
probes=$(sed -n 's/^tlsgate_probes_total{route="unwrap"} \([0-9]*\)$/\1/p' a.prom)
[ "${probes:-0}" -ge 2 ] ||
    fail "tlsgate_probes_total of a: ${probes:-none}: $(grep probes a.prom)"
! grep -Eq '^tlsgate_refusals_total\{.*\} [1-9]' a.prom ||
    fail "a counted refusals: $(grep -E '^tlsgate_refusals_total\{.*\} [1-9]' a.prom)"

# --- 4. a gateway dies ------------------------------------------------------------

bg load1 timeout 60 "$HELPERS/load" seq 127.0.0.1 "$PW" 3000
load1=$BG_PID
sleep 0.5
kill -KILL "$(pid_of a)"
st=0
wait_exit "$(pid_of a)" 10 || st=$?
[ "$st" -eq 137 ] || fail "gateway a: exit status $st, not 137 (SIGKILL)"
wait_log haproxy.err 'Server gateways/a is DOWN' 10
wait_exit "$load1" 60 || true
lost=$(sed -n 's/.* failed=\([0-9][0-9]*\) .*/\1/p' load1.out)
[ -n "$lost" ] || fail "the first loader printed nothing: $(cat load1.out load1.err)"
before=$(opened b)
warned=$(count_lines b.log " warn ")	# the kill may cut sessions b had begun
timeout 60 "$HELPERS/load" seq 127.0.0.1 "$PW" 300 >load2.out 2>load2.err ||
    fail "sessions after a was marked down failed: $(cat load2.out load2.err)"
log_has load2.out 'failed=0 '
[ $(($(opened b) - before)) -eq 300 ] ||
    fail "b served $(($(opened b) - before)) of the 300 sessions after a died"
[ "$(count_lines b.log " warn ")" -eq "$warned" ] ||
    fail "gateway b logged warnings after a was marked down: $(grep " warn " b.log | tail -n 3)"
figure "haproxy-front: gateway a killed under load: $lost of 3000 sessions" \
    "lost at the kill; 0 of 300 after haproxy marked it down"
