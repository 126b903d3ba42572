# test/lib.sh: sourced by every test/NN-name.sh (POSIX sh), which test/run
# starts in its own temporary directory with TLSGATE, HELPERS, CERTS and
# SRCDIR set. It gives:
#   ports VAR...                 free loopback ports, one per variable
#   demo_routes A B C            the demo's wrap and unwrap routes (INI)
#   tls_accept/tls_connect PORT  an unwrap/wrap route's TLS keys (INI)
#   gw_start NAME CONF [ARGS]    start tlsgate, log in NAME.log, wait ready
#   gw_stop NAME [SECS]          SIGTERM it, wait; returns its exit status
#   bg NAME CMD...               run CMD in the background (NAME.out/.err)
#   track PID...                 kill PID at the end (bg, gw_start do it)
#   wait_for SECS WHAT CMD...    poll CMD until it succeeds, or fail
#   poll_for SECS CMD...         the same, returning 1 instead of failing
#   wait_log FILE ERE [SECS]     wait until a line of FILE matches
#   wait_count FILE ERE N [SECS] wait until N lines of FILE match
#   wait_port PORT [SECS]        wait until something listens on PORT
#   no_answer PORT               a listener whose connections never complete
#   client_hello FILE            a real ClientHello (gnutls-cli's), captured
#   echo_each PORT N WHAT        N sessions in turn, each echoed whole
#   ssl_save FILE PORT LINE      an openssl s_client session saved in FILE
#   wait_exit PID [SECS]         wait for PID to end; returns its status
#   proc_alive PID, stop [-SIG] PID..., count_lines FILE ERE, now_ms
#   log_has/log_lacks FILE ERE, same_file A B, expect_rc WANT GOT WHAT
#   fail MSG (exit 1), skip MSG (exit 77), note MSG, figure MSG
#   sanitizer                    asan, tsan or nothing: how TLSGATE was built
#   proc_fds/proc_threads/proc_rss PID   open fds, threads, VmRSS in KiB
#   wait_idle PID FDS THREADS [SECS]     until PID is back to those counts
# Every wait is bounded, every process started here is remembered by its
# PID and killed by it on exit. Nothing here sleeps to wait for readiness.
set -u

: "${TLSGATE:?run the tests with test/run}" "${HELPERS:?}" "${CERTS:?}"

_pids=
_gws=
_gw_pids=
_san_seen=		# gateways whose sanitizer exit status was reported
_next_port=
# The exit status test/run gives sanitizer builds on a report (its
# ASAN_OPTIONS, UBSAN_OPTIONS and TSAN_OPTIONS), and what a report
# looks like.
SAN_EXIT=${SAN_EXIT:-66}
_san_report='^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|^WARNING: ThreadSanitizer|^SUMMARY: [A-Za-z]+Sanitizer|: runtime error: '

fail() {
	echo "FAIL: $*"
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

note() {
	echo "# $*"
}

# figure MSG: a note that test/run also prints when the test passes (the
# measurements of the reliability tests).
figure() {
	echo "# $*" | tee -a figures
}

# --- processes --------------------------------------------------------

track() {
	_pids="$_pids $*"
}

# proc_alive PID: is PID running (not gone, not a zombie) and still the
# child of this test that it was? Every PID a test holds is one of its
# children; once such a child has ended and been reaped, the kernel may
# give its PID to an unrelated process (pid_max is 32768 on small
# machines), which must be neither waited for nor killed.
proc_alive() {
	_st=
	read -r _st 2>/dev/null </proc/"$1"/stat || return 1
	_st=${_st##*) }		# "STATE PPID ..."
	_pp=${_st#* }
	[ "${_st%% *}" != Z ] && [ "${_pp%% *}" = "$$" ]
}

# stop [-SIG] PID...: signal (SIGTERM unless -SIG) each PID that is still
# a running child of this test, never a stranger that took its PID.
stop() {
	_sig=-TERM
	case ${1:-} in -*) _sig=$1; shift ;; esac
	for _p in "$@"; do
		proc_alive "$_p" && kill "$_sig" "$_p" 2>/dev/null
	done
	return 0
}

cleanup() {
	_rc=$?
	trap - EXIT INT TERM HUP
	# shellcheck disable=SC2086
	stop $_pids
	for _p in $_pids; do
		_i=0
		while proc_alive "$_p" && [ "$_i" -lt 100 ]; do
			sleep 0.05
			_i=$((_i + 1))
		done
		stop -KILL "$_p"
		wait "$_p" 2>/dev/null
		_st=$?
		case " $_gw_pids " in *" $_p "*) ;; *) continue ;; esac
		case " $_san_seen " in *" $_p "*) continue ;; esac
		if [ "$_st" -eq "$SAN_EXIT" ]; then
			echo "FAIL: tlsgate (pid $_p) ended with the sanitizer's exit status $SAN_EXIT"
			[ "$_rc" -ne 0 ] || _rc=1
		fi
	done
	# A sanitizer build (make check-asan, check-tsan) reports on stderr:
	# fail on a report in any gateway's log, or in any *.log or *.err of
	# the test (tlsgate started by hand, --check runs).
	for _g in $_gws; do
		if grep -Eq 'Sanitizer|runtime error:' "$_g.log" 2>/dev/null; then
			echo "FAIL: sanitizer report in $_g.log"
			[ "$_rc" -ne 0 ] || _rc=1
		fi
	done
	for _f in *.log *.err; do
		[ -f "$_f" ] || continue
		case " $_gws " in *" ${_f%.log} "*) continue ;; esac
		if grep -Eq "$_san_report" "$_f" 2>/dev/null; then
			echo "FAIL: sanitizer report in $_f"
			[ "$_rc" -ne 0 ] || _rc=1
		fi
	done
	exit "$_rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# bg NAME CMD...: start CMD with stdout in NAME.out and stderr in NAME.err;
# its PID is in BG_PID and in NAME.pid. Background commands get none of
# the descriptors 3-9 a test may hold open: a child holding a fifo's write
# end would keep its reader from ever seeing the end.
bg() {
	_name=$1
	shift
	"$@" >"$_name.out" 2>"$_name.err" </dev/null \
	    3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	BG_PID=$!
	track "$BG_PID"
	echo "$BG_PID" >"$_name.pid"
}

pid_of() {	# pid_of NAME: the PID bg or gw_start recorded
	cat "$1.pid"
}

# --- time and waiting -------------------------------------------------

now_ms() {
	date +%s%3N
}

# poll_for SECS COMMAND...: poll COMMAND until it succeeds (return 0) or
# SECS seconds have passed (return 1).
poll_for() {
	_secs=$1
	shift
	_end=$(($(now_ms) + _secs * 1000))
	until "$@"; do
		[ "$(now_ms)" -lt "$_end" ] || return 1
		sleep 0.05
	done
}

# wait_for SECS DESCRIPTION COMMAND...: poll COMMAND until it succeeds;
# fail after SECS seconds.
wait_for() {
	_what=$2
	_s=$1
	shift 2
	poll_for "$_s" "$@" || fail "timed out after ${_s}s waiting for $_what"
}

_has_line() {
	grep -Eq -- "$2" "$1" 2>/dev/null
}

_has_count() {
	[ "$(count_lines "$1" "$2")" -ge "$3" ]
}

count_lines() {	# count_lines FILE ERE: how many lines match
	grep -Ec -- "$2" "$1" 2>/dev/null || true
}

wait_log() {	# wait_log FILE ERE [SECS]
	wait_for "${3:-10}" "/$2/ in $1" _has_line "$1" "$2"
}

wait_count() {	# wait_count FILE ERE N [SECS]
	wait_for "${4:-10}" "$3 lines /$2/ in $1" _has_count "$1" "$2" "$3"
}

# closed_clean LOG N BYTES: on both routes of the demo chain (wrap and
# unwrap), all N sessions logged in LOG closed with reason=eof and BYTES
# each way; else fail with the first that did not.
closed_clean() {
	for _r in wrap unwrap; do
		_n=$(count_lines "$1" "route=$_r .*event=close reason=eof up=$3 down=$3 ")
		[ "$_n" -eq "$2" ] ||
		    fail "$_r: $_n of $2 sessions closed with reason=eof up=$3 down=$3:
$(grep -E "route=$_r .*event=close" "$1" | grep -v "reason=eof up=$3 down=$3 " | head -n 5)"
	done
}

_listening() {
	[ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]
}

wait_port() {	# wait_port PORT [SECS]: until something listens on PORT
	wait_for "${2:-10}" "a listener on port $1" _listening "$1"
}

_gone() {
	! proc_alive "$1"
}

# wait_exit PID [SECS]: wait for PID (a child) to end and return its exit
# status; fail if it is still running after SECS seconds.
wait_exit() {
	wait_for "${2:-10}" "process $1 to exit" _gone "$1"
	wait "$1"
}

# --- ports ------------------------------------------------------------

# ports VAR...: set each VAR to a port nothing uses. Tests get disjoint
# ranges below the ephemeral ports: 20000 + 40 * NN (PORT_BASE overrides
# 20000), so concurrent tests and earlier TIME_WAITs do not collide.
ports() {
	if [ -z "$_next_port" ]; then
		_nn=$(basename "$0" | sed -n 's/^0*\([0-9][0-9]*\)-.*/\1/p')
		_next_port=$((${PORT_BASE:-20000} + 40 * ${_nn:-0}))
	fi
	for _var in "$@"; do
		while [ -n "$(ss -tanH "sport = :$_next_port" 2>/dev/null)" ]; do
			_next_port=$((_next_port + 1))
		done
		eval "$_var=$_next_port"
		_next_port=$((_next_port + 1))
	done
}

# --- the gateway ------------------------------------------------------

# gw_start NAME CONF [ARGS...]: start tlsgate -c CONF with stderr in
# NAME.log; wait until it logs event=ready. GW_PID and NAME.pid hold its PID.
# GW_PREFIX, if set, is a command that execs tlsgate (e.g. prlimit ... --).
gw_start() {
	_gw=$1 _conf=$2
	shift 2
	# shellcheck disable=SC2086
	${GW_PREFIX:-} "$TLSGATE" -c "$_conf" "$@" >"$_gw.out" 2>"$_gw.log" \
	    </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	GW_PID=$!
	track "$GW_PID"
	_gws="$_gws $_gw"
	_gw_pids="$_gw_pids $GW_PID"
	echo "$GW_PID" >"$_gw.pid"
	_end=$(($(now_ms) + 10000))
	until grep -q 'event=ready' "$_gw.log"; do
		if ! proc_alive "$GW_PID"; then
			wait "$GW_PID"
			fail "tlsgate $_gw exited with status $? before event=ready"
		fi
		[ "$(now_ms)" -lt "$_end" ] || fail "tlsgate $_gw: no event=ready after 10s"
		sleep 0.05
	done
}

# gw_run NAME ARGS...: run tlsgate ARGS once (10 s at most), stdout in
# NAME.out, stderr in NAME.err, exit status in rc.
gw_run() {
	_n=$1
	shift
	timeout 10 "$TLSGATE" "$@" >"$_n.out" 2>"$_n.err" </dev/null
	rc=$?
}

# gw_stop NAME [SECS]: SIGTERM the gateway, wait for it (SECS, default 15)
# and return its exit status.
gw_stop() {
	_p=$(pid_of "$1")
	kill -TERM "$_p" || fail "cannot signal tlsgate $1"
	wait_exit "$_p" "${2:-15}"
	_st=$?
	if [ "$_st" -eq "$SAN_EXIT" ]; then
		_san_seen="$_san_seen $_p"
		fail "tlsgate $1 ended with the sanitizer's exit status $_st"
	fi
	return "$_st"
}

# tls_accept PORT: the keys of an unwrap route's TLS side on
# 127.0.0.1:PORT with the test server certificate, requiring a client
# certificate from the test CA (INI lines on stdout).
tls_accept() {
	printf 'accept = tls://127.0.0.1:%s\ncert = %s\nkey = %s\nca = %s\n' \
	    "$1" "$CERTS/server.pem" "$CERTS/server.key" "$CERTS/ca.pem"
}

# tls_connect PORT: the keys of a wrap route's TLS side to
# 127.0.0.1:PORT with the test client certificate, verifying the server
# as localhost against the test CA (INI lines on stdout).
tls_connect() {
	printf 'connect = tls://127.0.0.1:%s\nca = %s\ncert = %s\nkey = %s\n' \
	    "$1" "$CERTS/ca.pem" "$CERTS/client.pem" "$CERTS/client.key"
	echo "server_name = localhost"
}

# demo_routes A B C: the demo's two routes with mutual TLS, wrap
# tcp://127.0.0.1:A -> tls://127.0.0.1:B and unwrap tls://127.0.0.1:B ->
# tcp://127.0.0.1:C, as INI text on stdout.
demo_routes() {
	printf '[wrap]\naccept = tcp://127.0.0.1:%s\n' "$1"
	tls_connect "$2"
	printf '\n[unwrap]\n'
	tls_accept "$2"
	printf 'connect = tcp://127.0.0.1:%s\n' "$3"
}

# --- one session -------------------------------------------------------

# exchange SPORT CPORT REQUEST ANSWER WHAT: one session through the
# gateway. A plaintext server on SPORT answers the file ANSWER once the
# request has ended (test/helpers/xfer); a client to CPORT sends the file
# REQUEST, shuts its write side and reads to the end (halfclose). Each
# must get every byte of the other's file.
exchange() {
	bg srv "$HELPERS/xfer" -l -w 127.0.0.1 "$1" "$4" got
	_srv=$BG_PID
	wait_port "$1"
	timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$2" <"$3" >out \
	    2>cli.err || fail "$5: client: $(cat cli.err)"
	wait_exit "$_srv" 10 || fail "$5: server: $(cat srv.err)"
	same_file "$3" got "$5: the request"
	same_file "$4" out "$5: the answer"
}

# --- a server that never answers ---------------------------------------

# no_answer PORT: a listener on PORT whose queue is full, so that a new
# connection to it waits in SYN-SENT (its SYNs are dropped) until the
# connecting side gives up: a listener with backlog 0 that never accepts,
# filled with connections of our own until one cannot get in. Skips the
# test where the kernel does not limit the queue so.
_queued() {	# _queued PORT N: N connections to PORT are established
	[ "$(ss -tnH state established "dport = :$1" 2>/dev/null |
	    grep -c .)" -ge "$2" ]
}
no_answer() {
	bg "noanswer$1" "$HELPERS/sink" -n -b 0 127.0.0.1 "$1"
	wait_port "$1"
	_n=0
	while :; do
		bg "filler$1-$_n" "$HELPERS/xfer" -p 60000 127.0.0.1 "$1" \
		    /dev/null "filler$1-$_n.got"
		_n=$((_n + 1))
		poll_for 1 _queued "$1" "$_n" || break
		[ "$_n" -lt 5 ] ||
		    skip "a listen() backlog of 0 does not limit the queue here"
	done
}

# ssl_save FILE PORT LINE: a full TLS 1.3 handshake of openssl s_client as
# the test client (CN=client, verifying localhost) to PORT that sends
# LINE and saves its session in FILE. The ticket comes after the
# handshake, so s_client's stdin is a fifo held open (read-write: opening
# it never blocks) until FILE exists.
ssl_save() {
	rm -f "$1" save.fifo
	mkfifo save.fifo || fail "mkfifo"
	exec 8<>save.fifo
	# shellcheck disable=SC2016
	bg save sh -c 'exec "$@" <save.fifo >"$0" 2>"$0.err"' "$1.out" \
	    timeout 10 openssl s_client -connect "127.0.0.1:$2" \
	    -servername localhost -CAfile "$CERTS/ca.pem" \
	    -cert "$CERTS/client.pem" -key "$CERTS/client.key" \
	    -verify_return_error -sess_out "$1"
	_save=$BG_PID
	echo "$3" >&8
	poll_for 10 test -s "$1" || {
		exec 8>&-
		fail "no session saved in $1: $(cat "$1.out.err")"
	}
	exec 8>&-
	wait_exit "$_save" 10 || fail "s_client ($1): $(cat "$1.out.err")"
	grep -q '^New, TLSv1.3' "$1.out" ||
	    fail "$1: not a new TLS 1.3 session: $(grep -E '^(New|Reused)' \
	    "$1.out")"
}

# echo_each PORT N WHAT: N sessions to PORT one after another, each
# sending its own line and shutting its write side (halfclose); each must
# get its line back whole from an echo server behind.
echo_each() {
	_i=0
	while [ "$_i" -lt "$2" ]; do
		_i=$((_i + 1))
		printf 'session %s\n' "$_i" >req
		timeout 10 "$HELPERS/halfclose" 127.0.0.1 "$1" <req >got \
		    2>cli.err || fail "session $_i $3: $(cat cli.err)"
		same_file req got "session $_i $3"
	done
}

# --- a ClientHello --------------------------------------------------

# client_hello FILE: the first record gnutls-cli sends (a ClientHello with
# the test client certificate offered), captured into FILE by a listener
# that only reads.
_hello_done() {	# _hello_done FILE: FILE holds one whole handshake record
	[ -s "$1" ] || return 1
	# shellcheck disable=SC2046
	set -- $(od -An -tu1 -N5 "$1") "$1"
	[ "$#" -eq 6 ] && [ "$1" -eq 22 ] &&
	    [ "$(wc -c <"$6")" -ge $((5 + $4 * 256 + $5)) ]
}
client_hello() {
	ports _hello_port
	bg hello-srv "$HELPERS/xfer" -l -w 127.0.0.1 "$_hello_port" /dev/null \
	    "$1"
	wait_port "$_hello_port"
	bg hello-cli timeout 20 gnutls-cli -p "$_hello_port" \
	    --x509cafile "$CERTS/ca.pem" --x509certfile "$CERTS/client.pem" \
	    --x509keyfile "$CERTS/client.key" localhost
	wait_for 10 "a ClientHello from gnutls-cli" _hello_done "$1"
	stop "$(pid_of hello-cli)" "$(pid_of hello-srv)"
}

# --- a session that lasts ---------------------------------------------

# upload_start SIZE RATE SPORT CPORT: a plaintext server on SPORT that
# answers (24 bytes) once the upload has ended, and a client to CPORT
# that uploads SIZE random bytes at RATE bytes/s (test/helpers/xfer);
# returns once the first bytes have reached the server. UP_SRV and
# UP_CLI are their PIDs.
upload_start() {
	head -c "$1" /dev/urandom >up.bin
	echo "answer after the upload" >answer
	bg srv "$HELPERS/xfer" -l -w 127.0.0.1 "$3" answer got
	UP_SRV=$BG_PID
	wait_port "$3"
	bg cli "$HELPERS/xfer" -r "$2" 127.0.0.1 "$4" up.bin out
	UP_CLI=$BG_PID
	wait_for 10 "the upload to reach the server" test -s got
}

# upload_done WHAT: both ends of upload_start finish, every byte each
# way intact.
upload_done() {
	wait_exit "$UP_CLI" 15 || fail "$1: client: $(cat cli.err)"
	wait_exit "$UP_SRV" 5 || fail "$1: server: $(cat srv.err)"
	same_file up.bin got "$1: the upload"
	same_file answer out "$1: the answer"
}

# --- assertions -------------------------------------------------------

log_has() {	# log_has FILE ERE [MSG]
	grep -Eq -- "$2" "$1" || fail "${3:-no line /$2/ in $1}"
}

log_lacks() {	# log_lacks FILE ERE [MSG]
	! grep -Eq -- "$2" "$1" || fail "${3:-unexpected line /$2/ in $1:
$(grep -E -- "$2" "$1" | head -n 5)}"
}

same_file() {	# same_file EXPECTED GOT [WHAT]
	cmp -s "$1" "$2" || fail "${3:-$2} differs from $1" \
	    "($(wc -c <"$1") vs $(wc -c <"$2" 2>/dev/null) bytes)"
}

expect_rc() {	# expect_rc WANT GOT WHAT
	[ "$2" -eq "$1" ] || fail "$3: exit status $2, expected $1"
}

# --- sanitizers and resources ------------------------------------------

# sanitizer: "asan" or "tsan" when TLSGATE is such a build (make asan,
# make tsan), else nothing. Tests that cannot run under one skip.
sanitizer() {
	if grep -aqF __tsan_init "$TLSGATE"; then
		echo tsan
	elif grep -aqF __asan_init "$TLSGATE"; then
		echo asan
	fi
}

# need_fds N: raise this test's soft open-files limit to the hard one,
# and skip the test when that still allows fewer than N descriptors.
need_fds() {
	# shellcheck disable=SC3045 # dash's and bash's ulimit have -n and -H
	ulimit -n "$(ulimit -Hn)" 2>/dev/null
	# shellcheck disable=SC3045
	[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$1" ] ||
	    skip "$1 descriptors needed, the hard limit is $(ulimit -Hn)"
}

proc_fds() {	# proc_fds PID: how many descriptors PID has open
	ls /proc/"$1"/fd 2>/dev/null | wc -l
}

# proc_threads PID: how many threads PID runs, leaving out the idle
# threads tlsgate keeps for its next sessions (named tlsgate:idle).
proc_threads() {
	_n=0
	for _c in /proc/"$1"/task/*/comm; do
		_name=
		read -r _name <"$_c" 2>/dev/null || continue
		[ "$_name" = "tlsgate:idle" ] || _n=$((_n + 1))
	done
	echo "$_n"
}

proc_rss() {	# proc_rss PID: PID's resident set (VmRSS), in KiB
	sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' /proc/"$1"/status \
	    2>/dev/null
}

_idle_now() {
	[ "$(proc_fds "$1")" -le "$2" ] && [ "$(proc_threads "$1")" -le "$3" ]
}

# wait_idle PID FDS THREADS [SECS]: wait (10 s unless SECS) until PID has
# no more than FDS descriptors and THREADS threads open, e.g. the counts it
# had when idle; fail with the counts it still has.
wait_idle() {
	proc_alive "$1" || fail "pid $1 is gone"
	poll_for "${4:-10}" _idle_now "$1" "$2" "$3" ||
	    fail "pid $1 still has $(proc_fds "$1") fds and" \
	    "$(proc_threads "$1") threads after ${4:-10}s, expected $2 and $3;" \
	    "its fds: $(ls -l /proc/"$1"/fd 2>/dev/null | tail -n +2 |
	    sed 's/.* //; s/:\[[0-9]*\]$//' | sort | uniq -c | sort -rn |
	    tr -s ' \n' ' ')"
}
