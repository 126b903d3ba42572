#!/bin/sh
# 41-socket-activation: started by systemd-socket-activate with two passed
# sockets (LISTEN_FDS=2), tlsgate serves the route whose accept address
# matches one of them on that socket (it does not bind it again, which
# would fail: the port is taken), logs from=systemd, closes the passed
# socket no route wants with a warning, and binds the other route itself.
. "$TESTLIB"

command -v systemd-socket-activate >/dev/null ||
    skip "systemd-socket-activate is not installed"
ports A B C Z
demo_routes "$A" "$B" "$C" >routes.ini
bg echo "$HELPERS/sink" -e 127.0.0.1 "$C"
wait_port "$C"

# The activator listens on A and Z and starts tlsgate at the first
# connection to either.
bg gw systemd-socket-activate -l "127.0.0.1:$A" -l "127.0.0.1:$Z" \
    "$TLSGATE" -c routes.ini
wait_port "$A"
bg cli "$HELPERS/halfclose" 127.0.0.1 "$A" activated
wait_log gw.err 'event=ready' 10
wait_log cli.out 'activated' 10
log_has gw.err "route=wrap .*event=listen addr=tcp://127.0.0.1:$A from=systemd"
log_has gw.err "route=unwrap .*event=listen addr=tls://127.0.0.1:$B\$"
log_has gw.err 'warn .*event=listen .*matches no route'
log_lacks gw.err 'error'
wait_log gw.err 'route=unwrap .*event=close reason=eof'
kill -TERM "$(pid_of gw)"
wait_exit "$(pid_of gw)" 15 || fail "tlsgate exited with status $?"
