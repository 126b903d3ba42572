#!/bin/sh
# 62-unix: unix sockets on the plaintext side of a route, with real peers
# (socat, curl --unix-socket, systemd-socket-activate). Asserted:
#  1. unix accept -> wrap -> TLS -> unwrap -> unix connect: the request
#     (2 MiB) and the answer (4 MiB) arrive intact both ways, with a
#     half-close each way round: (a) the client sends and shuts its write
#     side, the server answers only after that end; (b) the server sends
#     and shuts its write side first, the client sends only after that end
#     reached it. The client's open line is peer=unix:pid=<its pid>,uid=<its
#     uid> (SO_PEERCRED); unwrap logs event=connect addr=unix:/PATH; both
#     routes close with reason=eof and the byte counts. An HTTP exchange
#     with curl --unix-socket through the same chain works.
#  2. The abstract namespace on both sides (unix:@NAME): 8 MiB echoed
#     while it is sent, intact; listen and connect lines name unix:@NAME;
#     nothing listens on the names once the gateway has exited.
#  3. Socket files: mode 0600 and the process's owner by default,
#     unix_mode = 0660 and 0666 as asked; as root, unix_owner = nobody
#     (its group) and root:GROUP with 0660; a client running as nobody
#     (setpriv) is refused by the kernel on root's 0600 and 0660 sockets
#     (no session opens) and gets through 0666, its group's 0660 and its
#     own 0600 socket, logged with uid=<nobody>. With [gateway] user =
#     nobody, the file belongs to nobody unless unix_owner says otherwise,
#     and is removed at exit (its directory is nobody's).
#  4. A stale socket file (nobody listening) is replaced at start; a live
#     one (socat listening) makes the start fail, exit 1, with
#     reason="PATH: in use by another process", the other process's socket
#     left serving; a live abstract name: "Address already in use"; a
#     regular file: "exists and is not a socket", left as it was. Every
#     socket file is removed at exit (SIGTERM). A reload that drops a route
#     removes its file, one that adds a route makes its file, one that
#     keeps a route keeps its file (same inode and ctime) and its session
#     goes on carrying data.
#  5. idle_timeout = 2 on a unix route closes an idle session after 2 s
#     (not before, not after 4 s) with reason="idle timeout", and the
#     client's connection ends. A unix connect to a missing path and to a
#     stale one: the session is rejected with reason="connect unix:/PATH:
#     No such file or directory" (or Connection refused) and the client is
#     closed without data. A 107-byte path works.
#  6. Under systemd-socket-activate (skipped if missing) with a unix path
#     and an abstract name: the routes take them (from=systemd), serve,
#     and the path's file is left at exit (it is systemd's).
#  7. tlsgate -t -v explains the unix routes (socket mode); config errors
#     (exit 2): unix_mode/unix_owner on a tcp accept and on a unix
#     connect, unix_mode 0999 and abc, a path of 108 bytes, unix:relative,
#     allow_from and accept_proxy on a unix accept, unix_mode on unix:@NAME.
. "$TESTLIB"

command -v socat >/dev/null || skip "no socat"

# Sockets live in a directory of their own under /tmp, which a client
# running as nobody can reach (the test's directory may be private) and
# whose paths stay short.
x=$(mktemp -d /tmp/tlsgate-62.XXXXXX) || fail "cannot make a directory in /tmp"
trap '_st62=$?; rm -rf "$x"; (exit "$_st62"); cleanup' EXIT
chmod 755 "$x"
abs=tlsgate-62-${x##*.}		# abstract names, unique to this run
uid=$(id -u)
gid=$(id -g)

root=
if [ "$uid" -eq 0 ] && id nobody >/dev/null 2>&1 &&
    command -v setpriv >/dev/null; then
	root=1
	nuid=$(id -u nobody)
	ngid=$(id -g nobody)
	ngroup=$(id -gn nobody)
fi

_unix_listening() {	# _unix_listening PATH|@NAME: a listener is there
	ss -xlH 2>/dev/null | awk -v p="$1" '$5 == p { f = 1 } END { exit !f }'
}

wait_unix() {	# wait_unix PATH|@NAME: until something listens there
	wait_for 10 "a listener on $1" _unix_listening "$1"
}

# stale_sock PATH: a socket file at PATH that nobody listens on (socat's,
# ended without removing it).
stale_sock() {
	bg stale socat UNIX-LISTEN:"$1",unlink-close=0 /dev/null
	wait_unix "$1"
	stop "$BG_PID"
	wait_exit "$BG_PID" 5
	[ -S "$1" ] || fail "no stale socket file $1"
	! timeout 5 socat -u /dev/null UNIX-CONNECT:"$1" 2>stale.err ||
	    fail "$1 is not stale"
	log_has stale.err 'Connection refused'
}

# echoes ADDR TEXT [WHAT]: a socat client of ADDR (a socat address) gets
# TEXT back from the echo server behind it
echoes() {
	got=$(printf '%s' "$2" | timeout 10 socat -t 10 - "$1" 2>echo.err) ||
	    fail "${3:-client of $1}: $(cat echo.err)"
	[ "$got" = "$2" ] || fail "${3:-client of $1}: got '$got', not '$2'"
}

# nobody CMD...: run CMD as nobody and nobody's group only
nobody() {
	setpriv --reuid="$nuid" --regid="$ngid" --clear-groups "$@"
}

# as_nobody SOCK yes|no: a client running as nobody gets an echo through
# the unix socket file SOCK (yes), or is refused by the kernel (no)
as_nobody() {
	got=$(printf 'as nobody' | timeout 10 setpriv --reuid="$nuid" \
	    --regid="$ngid" --clear-groups socat -t 10 - UNIX-CONNECT:"$1" \
	    2>nobody.err)
	rc=$?
	if [ "$2" = yes ]; then
		[ "$rc" -eq 0 ] && [ "$got" = "as nobody" ] ||
		    fail "nobody through $1: exit $rc, got '$got': $(cat nobody.err)"
	else
		[ "$rc" -ne 0 ] || fail "nobody connected to $1 (got '$got')"
		log_has nobody.err 'Permission denied' \
		    "nobody and $1: not refused for permission: $(cat nobody.err)"
	fi
}

mode_of() {	# mode_of FILE: "MODE UID GID"
	stat -c '%a %u %g' "$1"
}

expect_mode() {	# expect_mode FILE "MODE UID GID"
	[ -S "$1" ] || fail "$1 is not a socket"
	[ "$(mode_of "$1")" = "$2" ] ||
	    fail "$1: mode and owner '$(mode_of "$1")', expected '$2'"
}

ports T T2 E
bg echo "$HELPERS/sink" -e 127.0.0.1 "$E"
wait_port "$E"

# A path of exactly 107 bytes (the most sun_path holds with its NUL).
long=$x/
while [ "${#long}" -lt 107 ]; do long=${long}L; done

# --- the main gateway ---------------------------------------------------

{
	printf '[wrap]\naccept = unix:%s/in.sock\n' "$x"
	tls_connect "$T"
	printf '\n[unwrap]\n'
	tls_accept "$T"
	printf 'connect = unix:%s/srv.sock\n' "$x"
	printf '\n[awrap]\naccept = unix:@%s-in\n' "$abs"
	tls_connect "$T2"
	printf '\n[aunwrap]\n'
	tls_accept "$T2"
	printf 'connect = unix:@%s-srv\n' "$abs"
	cat <<EOF

[m600]
accept = unix:$x/m600.sock
connect = tcp://127.0.0.1:$E

[m660]
accept = unix:$x/m660.sock
connect = tcp://127.0.0.1:$E
unix_mode = 0660

[m666]
accept = unix:$x/m666.sock
connect = tcp://127.0.0.1:$E
unix_mode = 0666

[stale]
accept = unix:$x/stale.sock
connect = tcp://127.0.0.1:$E

[long]
accept = unix:$long
connect = tcp://127.0.0.1:$E

[idle]
accept = unix:$x/idle.sock
connect = tcp://127.0.0.1:$E
idle_timeout = 2

[down]
accept = unix:$x/down.sock
connect = unix:$x/missing.sock

[refused]
accept = unix:$x/refused.sock
connect = unix:$x/dead.sock
EOF
	if [ -n "$root" ]; then
		cat <<EOF

[grp]
accept = unix:$x/grp.sock
connect = tcp://127.0.0.1:$E
unix_mode = 0660
unix_owner = root:$ngroup

[own]
accept = unix:$x/own.sock
connect = tcp://127.0.0.1:$E
unix_owner = nobody
EOF
	fi
} >main.ini

# A stale file where [stale] listens (mode 0644, so that its replacement
# shows), and one where [refused] connects.
stale_sock "$x/stale.sock"
chmod 644 "$x/stale.sock"
stale_sock "$x/dead.sock"

gw_start gw main.ini
for r in wrap:in m600:m600 m660:m660 m666:m666 stale:stale idle:idle; do
	log_has gw.log "info route=${r%%:*} event=listen addr=unix:$x/${r#*:}.sock\$"
done
log_has gw.log "info route=awrap event=listen addr=unix:@$abs-in\$"
log_has gw.log "info route=long event=listen addr=unix:$long\$"
wait_unix "$x/in.sock"
wait_unix "@$abs-in"

# 5 (started now, judged later): an idle session on [idle].
bg idle socat -u UNIX-CONNECT:"$x/idle.sock" CREATE:idle.out
idle=$BG_PID
wait_log gw.log 'route=idle .*event=connect addr=127\.0\.0\.1:'

# --- 1. unix -> wrap -> TLS -> unwrap -> unix, both half-closes --------

head -c 2097152 /dev/urandom >request
head -c 4194304 /dev/urandom >answer

# (a) the client ends first; the server answers once the request has ended
bg srv1 socat -t 30 UNIX-LISTEN:"$x/srv.sock",unlink-early \
    SYSTEM:'cat >got-request1; cat answer'
srv1=$BG_PID
wait_unix "$x/srv.sock"
bg cli1 socat -t 30 UNIX-CONNECT:"$x/in.sock" \
    'OPEN:request,rdonly!!CREATE:got-answer1'
cli1=$BG_PID
wait_exit "$cli1" 20 || fail "client (client ends first): $(cat cli1.err)"
wait_exit "$srv1" 10 || fail "server (client ends first): $(cat srv1.err)"
same_file request got-request1 "request (client ends first)"
same_file answer got-answer1 "answer (client ends first)"
log_has gw.log "info route=wrap session=[0-9]+ event=open peer=unix:pid=$cli1,uid=$uid\$"
log_has gw.log "info route=unwrap session=[0-9]+ event=connect addr=unix:$x/srv\.sock\$"
wait_count gw.log 'route=wrap .*event=close' 1
wait_count gw.log 'route=unwrap .*event=close' 1
log_has gw.log 'route=wrap .*event=close reason=eof up=2097152 down=4194304 '
log_has gw.log 'route=unwrap .*event=close reason=eof up=2097152 down=4194304 '

# (b) the server ends first; the client sends once that end has reached it
bg srv2 socat -t 30 UNIX-LISTEN:"$x/srv.sock",unlink-early \
    'OPEN:answer,rdonly!!CREATE:got-request2'
srv2=$BG_PID
wait_unix "$x/srv.sock"
bg cli2 socat -t 30 UNIX-CONNECT:"$x/in.sock" \
    SYSTEM:'cat >got-answer2; cat request'
cli2=$BG_PID
wait_exit "$cli2" 20 || fail "client (server ends first): $(cat cli2.err)"
wait_exit "$srv2" 10 || fail "server (server ends first): $(cat srv2.err)"
same_file answer got-answer2 "answer (server ends first)"
same_file request got-request2 "request (server ends first)"
log_has gw.log "info route=wrap session=[0-9]+ event=open peer=unix:pid=$cli2,uid=$uid\$"
wait_count gw.log 'route=wrap .*event=close' 2
wait_count gw.log 'route=unwrap .*event=close' 2
[ "$(count_lines gw.log 'route=(un)?wrap .*event=close reason=eof up=2097152 down=4194304 ')" -eq 4 ] ||
    fail "expected 4 clean closes with the byte counts:
$(grep 'event=close' gw.log)"

# HTTP with curl --unix-socket: a one-shot HTTP server on srv.sock.
if command -v curl >/dev/null; then
	printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nhello via unix' >http.answer
	bg http socat -t 30 UNIX-LISTEN:"$x/srv.sock",unlink-early \
	    'OPEN:http.answer,rdonly!!CREATE:http.request'
	wait_unix "$x/srv.sock"
	got=$(timeout 10 curl -sS --unix-socket "$x/in.sock" \
	    http://localhost/unix-path 2>curl.err) || fail "curl: $(cat curl.err)"
	[ "$got" = "hello via unix" ] || fail "curl got '$got'"
	wait_exit "$(pid_of http)" 10 || fail "http server: $(cat http.err)"
	log_has http.request '^GET /unix-path HTTP/1\.1' "the server got no GET"
else
	note "no curl: curl --unix-socket not tried"
fi

# --- 2. the abstract namespace, both sides ------------------------------

head -c 8388608 /dev/urandom >big
bg asrv socat -t 30 ABSTRACT-LISTEN:"$abs-srv" EXEC:cat
asrv=$BG_PID
wait_unix "@$abs-srv"
bg acli socat -t 30 ABSTRACT-CONNECT:"$abs-in" 'OPEN:big,rdonly!!CREATE:got-big'
acli=$BG_PID
wait_exit "$acli" 20 || fail "abstract client: $(cat acli.err)"
wait_exit "$asrv" 10 || fail "abstract server: $(cat asrv.err)"
same_file big got-big "8 MiB echoed through unix:@ both sides"
log_has gw.log "info route=awrap session=[0-9]+ event=open peer=unix:pid=$acli,uid=$uid\$"
log_has gw.log "info route=aunwrap session=[0-9]+ event=connect addr=unix:@$abs-srv\$"
wait_log gw.log 'route=awrap .*event=close reason=eof up=8388608 down=8388608 '
wait_log gw.log 'route=aunwrap .*event=close reason=eof up=8388608 down=8388608 '

# --- 3. modes and owners -------------------------------------------------

expect_mode "$x/in.sock" "600 $uid $gid"
expect_mode "$x/m600.sock" "600 $uid $gid"
expect_mode "$x/m660.sock" "660 $uid $gid"
expect_mode "$x/m666.sock" "666 $uid $gid"
echoes UNIX-CONNECT:"$x/m666.sock" "through 0666"
if [ -n "$root" ]; then
	expect_mode "$x/grp.sock" "660 0 $ngid"
	expect_mode "$x/own.sock" "600 $nuid $ngid"
	as_nobody "$x/m600.sock" no
	as_nobody "$x/m660.sock" no
	as_nobody "$x/m666.sock" yes
	as_nobody "$x/grp.sock" yes
	as_nobody "$x/own.sock" yes
	log_lacks gw.log "route=m6[06]0 .*event=open"
	log_has gw.log "info route=m666 session=[0-9]+ event=open peer=unix:pid=[0-9]+,uid=$nuid\$"
	log_has gw.log "info route=grp session=[0-9]+ event=open peer=unix:pid=[0-9]+,uid=$nuid\$"
	log_has gw.log "info route=own session=[0-9]+ event=open peer=unix:pid=[0-9]+,uid=$nuid\$"
else
	note "not root: unix_owner and a client as nobody not tried"
fi

# --- 4 (start): the stale file was replaced -------------------------------

expect_mode "$x/stale.sock" "600 $uid $gid"
echoes UNIX-CONNECT:"$x/stale.sock" "through the replaced stale socket"

# --- 5. idle timeout, connect failures, a 107-byte path ------------------

wait_exit "$idle" 8 || true
wait_log gw.log 'route=idle .*event=close reason="idle timeout" up=0 down=0 ms=' 1
ms=$(sed -n 's/.*route=idle .*event=close reason="idle timeout" .* ms=\([0-9]*\).*/\1/p' gw.log)
[ "$ms" -ge 1900 ] && [ "$ms" -le 4000 ] ||
    fail "the idle session lasted ${ms} ms, expected about 2000"
[ ! -s idle.out ] || fail "the idle client got data"

# client_closed SOCK WHAT: a client of SOCK is closed without data
client_closed() {
	printf 'hello' | timeout 10 socat -t 30 - UNIX-CONNECT:"$1" \
	    >closed.out 2>closed.err
	rc=$?
	[ "$rc" -ne 124 ] || fail "$2: the client was not closed in 10s"
	[ ! -s closed.out ] || fail "$2: the client got data: $(cat closed.out)"
}
client_closed "$x/down.sock" "connect to a missing path"
wait_log gw.log "warn route=down session=[0-9]+ event=reject reason=\"connect unix:$x/missing\.sock: No such file or directory\"\$"
client_closed "$x/refused.sock" "connect to a stale socket"
wait_log gw.log "warn route=refused session=[0-9]+ event=reject reason=\"connect unix:$x/dead\.sock: Connection refused\"\$"

echoes UNIX-CONNECT:"$long" "through a 107-byte path"

# --- 4 (exit): every socket file is removed -------------------------------

gw_stop gw
expect_rc 0 $? "tlsgate after SIGTERM"
for f in in m600 m660 m666 stale idle down refused; do
	[ ! -e "$x/$f.sock" ] || fail "$x/$f.sock left at exit"
done
[ ! -e "$long" ] || fail "the 107-byte path left at exit"
if [ -n "$root" ]; then
	[ ! -e "$x/grp.sock" ] && [ ! -e "$x/own.sock" ] ||
	    fail "grp.sock or own.sock left at exit"
fi
[ -S "$x/dead.sock" ] || fail "the stale socket a route connects to was removed"
_unix_listening "@$abs-in" && fail "@$abs-in still listening after exit"
log_lacks gw.log '^[^ ]* error '

# --- 4. start failures ------------------------------------------------------

# start_fails NAME ADDR REASON: a gateway whose one route accepts on ADDR
# exits 1 without ready, logging that REASON (a fixed string)
start_fails() {
	printf '[%s]\naccept = %s\nconnect = tcp://127.0.0.1:%s\n' "$1" "$2" \
	    "$E" >"$1.ini"
	gw_run "$1" -c "$1.ini"
	expect_rc 1 "$rc" "tlsgate with $2 taken"
	sed 's/^[^ ]* //' "$1.err" >"$1.lines"
	grep -qxF -- "error route=$1 event=listen addr=$2 reason=\"$3\"" \
	    "$1.lines" || fail "$1: no line 'error route=$1 event=listen" \
	    "addr=$2 reason=\"$3\"' in: $(cat "$1.err")"
	log_lacks "$1.err" 'event=ready'
}

# A live socket: socat listens (and echoes) on it.
bg live socat UNIX-LISTEN:"$x/live.sock",fork EXEC:cat
wait_unix "$x/live.sock"
ino=$(stat -c '%i %z' "$x/live.sock")
start_fails live "unix:$x/live.sock" "$x/live.sock: in use by another process"
[ "$(stat -c '%i %z' "$x/live.sock")" = "$ino" ] ||
    fail "the live socket file was replaced"
echoes UNIX-CONNECT:"$x/live.sock" "the other process's socket after the failed start"

bg alive socat ABSTRACT-LISTEN:"$abs-live",fork EXEC:cat
wait_unix "@$abs-live"
start_fails alive "unix:@$abs-live" "@$abs-live: Address already in use"
echoes ABSTRACT-CONNECT:"$abs-live" "the other process's abstract socket"

printf 'a regular file\n' >"$x/reg.sock"
start_fails reg "unix:$x/reg.sock" "$x/reg.sock: exists and is not a socket"
[ "$(cat "$x/reg.sock")" = "a regular file" ] || fail "the regular file changed"

# --- 4. reloads: dropped, added, kept --------------------------------------

route() {	# route NAME SOCK: a unix -> tcp echo route (INI)
	printf '[%s]\naccept = unix:%s\nconnect = tcp://127.0.0.1:%s\n\n' \
	    "$1" "$2" "$E"
}
{ route keep "$x/keep.sock"; route drop "$x/drop.sock"; } >rl.ini
gw_start rl rl.ini
rl=$GW_PID
wait_unix "$x/keep.sock"
wait_unix "$x/drop.sock"

# A session held open on [keep], fed through a fifo.
mkfifo hold.fifo
exec 4<>hold.fifo
bg hold socat -t 30 UNIX-CONNECT:"$x/keep.sock" 'OPEN:hold.fifo,rdonly!!CREATE:hold.out'
hold=$BG_PID
printf 'before\n' >&4
wait_log hold.out '^before$'
ino=$(stat -c '%i %z' "$x/keep.sock")

{ route keep "$x/keep.sock"; route new "$x/new.sock"; } >rl.ini
kill -HUP "$rl"
wait_log rl.log 'event=reload result=ok'
[ ! -e "$x/drop.sock" ] || fail "drop.sock left after the reload dropped its route"
log_has rl.log "info route=new event=listen addr=unix:$x/new\.sock\$"
expect_mode "$x/new.sock" "600 $uid $gid"
[ "$(stat -c '%i %z' "$x/keep.sock")" = "$ino" ] ||
    fail "keep.sock was made again at the reload: $ino, now $(stat -c '%i %z' "$x/keep.sock")"
[ "$(count_lines rl.log 'route=keep event=listen')" -eq 1 ] ||
    fail "[keep] listened again at the reload"
printf 'after\n' >&4
wait_log hold.out '^after$'
exec 4>&-
wait_exit "$hold" 10 || fail "held client: $(cat hold.err)"
[ "$(cat hold.out)" = "before
after" ] || fail "the held session got '$(cat hold.out)'"
wait_log rl.log 'route=keep session=1 event=close reason=eof up=13 down=13 '
echoes UNIX-CONNECT:"$x/keep.sock" "keep.sock after the reload"
echoes UNIX-CONNECT:"$x/new.sock" "new.sock after the reload"
! timeout 5 socat -u /dev/null UNIX-CONNECT:"$x/drop.sock" 2>/dev/null ||
    fail "drop.sock still answers"

gw_stop rl
expect_rc 0 $? "tlsgate (reloads) after SIGTERM"
[ ! -e "$x/keep.sock" ] && [ ! -e "$x/new.sock" ] ||
    fail "keep.sock or new.sock left at exit"

# --- 3. [gateway] user = nobody --------------------------------------------

if [ -n "$root" ]; then
	# The directory is nobody's, so that nobody can remove its files.
	mkdir "$x/nob"
	chown "$nuid:$ngid" "$x/nob"
	{
		printf '[gateway]\nuser = nobody\ngroup = %s\n\n' "$ngroup"
		route dropped "$x/nob/dropped.sock"
		route rootsock "$x/nob/root.sock"
		echo "unix_owner = root"
	} >drop.ini
	gw_start dropgw drop.ini
	log_has dropgw.log "event=privileges uid=$nuid gid=$ngid"
	expect_mode "$x/nob/dropped.sock" "600 $nuid $ngid"
	expect_mode "$x/nob/root.sock" "600 0 0"
	as_nobody "$x/nob/dropped.sock" yes
	as_nobody "$x/nob/root.sock" no
	gw_stop dropgw
	expect_rc 0 $? "tlsgate (user = nobody) after SIGTERM"
	[ ! -e "$x/nob/dropped.sock" ] && [ ! -e "$x/nob/root.sock" ] ||
	    fail "a socket file left at exit by the gateway running as nobody: $(ls "$x/nob")"
	log_lacks dropgw.log 'cannot remove'
fi

# --- 6. socket activation ---------------------------------------------------

if command -v systemd-socket-activate >/dev/null; then
	{ route act "$x/act.sock"; route aact "@$abs-act"; } >act.ini
	bg act systemd-socket-activate -l "$x/act.sock" -l "@$abs-act" \
	    "$TLSGATE" -c act.ini
	act=$BG_PID
	wait_unix "$x/act.sock"
	wait_unix "@$abs-act"
	echoes UNIX-CONNECT:"$x/act.sock" "through the activated path"
	wait_log act.err 'event=ready'
	echoes ABSTRACT-CONNECT:"$abs-act" "through the activated abstract name"
	log_has act.err "info route=act event=listen addr=unix:$x/act\.sock from=systemd\$"
	log_has act.err "info route=aact event=listen addr=unix:@$abs-act from=systemd\$"
	log_lacks act.err 'in use|error'
	ino=$(stat -c '%i %z' "$x/act.sock")
	kill -TERM "$act"
	wait_exit "$act" 15
	expect_rc 0 $? "tlsgate (socket-activated) after SIGTERM"
	[ -S "$x/act.sock" ] || fail "tlsgate removed systemd's socket file"
	[ "$(stat -c '%i %z' "$x/act.sock")" = "$ino" ] ||
	    fail "systemd's socket file was replaced"
else
	note "systemd-socket-activate is not installed: activation not tested"
fi

# --- 7. --check ---------------------------------------------------------------

gw_run chk -t -v -c main.ini
expect_rc 0 "$rc" "tlsgate -t -v with unix routes"
grep -qxF "  wrap: accepts plaintext on unix:$x/in.sock (socket mode 0600); then connects with TLS to 127.0.0.1:$T, checking that the server's certificate chains to $CERTS/ca.pem and is valid for localhost, presenting the certificate of $CERTS/client.pem" chk.out ||
    fail "-t -v on [wrap]: $(grep '^  wrap:' chk.out)"
grep -qxF "  unwrap: accepts TLS on 127.0.0.1:$T from clients whose certificate chains to $CERTS/ca.pem; then connects in plaintext to unix:$x/srv.sock; its session tickets resume on this process only" chk.out ||
    fail "-t -v on [unwrap]: $(grep '^  unwrap:' chk.out)"
log_has chk.out "^wrap wrap unix:$x/in\.sock -> tls://127\.0\.0\.1:$T cert=\"CN=client\" "
log_has chk.out "^down forward unix:$x/down\.sock -> unix:$x/missing\.sock\$"
log_has chk.out "^  m660: accepts plaintext on unix:$x/m660\.sock \(socket mode 0660\) and connects in plaintext to 127\.0\.0\.1:$E, without TLS\$"
log_has chk.out "^  aunwrap: .*; then connects in plaintext to unix:@$abs-srv; its session tickets resume on this process only\$"
log_has chk.out "^  down: accepts plaintext on unix:$x/down\.sock \(socket mode 0600\) and connects in plaintext to unix:$x/missing\.sock, without TLS\$"

{
	cat <<EOF
[tcpmode]
accept = tcp://127.0.0.1:$E
connect = tcp://127.0.0.1:$E
unix_mode = 0660
unix_owner = root

[cmode]
accept = tcp://127.0.0.1:$T
connect = unix:$x/c.sock
unix_mode = 0660

[badmode]
accept = unix:$x/b1.sock
connect = tcp://127.0.0.1:$E
unix_mode = 0999

[badmode2]
accept = unix:$x/b2.sock
connect = tcp://127.0.0.1:$E
unix_mode = abc

[toolong]
accept = unix:${long}X
connect = tcp://127.0.0.1:$E

[rel]
accept = unix:relative
connect = tcp://127.0.0.1:$E

[allow]
accept = unix:$x/b3.sock
connect = tcp://127.0.0.1:$E
allow_from = 127.0.0.1

[proxy]
accept = unix:$x/b4.sock
connect = tcp://127.0.0.1:$E
accept_proxy = yes

[absmode]
accept = unix:@$abs-b5
connect = tcp://127.0.0.1:$E
unix_mode = 0666
EOF
} >bad.ini
gw_run bad -t -c bad.ini
expect_rc 2 "$rc" "tlsgate -t with bad unix keys"
sed -n "s/^bad\\.ini:[0-9]*: //p" bad.err >bad.lines
for e in \
    '[tcpmode] unix_mode: applies only to a unix: accept' \
    '[tcpmode] unix_owner: applies only to a unix: accept' \
    '[cmode] unix_mode: applies only to a unix: accept' \
    '[badmode] unix_mode: an octal mode from 0 to 0777, not "0999"' \
    '[badmode2] unix_mode: an octal mode from 0 to 0777, not "abc"' \
    "[toolong] accept: unix socket path longer than 107 bytes: \"unix:${long}X\"" \
    '[rel] accept: expected unix:/PATH or unix:@NAME: "unix:relative"' \
    '[allow] allow_from: not on a unix: accept (use unix_mode and unix_owner)' \
    '[proxy] accept_proxy: not on a unix: accept' \
    '[absmode] unix_mode: an abstract socket (unix:@NAME) has no file mode or owner'
do
	grep -qxF -- "$e" bad.lines || fail "no error '$e' in: $(cat bad.err)"
done
[ "$(grep -c . bad.err)" -eq 10 ] || fail "expected 10 errors: $(cat bad.err)"
[ ! -e "$x/b1.sock" ] || fail "-t made a socket file"
exit 0
