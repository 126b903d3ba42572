/*
 * config_test.c: unit tests of config.c (and of what tls_ctx_new reports
 * while loading certificates, keys, CAs, PSK files and priorities).
 *
 * A table of routes.ini texts, each with the exact error lines
 * config_load() must give, in order; then a few files that must load, with
 * the values and defaults of the loaded struct config / struct route.
 *
 * In the texts and the expected lines, $P is the test's temporary
 * directory (the PKI made by scripts/mkcerts, and the fixtures below) and
 * $F the routes file; "$L<n>" in a text is a comment line of n bytes.
 *
 * Run from the repository root, or with SRCDIR set to it (test/run does).
 * Prints one line per failing case, then "config: N passed, N failed";
 * exits 1 on any failure.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "pp.h"

#define MAX_WANT	16

/* Needs a non-root user (root reads a mode 000 file). */
#define NOT_ROOT	0x1
/* Do not write the routes file: config_load must find it missing. */
#define NO_FILE		0x2

struct error_case {
	const char	*name;
	const char	*text;
	const char	*want[MAX_WANT];	/* none: the file must load */
	int		 flags;
};

/* Snippets; each ends with a newline. Their line counts matter. */
#define TCP_TCP		"accept = tcp://127.0.0.1:5001\n" \
			"connect = tcp://127.0.0.1:5003\n"		/* 2 */
#define WRAP		"accept = tcp://127.0.0.1:5001\n" \
			"connect = tls://127.0.0.1:5002\n" \
			"ca = $P/ca.pem\n"				/* 3 */
#define UNWRAP		"accept = tls://127.0.0.1:5002\n" \
			"cert = $P/server.pem\n" \
			"key = $P/server.key\n" \
			"connect = tcp://127.0.0.1:5003\n"		/* 4 */

static const struct error_case error_cases[] = {
	/* Keys. */
	{ "unknown key",
	  "[r]\n" TCP_TCP "foo = bar\n",
	  { "$F:4: [r] foo: unknown key" }, 0 },
	{ "unknown key in [gateway]",
	  "[gateway]\nfoo = 1\n[r]\n" TCP_TCP,
	  { "$F:2: [gateway] foo: unknown key" }, 0 },
	{ "keys are case-sensitive",
	  "[r]\nAccept = tcp://127.0.0.1:5001\nconnect = tcp://127.0.0.1:5003\n",
	  /* file order: config.c gives line 2 first */
	  { "$F:1: [r] accept: missing",
	    "$F:2: [r] Accept: unknown key" }, 0 },
	{ "server_name on an unwrap route",
	  "[r]\n" UNWRAP "server_name = localhost\n",
	  { "$F:6: [r] server_name: applies only to a tls:// connect" }, 0 },
	{ "psk_identity on an unwrap route",
	  "[r]\n" UNWRAP "psk_identity = alice\n",
	  { "$F:6: [r] psk_identity: applies only to a tls:// connect" }, 0 },
	{ "cert on a tcp->tcp route",
	  "[r]\n" TCP_TCP "cert = $P/server.pem\n",
	  { "$F:4: [r] cert: not allowed on a tcp->tcp route (no TLS side)" },
	  0 },
	{ "resumption on a tcp->tcp route",
	  "[r]\n" TCP_TCP "resumption = no\n",
	  { "$F:4: [r] resumption: not allowed on a tcp->tcp route "
	    "(no TLS side)" }, 0 },

	{ "a key in the wrong place hides nothing else of its section",
	  "[r]\n" UNWRAP "server_name = localhost\nca = $P/nope.pem\n"
	  "priority = NORMAL:+BOGUS\n",
	  { "$F:6: [r] server_name: applies only to a tls:// connect",
	    "$F:7: [r] ca: cannot read $P/nope.pem: No such file or "
	    "directory",
	    "$F:8: [r] priority: bad priority string at position 7: "
	    "\"+BOGUS\"" }, 0 },
	{ "misplaced keys and a missing key file, each reported",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/server.pem\n"
	  "key = $P/nope.key\nconnect = tcp://127.0.0.1:5003\n"
	  "psk_identity = alice\nserver_name = x\n",
	  { "$F:4: [r] key: cannot read $P/nope.key: No such file or "
	    "directory",
	    "$F:6: [r] psk_identity: applies only to a tls:// connect",
	    "$F:7: [r] server_name: applies only to a tls:// connect" }, 0 },
	{ "empty values",
	  "[gateway]\nlog_level =\n[r]\n" WRAP "server_name =\n"
	  "cert = ; a comment only\nkey = $P/client.key\n",
	  { "$F:2: [gateway] log_level: empty value",
	    "$F:7: [r] server_name: empty value",
	    "$F:8: [r] cert: empty value" }, 0 },
	{ "an empty address is not also missing",
	  "[r]\naccept =\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: empty value" }, 0 },

	/* Addresses. */
	{ "missing accept",
	  "[r]\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:1: [r] accept: missing" }, 0 },
	{ "missing connect",
	  "[r]\naccept = tcp://127.0.0.1:5001\n",
	  { "$F:1: [r] connect: missing" }, 0 },
	{ "empty route",
	  "; nothing in it\n[r]\n",
	  { "$F:2: [r] accept: missing",
	    "$F:2: [r] connect: missing" }, 0 },
	{ "missing port",
	  "[r]\naccept = tcp://127.0.0.1\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: missing :PORT: \"tcp://127.0.0.1\"" }, 0 },
	{ "missing port after [IPv6]",
	  "[r]\naccept = tcp://[::1]\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: missing :PORT: \"tcp://[::1]\"" }, 0 },
	{ "port not a number",
	  "[r]\naccept = tcp://127.0.0.1:http\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: bad port (1-65535): "
	    "\"tcp://127.0.0.1:http\"" }, 0 },
	{ "port 0 and port 70000",
	  "[r]\naccept = tcp://127.0.0.1:0\nconnect = tcp://127.0.0.1:70000\n",
	  { "$F:2: [r] accept: bad port (1-65535): \"tcp://127.0.0.1:0\"",
	    "$F:3: [r] connect: bad port (1-65535): "
	    "\"tcp://127.0.0.1:70000\"" }, 0 },
	{ "IPv6 address without brackets",
	  "[r]\naccept = tcp://::1:5001\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: bad host name (IPv6 addresses go in "
	    "brackets): \"tcp://::1:5001\"" }, 0 },
	{ "IPv6 address without ']'",
	  "[r]\naccept = tcp://[::1:5001\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: IPv6 address without ']': "
	    "\"tcp://[::1:5001\"" }, 0 },
	{ "bad IPv6 address in brackets",
	  "[r]\naccept = tcp://[::g]:5001\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: bad IPv6 address: \"tcp://[::g]:5001\"" }, 0 },
	{ "missing host",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tcp://:5003\n",
	  { "$F:3: [r] connect: missing host: \"tcp://:5003\"" }, 0 },
	{ "accept on a DNS name",
	  "[r]\naccept = tcp://localhost:5001\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: listen on an IP address, not \"localhost\"" },
	  0 },
	{ "bad scheme udp://",
	  "[r]\naccept = udp://127.0.0.1:5001\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: bad scheme: use tcp://, tls:// or unix:/PATH: "
	    "\"udp://127.0.0.1:5001\"" }, 0 },
	{ "no scheme",
	  "[r]\naccept = 127.0.0.1:5001\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: expected tcp://HOST:PORT, tls://HOST:PORT or unix:/PATH: "
	    "\"127.0.0.1:5001\"" }, 0 },
	{ "tls->tls",
	  "[r]\naccept = tls://127.0.0.1:5002\nconnect = tls://127.0.0.1:5004\n",
	  { "$F:3: [r] connect: tls->tls routes are not supported" }, 0 },
	{ "two routes on one listen address",
	  "[a]\n" TCP_TCP "[b]\naccept = tcp://127.0.0.1:5001\n"
	  "connect = tcp://127.0.0.1:5004\n",
	  { "$F:5: [b] accept: 127.0.0.1:5001 is already the accept address "
	    "of [a]" }, 0 },
	{ "two routes on one listen address, port spelt 05001",
	  "[a]\n" TCP_TCP "[b]\naccept = tls://127.0.0.1:05001\n"
	  "cert = $P/server.pem\nkey = $P/server.key\n"
	  "connect = tcp://127.0.0.1:5004\n",
	  { "$F:5: [b] accept: 127.0.0.1:5001 is already the accept address "
	    "of [a]" }, 0 },
	{ "two routes on one IPv6 listen address",
	  "[a]\naccept = tcp://[::1]:5001\nconnect = tcp://127.0.0.1:5003\n"
	  "[b]\naccept = tcp://[::1]:5001\nconnect = tcp://127.0.0.1:5004\n",
	  { "$F:5: [b] accept: [::1]:5001 is already the accept address "
	    "of [a]" }, 0 },
	{ "two routes on one IPv6 listen address, spelt differently",
	  "[a]\naccept = tcp://[::1]:5001\nconnect = tcp://127.0.0.1:5003\n"
	  "[b]\naccept = tcp://[0:0::1]:5001\nconnect = tcp://127.0.0.1:5004\n",
	  { "$F:5: [b] accept: [::1]:5001 is already the accept address "
	    "of [a]" }, 0 },

	/* Sections, syntax, lines. */
	{ "duplicate section",
	  "[a]\n" TCP_TCP "[a]\naccept = tcp://127.0.0.1:5005\n"
	  "connect = tcp://127.0.0.1:5006\n",
	  { "$F:4: [a] section given twice (first at line 1)" }, 0 },
	{ "[gateway] three times",
	  "[gateway]\n[gateway]\n[gateway]\n[r]\n" TCP_TCP,
	  { "$F:2: [gateway] section given twice (first at line 1)",
	    "$F:3: [gateway] section given twice (first at line 1)" }, 0 },
	{ "duplicate key",
	  "[a]\naccept = tcp://127.0.0.1:5001\naccept = tcp://127.0.0.1:5002\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [a] accept: given twice (first at line 2)" }, 0 },
	{ "duplicate key in [gateway]",
	  "[gateway]\nlog_level = info\nlog_level = debug\n[r]\n" TCP_TCP,
	  { "$F:3: [gateway] log_level: given twice (first at line 2)" }, 0 },
	{ "key outside any section",
	  "log_level = info\n[r]\n" TCP_TCP,
	  { "$F:1: log_level: key outside any section" }, 0 },
	{ "syntax error",
	  "[r]\n" TCP_TCP "this is not a key\n",
	  { "$F:4: syntax error: expected 'key = value' or '[section]'" },
	  0 },
	{ "key without a name",
	  "[r]\n" TCP_TCP "= 5\n",
	  { "$F:4: syntax error: expected 'key = value' or '[section]'" },
	  0 },
	{ "section header without ']'",
	  "[r\n" TCP_TCP,
	  { "$F:1: syntax error: section header without ']'" }, 0 },
	{ "empty section name",
	  "[]\n" TCP_TCP,
	  { "$F:1: bad section name" }, 0 },
	{ "route name with a space",
	  "[my route]\n" TCP_TCP,
	  { "$F:1: [my route] bad section name: use letters, digits, '.', "
	    "'_' and '-'" }, 0 },
	{ "line too long",
	  "[r]\n" WRAP "$L4095\nverify = bogus\n",
	  { "$F:5: line too long (at most 4094 bytes)",
	    "$F:6: [r] verify: must be require, optional, pin or none, "
	    "not \"bogus\"" }, 0 },
	{ "line far too long",
	  "[r]\n" WRAP "$L9000\nverify = bogus\n",
	  { "$F:5: line too long (at most 4094 bytes)",
	    "$F:6: [r] verify: must be require, optional, pin or none, "
	    "not \"bogus\"" }, 0 },
	{ "empty file",
	  "",
	  { "$F: no routes" }, 0 },
	{ "only [gateway]",
	  "; comment\n[gateway]\nlog_level = debug\n",
	  { "$F: no routes" }, 0 },
	{ "no such routes file",
	  "",
	  { "$F: cannot read: No such file or directory" }, NO_FILE },

	/* Files. */
	{ "missing cert file",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/nope.pem\n"
	  "key = $P/server.key\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] cert: cannot read $P/nope.pem: No such file or "
	    "directory" }, 0 },
	{ "missing key file",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/server.pem\n"
	  "key = $P/nope.key\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:4: [r] key: cannot read $P/nope.key: No such file or "
	    "directory" }, 0 },
	{ "missing ca file",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tls://127.0.0.1:5002\n"
	  "ca = $P/nope.pem\n",
	  { "$F:4: [r] ca: cannot read $P/nope.pem: No such file or "
	    "directory" }, 0 },
	{ "missing psk_file",
	  "[r]\naccept = tls://127.0.0.1:5002\npsk_file = $P/nope.psk\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] psk_file: cannot read $P/nope.psk: No such file or "
	    "directory" }, 0 },
	{ "unreadable ca file (mode 000)",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tls://127.0.0.1:5002\n"
	  "ca = $P/noread.pem\n",
	  { "$F:4: [r] ca: cannot read $P/noread.pem: Permission denied" },
	  NOT_ROOT },
	{ "cert is a directory",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/adir\n"
	  "key = $P/server.key\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] cert: cannot read $P/adir: Is a directory" }, 0 },
	{ "key is a directory",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/server.pem\n"
	  "key = $P/adir\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:4: [r] key: cannot read $P/adir: Is a directory" }, 0 },
	{ "ca is a directory",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tls://127.0.0.1:5002\n"
	  "ca = $P/adir\n",
	  { "$F:4: [r] ca: cannot read $P/adir: Is a directory" }, 0 },
	{ "cert file without a certificate",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/garbage.pem\n"
	  "key = $P/server.key\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] cert: no PEM certificate in $P/garbage.pem" }, 0 },
	{ "ca file without a certificate",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tls://127.0.0.1:5002\n"
	  "ca = $P/empty.pem\n",
	  { "$F:4: [r] ca: no PEM certificate in $P/empty.pem" }, 0 },
	{ "key does not match the certificate",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/server.pem\n"
	  "key = $P/client.key\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:4: [r] key: $P/client.key does not match the certificate "
	    "in $P/server.pem" }, 0 },
	{ "bad priority string",
	  "[r]\n" WRAP "priority = NORMAL:+BOGUS\n",
	  { "$F:5: [r] priority: bad priority string at position 7: "
	    "\"+BOGUS\"" }, 0 },
	{ "priority string that enables nothing",
	  "[r]\n" WRAP "priority = NORMAL:-VERS-ALL\n",
	  { "$F:5: [r] priority: No or insufficient priorities were set." },
	  0 },

	/* Numbers. */
	{ "not a number",
	  "[r]\n" TCP_TCP "connect_timeout = ten\n",
	  { "$F:4: [r] connect_timeout: not a number: \"ten\"" }, 0 },
	{ "number with a unit",
	  "[r]\n" TCP_TCP "idle_timeout = 5s\n",
	  { "$F:4: [r] idle_timeout: not a number: \"5s\"" }, 0 },
	{ "number out of range",
	  "[r]\n" TCP_TCP "handshake_timeout = 3601\nmax_sessions = 0\n",
	  { "$F:4: [r] handshake_timeout: out of range (1 to 3600)",
	    "$F:5: [r] max_sessions: out of range (1 to 1000000)" }, 0 },
	{ "negative number",
	  "[r]\n" TCP_TCP "connect_timeout = -5\n",
	  { "$F:4: [r] connect_timeout: out of range (1 to 3600)" }, 0 },
	{ "number beyond long long",
	  "[r]\n" TCP_TCP "idle_timeout = 99999999999999999999\n",
	  { "$F:4: [r] idle_timeout: out of range (0 to 31536000)" }, 0 },
	{ "bad numbers in [gateway]",
	  "[gateway]\nmax_sessions = 1e3\nshutdown_grace = -1\n"
	  "connect_timeout = 0\n[r]\n" TCP_TCP,
	  { "$F:2: [gateway] max_sessions: not a number: \"1e3\"",
	    "$F:3: [gateway] shutdown_grace: out of range (0 to 3600)",
	    "$F:4: [gateway] connect_timeout: out of range (1 to 3600)" }, 0 },

	/* Enumerations. */
	{ "bad verify",
	  "[r]\n" WRAP "verify = maybe\n",
	  { "$F:5: [r] verify: must be require, optional, pin or none, "
	    "not \"maybe\"" }, 0 },
	{ "verify require without ca on accept",
	  "[r]\n" UNWRAP "verify = require\n",
	  { "$F:6: [r] verify: require needs ca" }, 0 },
	{ "bad log_level",
	  "[gateway]\nlog_level = loud\n[r]\n" TCP_TCP,
	  { "$F:2: [gateway] log_level: must be error, warn, info or debug, "
	    "not \"loud\"" }, 0 },
	{ "bad resumption",
	  "[r]\n" WRAP "resumption = maybe\n",
	  { "$F:5: [r] resumption: must be yes or no, not \"maybe\"" }, 0 },
	{ "allow_peers without verification",
	  "[r]\n" UNWRAP "allow_peers = client\n",
	  { "$F:6: [r] allow_peers: needs verification (ca, and verify not "
	    "none)" }, 0 },
	{ "allow_peers empty list",
	  "[r]\n" WRAP "allow_peers = , ,\n",
	  { "$F:5: [r] allow_peers: empty list" }, 0 },

	/* Keys that need other keys. */
	{ "cert without key",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/server.pem\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:1: [r] key: missing: cert and key go together" }, 0 },
	{ "key without cert",
	  "[r]\naccept = tls://127.0.0.1:5002\nkey = $P/server.key\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:1: [r] cert: missing: cert and key go together" }, 0 },
	{ "tls accept without cert",
	  "[r]\naccept = tls://127.0.0.1:5002\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:1: [r] cert: missing: a tls:// accept needs cert and key "
	    "(or psk_file)" }, 0 },
	{ "psk_identity without psk_file",
	  "[r]\n" WRAP "psk_identity = alice\n",
	  { "$F:5: [r] psk_identity: needs psk_file" }, 0 },
	{ "psk_identity not in psk_file",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tls://127.0.0.1:5002\n"
	  "psk_file = $P/good.psk\npsk_identity = carol\n",
	  { "$F:5: [r] psk_identity: no identity \"carol\" in $P/good.psk" },
	  0 },
	{ "psk_file with bad lines",
	  "[r]\naccept = tls://127.0.0.1:5002\npsk_file = $P/bad.psk\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] psk_file: $P/bad.psk:2: expected identity:hexkey",
	    "$F:3: [r] psk_file: $P/bad.psk:3: key is not hex",
	    "$F:3: [r] psk_file: $P/bad.psk:4: key must be 2 to 128 hex "
	    "digits, an even count",
	    "$F:3: [r] psk_file: $P/bad.psk:5: empty identity" }, 0 },
	{ "psk_file with a line longer than its buffer",
	  "[r]\naccept = tls://127.0.0.1:5002\npsk_file = $P/long.psk\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] psk_file: $P/long.psk:1: line too long" }, 0 },
	{ "psk_file without a key",
	  "[r]\naccept = tls://127.0.0.1:5002\npsk_file = $P/empty.pem\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] psk_file: no key in $P/empty.pem" }, 0 },

	/* Several errors: all of them, in file order. */
	{ "several routes, one error each",
	  "[a]\n" TCP_TCP "foo = 1\n"
	  "[b]\naccept = tcp://127.0.0.1:5012\nconnect = tcp://127.0.0.1:0\n"
	  "[c]\n" UNWRAP "verify = maybe\n",
	  { "$F:4: [a] foo: unknown key",
	    "$F:7: [b] connect: bad port (1-65535): \"tcp://127.0.0.1:0\"",
	    "$F:13: [c] verify: must be require, optional, pin or none, "
	    "not \"maybe\"" }, 0 },
	{ "[gateway] errors in file order",
	  "[gateway]\nshutdown_grace = x\nmax_sessions = 0\n[r]\n" TCP_TCP,
	  /* config.c gives line 3 first (the order of its key table) */
	  { "$F:2: [gateway] shutdown_grace: not a number: \"x\"",
	    "$F:3: [gateway] max_sessions: out of range (1 to 1000000)" }, 0 },
	{ "errors of a route in file order",
	  "[r]\nconnect_timeout = 0\naccept = tcp://127.0.0.1:5001\n"
	  "bogus = 1\nconnect = tcp://127.0.0.1:5003\nidle_timeout = x\n",
	  /* config.c gives the unknown key (line 4) first */
	  { "$F:2: [r] connect_timeout: out of range (1 to 3600)",
	    "$F:4: [r] bogus: unknown key",
	    "$F:6: [r] idle_timeout: not a number: \"x\"" }, 0 },
	{ "a bad address does not hide a bad number",
	  "[r]\naccept = tcp://127.0.0.1:0\nconnect = tcp://127.0.0.1:5003\n"
	  "connect_timeout = 0\n",
	  { "$F:2: [r] accept: bad port (1-65535): \"tcp://127.0.0.1:0\"",
	    "$F:4: [r] connect_timeout: out of range (1 to 3600)" }, 0 },
	{ "a bad verify does not hide a missing ca",
	  "[r]\naccept = tcp://127.0.0.1:5001\nconnect = tls://127.0.0.1:5002\n"
	  "verify = maybe\nca = $P/nope.pem\n",
	  { "$F:4: [r] verify: must be require, optional, pin or none, "
	    "not \"maybe\"",
	    "$F:5: [r] ca: cannot read $P/nope.pem: No such file or "
	    "directory" }, 0 },
	{ "a missing cert does not hide a missing ca",
	  "[r]\naccept = tls://127.0.0.1:5002\ncert = $P/nope.pem\n"
	  "key = $P/server.key\nca = $P/gone.pem\n"
	  "connect = tcp://127.0.0.1:5003\n",
	  { "$F:3: [r] cert: cannot read $P/nope.pem: No such file or "
	    "directory",
	    "$F:5: [r] ca: cannot read $P/gone.pem: No such file or "
	    "directory" }, 0 },
	{ "a failed route does not hide a shared listen address",
	  "[a]\naccept = tcp://127.0.0.1:5001\nconnect = tcp://127.0.0.1:0\n"
	  "[b]\n" TCP_TCP,
	  { "$F:3: [a] connect: bad port (1-65535): \"tcp://127.0.0.1:0\"",
	    "$F:5: [b] accept: 127.0.0.1:5001 is already the accept address "
	    "of [a]" }, 0 },
	{ "many errors of many kinds",
	  "; every error on its own line\n"			/* 1 */
	  "[gateway]\n"						/* 2 */
	  "shutdown_grace = x\n"				/* 3 */
	  "max_sessions = 0\n"					/* 4 */
	  "[a]\n"						/* 5 */
	  "connect_timeout = 0\n"				/* 6 */
	  "accept = tcp://127.0.0.1:0\n"			/* 7 */
	  "bogus = 1\n"						/* 8 */
	  "connect = tcp://127.0.0.1:5003\n"			/* 9 */
	  "this line is not ini\n"				/* 10 */
	  "[b]\n"						/* 11 */
	  "accept = tcp://127.0.0.1:5001\n"			/* 12 */
	  "connect = tls://127.0.0.1:5002\n"			/* 13 */
	  "verify = maybe\n"					/* 14 */
	  "ca = $P/nope.pem\n"					/* 15 */
	  "[b]\n"						/* 16 */
	  "[c]\n"						/* 17 */
	  "accept = tcp://127.0.0.1:5001\n"			/* 18 */
	  "connect = tcp://127.0.0.1:5003\n"			/* 19 */
	  "idle_timeout = -1\n"					/* 20 */
	  "$L5000\n"						/* 21 */
	  "[d]\n"						/* 22 */
	  "accept = tls://127.0.0.1:5005\n"			/* 23 */
	  "connect = tcp://127.0.0.1:5003\n",			/* 24 */
	  { "$F:3: [gateway] shutdown_grace: not a number: \"x\"",
	    "$F:4: [gateway] max_sessions: out of range (1 to 1000000)",
	    "$F:6: [a] connect_timeout: out of range (1 to 3600)",
	    "$F:7: [a] accept: bad port (1-65535): \"tcp://127.0.0.1:0\"",
	    "$F:8: [a] bogus: unknown key",
	    "$F:10: syntax error: expected 'key = value' or '[section]'",
	    "$F:14: [b] verify: must be require, optional, pin or none, "
	    "not \"maybe\"",
	    "$F:15: [b] ca: cannot read $P/nope.pem: No such file or "
	    "directory",
	    "$F:16: [b] section given twice (first at line 11)",
	    "$F:18: [c] accept: 127.0.0.1:5001 is already the accept address "
	    "of [b]",
	    "$F:20: [c] idle_timeout: out of range (0 to 31536000)",
	    "$F:21: line too long (at most 4094 bytes)",
	    "$F:22: [d] cert: missing: a tls:// accept needs cert and key "
	    "(or psk_file)" }, 0 },

	/* Revocation, pins, PROXY protocol, allow_from, unix sockets. */
	{ "crl without chain verification",
	  "[r]\n" UNWRAP "crl = $P/ca.pem\n",
	  { "$F:6: [r] crl: needs chain verification (ca, and verify require "
	    "or optional)",
	    "$F:6: [r] crl: no PEM CRL in $P/ca.pem" }, 0 },
	{ "crl_expired: bad value, and without crl",
	  "[r]\n" WRAP "crl_expired = sometimes\n",
	  { "$F:5: [r] crl_expired: must be warn or refuse, not \"sometimes\"",
	    "$F:5: [r] crl_expired: needs crl" }, 0 },
	{ "crl that holds no CRL",
	  "[r]\n" WRAP "crl = $P/ca.pem\n",
	  { "$F:5: [r] crl: no PEM CRL in $P/ca.pem" }, 0 },
	{ "verify = pin without pins, and with ca",
	  "[r]\n" WRAP "verify = pin\n",
	  { "$F:4: [r] ca: not used with verify = pin (the key is pinned, the "
	    "chain not checked)",
	    "$F:5: [r] verify: pin needs pin_sha256" }, 0 },
	{ "pin_sha256 not base64 of 32 bytes",
	  "[r]\n" WRAP "pin_sha256 = abc, "
	  "JspJyH9Cl8HaqzUYJX85asvnJXxo1p/aXz8fZg2krFw=\n",
	  { "$F:5: [r] pin_sha256: not the base64 of a SHA-256 digest: "
	    "\"abc\"" }, 0 },
	{ "pin_sha256 with verify = none",
	  "[r]\n" WRAP "verify = none\n"
	  "pin_sha256 = JspJyH9Cl8HaqzUYJX85asvnJXxo1p/aXz8fZg2krFw=\n",
	  { "$F:6: [r] pin_sha256: needs verification (verify = require, "
	    "optional or pin)" }, 0 },
	{ "PROXY keys: bad values",
	  "[r]\n" TCP_TCP "send_proxy = v3\naccept_proxy = maybe\n"
	  "proxy_from = 10.0.0.0/8\n",
	  { "$F:4: [r] send_proxy: must be v1, v2 or no, not \"v3\"",
	    "$F:5: [r] accept_proxy: must be yes or no, not \"maybe\"",
	    "$F:6: [r] proxy_from: needs accept_proxy = yes" }, 0 },
	{ "allow_from: bad blocks",
	  "[r]\n" TCP_TCP "allow_from = 10.0.0.0/33\n"
	  "[s]\naccept = tcp://127.0.0.1:5004\nconnect = tcp://127.0.0.1:5003\n"
	  "allow_from = 10.0.0.0/8, example.com\n",
	  { "$F:4: [r] allow_from: bad prefix length in \"10.0.0.0/33\" "
	    "(0-32)",
	    "$F:8: [s] allow_from: not an IP address or block: "
	    "\"example.com\"" }, 0 },
	{ "unix: addresses",
	  "[r]\naccept = unix:run/x.sock\nconnect = tcp://127.0.0.1:5003\n"
	  "[s]\naccept = unix:@\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:2: [r] accept: expected unix:/PATH or unix:@NAME: "
	    "\"unix:run/x.sock\"",
	    "$F:5: [s] accept: empty unix socket name: \"unix:@\"" }, 0 },
	{ "unix keys where they do not apply",
	  "[r]\n" TCP_TCP "unix_mode = 0660\n"
	  "[s]\naccept = unix:/tmp/s.sock\nconnect = tcp://127.0.0.1:5003\n"
	  "unix_mode = 0999\nallow_from = 127.0.0.1\naccept_proxy = yes\n"
	  "[t]\naccept = unix:@t\nconnect = tcp://127.0.0.1:5003\n"
	  "unix_owner = root\n",
	  { "$F:4: [r] unix_mode: applies only to a unix: accept",
	    "$F:8: [s] unix_mode: an octal mode from 0 to 0777, not \"0999\"",
	    "$F:9: [s] allow_from: not on a unix: accept (use unix_mode and "
	    "unix_owner)",
	    "$F:10: [s] accept_proxy: not on a unix: accept",
	    "$F:14: [t] unix_owner: an abstract socket (unix:@NAME) has no "
	    "file mode or owner" }, 0 },
	{ "reuse_port",
	  "[r]\n" TCP_TCP "reuse_port = maybe\n"
	  "[s]\naccept = unix:/tmp/s.sock\nconnect = tcp://127.0.0.1:5003\n"
	  "reuse_port = yes\n",
	  { "$F:4: [r] reuse_port: must be yes or no, not \"maybe\"",
	    "$F:8: [s] reuse_port: not on a unix: accept" }, 0 },
	{ "ticket_key_file that cannot be read",
	  "[gateway]\nticket_key_file = $P/nope.key\n[r]\n" TCP_TCP,
	  { "$F:2: [gateway] ticket_key_file: $P/nope.key: No such file or "
	    "directory" }, 0 },
	{ "two routes on one unix path",
	  "[r]\naccept = unix:/tmp/s.sock\nconnect = tcp://127.0.0.1:5003\n"
	  "[s]\naccept = unix:/tmp/s.sock\nconnect = tcp://127.0.0.1:5003\n",
	  { "$F:5: [s] accept: unix:/tmp/s.sock is already the accept address "
	    "of [r]" }, 0 },

	/* Files that must load. */
	{ "the new keys, loaded",
	  "[r]\naccept = unix:/tmp/r.sock\nconnect = tls://127.0.0.1:5002\n"
	  "ca = $P/ca.pem\nsend_proxy = v2\nunix_mode = 0660\n"
	  "pin_sha256 = JspJyH9Cl8HaqzUYJX85asvnJXxo1p/aXz8fZg2krFw=\n"
	  "[s]\n" UNWRAP "accept_proxy = yes\nproxy_from = 127.0.0.1\n"
	  "allow_from = 192.0.2.0/24, 2001:db8::/32\nsend_proxy = v1\n",
	  { NULL }, 0 },
	{ "CRLF line ends",
	  "[r]\r\naccept = tcp://127.0.0.1:5001\r\n"
	  "connect = tcp://127.0.0.1:5003\r\n",
	  { NULL }, 0 },
	{ "indented keys and headers, ':' separator",
	  "  [r]\n\taccept: tcp://127.0.0.1:5001\n  connect = "
	  "tcp://127.0.0.1:5003\n",
	  { NULL }, 0 },
	{ "line of the longest length",
	  "$L4094\n[r]\n" TCP_TCP,
	  { NULL }, 0 },
	{ "UTF-8 byte order mark",
	  "\xef\xbb\xbf[r]\n" TCP_TCP,
	  { NULL }, 0 },
};

static char	 dir[64];		/* $P */
static char	 file[128];		/* $F */
static int	 passed, failed, verbose;

/* tmpl with $F, $P and $L<n> expanded; never NULL. */
static char *
expand(const char *tmpl, const char *f)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	const char *s;
	long n;
	char *ep;

	if ((out = open_memstream(&buf, &len)) == NULL) {
		perror("open_memstream");
		exit(1);
	}
	for (s = tmpl; *s != '\0'; s++) {
		if (s[0] == '$' && s[1] == 'F') {
			fputs(f, out);
			s++;
		} else if (s[0] == '$' && s[1] == 'P') {
			fputs(dir, out);
			s++;
		} else if (s[0] == '$' && s[1] == 'L') {
			n = strtol(s + 2, &ep, 10);
			fputc(';', out);
			for (; n > 1; n--)
				fputc('x', out);
			s = ep - 1;
		} else
			fputc(*s, out);
	}
	if (fclose(out) == EOF) {
		perror("open_memstream");
		exit(1);
	}
	return buf;
}

/* s with path and dir folded back into $F and $P, for messages; static. */
static const char *
fold(const char *s, const char *path)
{
	static char buf[4][2048];
	static int k;
	size_t n = 0, fl = strlen(path), dl = strlen(dir);
	char *b;

	k = (k + 1) % 4;
	b = buf[k];
	while (*s != '\0' && n + 3 < sizeof(buf[k])) {
		if (fl > 0 && strncmp(s, path, fl) == 0) {
			memcpy(b + n, "$F", 2);
			n += 2;
			s += fl;
		} else if (dl > 0 && strncmp(s, dir, dl) == 0) {
			memcpy(b + n, "$P", 2);
			n += 2;
			s += dl;
		} else
			b[n++] = *s++;
	}
	b[n] = '\0';
	return b;
}

static void
write_file(const char *path, const char *text)
{
	char *s = expand(text, path);
	FILE *fp;

	if ((fp = fopen(path, "w")) == NULL || fputs(s, fp) == EOF ||
	    fclose(fp) == EOF) {
		fprintf(stderr, "config_test: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(s);
}

static void
pass(void)
{
	passed++;
}

static void
fail(const char *name, const char *why)
{
	printf("FAIL %s: %s\n", name, why);
	failed++;
}

static void
dump(const char *what, const char *const *lines, size_t n, const char *path)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("    %s %s\n", what, fold(lines[i], path));
}

static void
run_error_case(const struct error_case *t)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	char *want[MAX_WANT];
	char why[2048];
	size_t i, nwant = 0;
	const char *path = file;

	if ((t->flags & NOT_ROOT) && geteuid() == 0) {
		printf("skip %s: root can read a mode 000 file\n", t->name);
		return;
	}
	if (t->flags & NO_FILE)
		path = "no-such-dir/routes.ini";
	else
		write_file(path, t->text);
	while (nwant < MAX_WANT && t->want[nwant] != NULL) {
		want[nwant] = expand(t->want[nwant], path);
		nwant++;
	}
	c = config_load(path, &errs);
	why[0] = '\0';
	for (i = 0; i < nwant || i < errs.n; i++) {
		if (i < nwant && i < errs.n && strcmp(want[i], errs.lines[i]) ==
		    0)
			continue;
		snprintf(why, sizeof(why), "error %zu of %zu (got %zu): "
		    "expected \"%s\", got \"%s\"", i + 1, nwant, errs.n,
		    i < nwant ? fold(want[i], path) : "(none)",
		    i < errs.n ? fold(errs.lines[i], path) : "(none)");
		break;
	}
	if (why[0] == '\0' && nwant == 0 && c == NULL)
		snprintf(why, sizeof(why), "no error, yet no configuration");
	if (why[0] == '\0' && nwant > 0 && c != NULL)
		snprintf(why, sizeof(why), "a configuration with errors");
	if (why[0] == '\0')
		pass();
	else {
		fail(t->name, why);
		if (verbose) {
			dump("want", (const char *const *)want, nwant, path);
			dump("got ", (const char *const *)errs.lines, errs.n,
			    path);
		}
	}
	for (i = 0; i < nwant; i++)
		free(want[i]);
	config_free(c);
	config_errors_clear(&errs);
}

/* The positive cases: the first mismatch of a case is its failure. */
struct check {
	const char	*name;
	char		 why[1024];
};

static void
check_int(struct check *ck, const char *what, long long got, long long want)
{
	if (ck->why[0] == '\0' && got != want)
		snprintf(ck->why, sizeof(ck->why), "%s: expected %lld, got %lld",
		    what, want, got);
}

static void
check_str(struct check *ck, const char *what, const char *got,
    const char *want)
{
	if (ck->why[0] != '\0')
		return;
	if (got == NULL && want == NULL)
		return;
	if (got == NULL || want == NULL || strcmp(got, want) != 0)
		snprintf(ck->why, sizeof(ck->why), "%s: expected %s%s%s, "
		    "got %s%s%s", what,
		    want ? "\"" : "", want ? want : "NULL", want ? "\"" : "",
		    got ? "\"" : "", got ? got : "NULL", got ? "\"" : "");
}

/* The name of this run's PKI file, for comparisons with route fields. */
static const char *
pki(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static struct config *
load(struct check *ck, const char *text)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;

	write_file(file, text);
	c = config_load(file, &errs);
	if (c == NULL)
		snprintf(ck->why, sizeof(ck->why), "does not load: %s%s",
		    errs.n > 0 ? fold(errs.lines[0], file) : "(no error)",
		    errs.n > 1 ? " ..." : "");
	else if (errs.n > 0)
		snprintf(ck->why, sizeof(ck->why), "loads with errors: %s",
		    fold(errs.lines[0], file));
	config_errors_clear(&errs);
	return c;
}

static const struct route *
route(struct check *ck, const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; c != NULL && i < c->nroutes; i++)
		if (strcmp(c->routes[i]->name, name) == 0)
			return c->routes[i];
	if (ck->why[0] == '\0')
		snprintf(ck->why, sizeof(ck->why), "no route [%s]", name);
	return NULL;
}

static void
finish(struct check *ck, struct config *c)
{
	config_free(c);
	if (ck->why[0] == '\0')
		pass();
	else
		fail(ck->name, ck->why);
}

/* The demo of SPEC.md, with its comments, on this run's PKI. */
static void
test_demo(void)
{
	struct check ck = { "demo routes", "" };
	struct config *c;
	const struct route *w, *u;

	c = load(&ck,
	    "[gateway]                 ; optional, global settings\n"	/* 1 */
	    "log_level = info          ; error | warn | info | debug\n"
	    "max_sessions = 10000      ; live sessions in all\n"
	    "shutdown_grace = 10       ; seconds\n"
	    "\n"							/* 5 */
	    "[wrap]                    ; any other section is a route\n"
	    "accept  = tcp://127.0.0.1:5001\n"
	    "connect = tls://127.0.0.1:5002\n"
	    "ca      = $P/ca.pem\n"
	    "cert    = $P/client.pem ; client certificate (mutual TLS)\n"
	    "key     = $P/client.key\n"
	    "server_name = localhost\n"
	    "\n"
	    "[unwrap]\n"						/* 14 */
	    "accept  = tls://127.0.0.1:5002\n"
	    "cert    = $P/server.pem\n"
	    "key     = $P/server.key\n"
	    "ca      = $P/ca.pem     ; clients must present a certificate\n"
	    "connect = tcp://127.0.0.1:5003\n");
	if (c == NULL)
		goto out;
	check_int(&ck, "nroutes", (long long)c->nroutes, 2);
	check_str(&ck, "path", c->path, file);
	check_int(&ck, "log_level", c->log_level, LOG_INFO);
	check_int(&ck, "log_level_set", c->log_level_set, 1);
	check_int(&ck, "max_sessions", c->max_sessions, 10000);
	check_int(&ck, "shutdown_grace", c->shutdown_grace, 10);
	if ((w = route(&ck, c, "wrap")) != NULL) {
		check_int(&ck, "wrap refs", (long long)atomic_load(&w->refs), 1);
		check_int(&ck, "wrap line", w->line, 6);
		check_int(&ck, "wrap accept line", w->key_line[K_ACCEPT], 7);
		check_int(&ck, "wrap server_name line",
		    w->key_line[K_SERVER_NAME], 12);
		check_int(&ck, "wrap verify line", w->key_line[K_VERIFY], 0);
		check_int(&ck, "wrap accept scheme", w->accept.scheme,
		    SCHEME_TCP);
		check_str(&ck, "wrap accept host", w->accept.host, "127.0.0.1");
		check_str(&ck, "wrap accept port", w->accept.port, "5001");
		check_str(&ck, "wrap accept text", w->accept.text,
		    "tcp://127.0.0.1:5001");
		check_int(&ck, "wrap connect scheme", w->connect.scheme,
		    SCHEME_TLS);
		check_str(&ck, "wrap connect host", w->connect.host,
		    "127.0.0.1");
		check_str(&ck, "wrap connect port", w->connect.port, "5002");
		check_str(&ck, "wrap ca", w->ca, pki("ca.pem"));
		check_str(&ck, "wrap cert", w->cert, pki("client.pem"));
		check_str(&ck, "wrap key", w->key, pki("client.key"));
		check_str(&ck, "wrap server_name", w->server_name, "localhost");
		check_int(&ck, "wrap verify", w->verify, VERIFY_REQUIRE);
		check_int(&ck, "wrap resumption", w->resumption, 1);
		check_int(&ck, "wrap allow_peers", w->allow_peers != NULL, 0);
		check_str(&ck, "wrap priority", w->priority, NULL);
		check_str(&ck, "wrap psk_file", w->psk_file, NULL);
		check_int(&ck, "wrap tls", w->tls != NULL, 1);
	}
	if ((u = route(&ck, c, "unwrap")) != NULL) {
		check_int(&ck, "unwrap line", u->line, 14);
		check_int(&ck, "unwrap accept scheme", u->accept.scheme,
		    SCHEME_TLS);
		check_str(&ck, "unwrap accept port", u->accept.port, "5002");
		check_int(&ck, "unwrap connect scheme", u->connect.scheme,
		    SCHEME_TCP);
		check_str(&ck, "unwrap connect port", u->connect.port, "5003");
		check_str(&ck, "unwrap ca", u->ca, pki("ca.pem"));
		check_str(&ck, "unwrap cert", u->cert, pki("server.pem"));
		check_int(&ck, "unwrap verify (ca set)", u->verify,
		    VERIFY_REQUIRE);
		check_str(&ck, "unwrap server_name", u->server_name, NULL);
		check_int(&ck, "unwrap resumption", u->resumption, 1);
		check_int(&ck, "unwrap tls", u->tls != NULL, 1);
	}
out:
	finish(&ck, c);
}

/* Nothing but the addresses (and what a tls accept needs): defaults. */
static void
test_defaults(void)
{
	struct check ck = { "defaults", "" };
	struct config *c;
	const struct route *r;

	c = load(&ck,
	    "[wrap]\n"
	    "accept = tcp://127.0.0.1:5001\n"
	    "connect = tls://example.com:443\n"
	    "[wrap-ip]\n"
	    "accept = tcp://127.0.0.1:5011\n"
	    "connect = tls://[::1]:5002\n"
	    "[unwrap]\n"
	    "accept = tls://0.0.0.0:5002\n"
	    "cert = $P/server.pem\n"
	    "key = $P/server.key\n"
	    "connect = tcp://backend.example:80\n"
	    "[forward]\n"
	    "accept = tcp://[::1]:5003\n"
	    "connect = tcp://127.0.0.1:5004\n");
	if (c == NULL)
		goto out;
	check_int(&ck, "nroutes", (long long)c->nroutes, 4);
	check_int(&ck, "log_level", c->log_level, LOG_INFO);
	check_int(&ck, "log_level_set", c->log_level_set, 0);
	check_int(&ck, "max_sessions", c->max_sessions, 10000);
	check_int(&ck, "shutdown_grace", c->shutdown_grace, 10);
	if ((r = route(&ck, c, "wrap")) != NULL) {
		check_str(&ck, "wrap connect host (DNS)", r->connect.host,
		    "example.com");
		check_str(&ck, "wrap connect port", r->connect.port, "443");
		check_str(&ck, "wrap ca", r->ca, "system");
		check_int(&ck, "wrap verify", r->verify, VERIFY_REQUIRE);
		check_str(&ck, "wrap server_name", r->server_name,
		    "example.com");
		check_int(&ck, "wrap key_line[server_name]",
		    r->key_line[K_SERVER_NAME], 0);
		check_str(&ck, "wrap cert", r->cert, NULL);
		check_int(&ck, "wrap resumption", r->resumption, 1);
		check_int(&ck, "wrap connect_timeout", r->connect_timeout, 10);
		check_int(&ck, "wrap handshake_timeout", r->handshake_timeout,
		    10);
		check_int(&ck, "wrap idle_timeout", r->idle_timeout, 43200);
		check_int(&ck, "wrap max_sessions", r->max_sessions, 10000);
		check_int(&ck, "wrap tls", r->tls != NULL, 1);
	}
	if ((r = route(&ck, c, "wrap-ip")) != NULL) {
		check_str(&ck, "wrap-ip connect host", r->connect.host, "::1");
		check_str(&ck, "wrap-ip server_name", r->server_name, "::1");
		check_str(&ck, "wrap-ip ca", r->ca, "system");
	}
	if ((r = route(&ck, c, "unwrap")) != NULL) {
		check_str(&ck, "unwrap accept host", r->accept.host, "0.0.0.0");
		check_str(&ck, "unwrap ca", r->ca, NULL);
		check_int(&ck, "unwrap verify (no ca)", r->verify,
		    VERIFY_NONE);
		check_str(&ck, "unwrap server_name", r->server_name, NULL);
		check_str(&ck, "unwrap connect host", r->connect.host,
		    "backend.example");
		check_int(&ck, "unwrap resumption", r->resumption, 1);
		check_int(&ck, "unwrap idle_timeout", r->idle_timeout, 43200);
		check_int(&ck, "unwrap max_sessions", r->max_sessions, 10000);
	}
	if ((r = route(&ck, c, "forward")) != NULL) {
		check_int(&ck, "forward accept scheme", r->accept.scheme,
		    SCHEME_TCP);
		check_str(&ck, "forward accept host (IPv6)", r->accept.host,
		    "::1");
		check_str(&ck, "forward accept port", r->accept.port, "5003");
		check_str(&ck, "forward accept text", r->accept.text,
		    "tcp://[::1]:5003");
		check_int(&ck, "forward tls", r->tls != NULL, 0);
		check_str(&ck, "forward ca", r->ca, NULL);
		check_str(&ck, "forward server_name", r->server_name, NULL);
		check_int(&ck, "forward connect_timeout", r->connect_timeout,
		    10);
		check_int(&ck, "forward handshake_timeout",
		    r->handshake_timeout, 10);
		check_int(&ck, "forward idle_timeout", r->idle_timeout, 43200);
		check_int(&ck, "forward max_sessions", r->max_sessions, 10000);
	}
out:
	finish(&ck, c);
}

/* [gateway] defaults, a route that overrides them, lists, yes/no. */
static void
test_gateway(void)
{
	struct check ck = { "[gateway] defaults and overrides", "" };
	struct config *c;
	const struct route *r;

	c = load(&ck,
	    "[gateway]\n"
	    "log_level = debug\n"
	    "max_sessions = 50\n"
	    "shutdown_grace = 0\n"
	    "connect_timeout = 5\n"
	    "handshake_timeout = 7\n"
	    "idle_timeout = 0\n"
	    "[inherit]\n"
	    "accept = tcp://127.0.0.1:5001\n"
	    "connect = tcp://127.0.0.1:5003\n"
	    "[override]\n"
	    "accept = tcp://127.0.0.1:5011\n"
	    "connect = tls://127.0.0.1:5002\n"
	    "ca = $P/ca.pem\n"
	    "verify = optional\n"
	    "allow_peers =  localhost , spiffe://demo/server,x,,\n"
	    "resumption = no\n"
	    "priority = NORMAL:-VERS-TLS1.0\n"
	    "connect_timeout = 20\n"
	    "handshake_timeout = 3600\n"
	    "idle_timeout = 31536000\n"
	    "max_sessions = 1000000\n");
	if (c == NULL)
		goto out;
	check_int(&ck, "log_level", c->log_level, LOG_DEBUG);
	check_int(&ck, "log_level_set", c->log_level_set, 1);
	check_int(&ck, "max_sessions", c->max_sessions, 50);
	check_int(&ck, "shutdown_grace", c->shutdown_grace, 0);
	if ((r = route(&ck, c, "inherit")) != NULL) {
		check_int(&ck, "inherit connect_timeout", r->connect_timeout, 5);
		check_int(&ck, "inherit handshake_timeout",
		    r->handshake_timeout, 7);
		check_int(&ck, "inherit idle_timeout", r->idle_timeout, 0);
		check_int(&ck, "inherit max_sessions", r->max_sessions, 50);
	}
	if ((r = route(&ck, c, "override")) != NULL) {
		check_int(&ck, "override connect_timeout", r->connect_timeout,
		    20);
		check_int(&ck, "override handshake_timeout",
		    r->handshake_timeout, 3600);
		check_int(&ck, "override idle_timeout", r->idle_timeout,
		    31536000);
		check_int(&ck, "override max_sessions", r->max_sessions,
		    1000000);
		check_int(&ck, "override verify", r->verify, VERIFY_OPTIONAL);
		check_int(&ck, "override resumption", r->resumption, 0);
		check_str(&ck, "override priority", r->priority,
		    "NORMAL:-VERS-TLS1.0");
		check_str(&ck, "override server_name", r->server_name,
		    "127.0.0.1");
		check_int(&ck, "override allow_peers set",
		    r->allow_peers != NULL, 1);
		if (r->allow_peers != NULL) {
			check_str(&ck, "allow_peers[0]", r->allow_peers[0],
			    "localhost");
			check_str(&ck, "allow_peers[1]", r->allow_peers[1],
			    "spiffe://demo/server");
			check_str(&ck, "allow_peers[2]", r->allow_peers[2], "x");
			check_str(&ck, "allow_peers[3]", r->allow_peers[3], NULL);
		}
	}
out:
	finish(&ck, c);
}

/* PSK on both sides, and the other spellings of resumption. */
static void
test_psk(void)
{
	struct check ck = { "psk routes", "" };
	struct config *c;
	const struct route *r;

	c = load(&ck,
	    "[psk-wrap]\n"
	    "accept = tcp://127.0.0.1:5001\n"
	    "connect = tls://localhost:5002\n"
	    "psk_file = $P/good.psk\n"
	    "psk_identity = bob\n"
	    "resumption = off\n"
	    "[psk-unwrap]\n"
	    "accept = tls://127.0.0.1:5002\n"
	    "psk_file = $P/good.psk\n"
	    "resumption = YES\n"
	    "connect = tcp://127.0.0.1:5003\n");
	if (c == NULL)
		goto out;
	if ((r = route(&ck, c, "psk-wrap")) != NULL) {
		check_str(&ck, "psk-wrap psk_file", r->psk_file,
		    pki("good.psk"));
		check_str(&ck, "psk-wrap psk_identity", r->psk_identity, "bob");
		check_str(&ck, "psk-wrap server_name", r->server_name,
		    "localhost");
		check_str(&ck, "psk-wrap cert", r->cert, NULL);
		check_int(&ck, "psk-wrap resumption", r->resumption, 0);
		check_int(&ck, "psk-wrap tls", r->tls != NULL, 1);
	}
	if ((r = route(&ck, c, "psk-unwrap")) != NULL) {
		check_str(&ck, "psk-unwrap psk_identity", r->psk_identity,
		    NULL);
		check_str(&ck, "psk-unwrap cert", r->cert, NULL);
		check_int(&ck, "psk-unwrap resumption", r->resumption, 1);
		check_int(&ck, "psk-unwrap tls", r->tls != NULL, 1);
	}
out:
	finish(&ck, c);
}

/* The small helpers config.h exports. */
static void
test_helpers(void)
{
	struct check ck = { "config_key_name, config_is_ip", "" };

	check_str(&ck, "config_key_name(K_ACCEPT)", config_key_name(K_ACCEPT),
	    "accept");
	check_str(&ck, "config_key_name(K_SERVER_NAME)",
	    config_key_name(K_SERVER_NAME), "server_name");
	check_str(&ck, "config_key_name(K_MAX_SESSIONS)",
	    config_key_name(K_MAX_SESSIONS), "max_sessions");
	check_int(&ck, "config_is_ip(127.0.0.1)", config_is_ip("127.0.0.1"),
	    1);
	check_int(&ck, "config_is_ip(::1)", config_is_ip("::1"), 1);
	check_int(&ck, "config_is_ip(localhost)", config_is_ip("localhost"),
	    0);
	check_int(&ck, "config_is_ip(1.2.3)", config_is_ip("1.2.3"), 0);
	finish(&ck, NULL);
}

/* A sockaddr for addr (IPv4 or IPv6), port 1. */
static union pp_addr
sa_of(const char *addr)
{
	union pp_addr a;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, addr, &a.in.sin_addr) == 1) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons(1);
	} else if (inet_pton(AF_INET6, addr, &a.in6.sin6_addr) == 1) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(1);
	}
	return a;
}

static void
test_cidr(void)
{
	struct check ck = { "config_cidr_match", "" };
	struct cidr list[3];
	union pp_addr a;

	memset(list, 0, sizeof(list));
	list[0].family = AF_INET;
	inet_pton(AF_INET, "10.1.0.0", list[0].addr);
	list[0].bits = 15;			/* 10.0.0.0 - 10.1.255.255 */
	list[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::", list[1].addr);
	list[1].bits = 32;
	list[2].family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", list[2].addr);
	list[2].bits = 32;
	a = sa_of("10.0.200.1");
	check_int(&ck, "10.0.200.1 in 10.0.0.0/15",
	    config_cidr_match(list, 3, &a.sa), 1);
	a = sa_of("10.2.0.1");
	check_int(&ck, "10.2.0.1 in 10.0.0.0/15",
	    config_cidr_match(list, 3, &a.sa), 0);
	a = sa_of("::ffff:10.1.2.3");
	check_int(&ck, "::ffff:10.1.2.3 as IPv4",
	    config_cidr_match(list, 3, &a.sa), 1);
	a = sa_of("2001:db8:ffff::1");
	check_int(&ck, "2001:db8:ffff::1 in 2001:db8::/32",
	    config_cidr_match(list, 3, &a.sa), 1);
	a = sa_of("2001:db9::1");
	check_int(&ck, "2001:db9::1", config_cidr_match(list, 3, &a.sa), 0);
	a = sa_of("192.0.2.7");
	check_int(&ck, "192.0.2.7/32", config_cidr_match(list, 3, &a.sa), 1);
	a = sa_of("192.0.2.8");
	check_int(&ck, "192.0.2.8", config_cidr_match(list, 3, &a.sa), 0);
	a.sa.sa_family = AF_UNIX;
	check_int(&ck, "a unix socket", config_cidr_match(list, 3, &a.sa), 0);
	finish(&ck, NULL);
}

/* pp_parse of text (len bytes): its result, and why. */
static long
parse(const char *text, size_t len, union pp_addr *src, union pp_addr *dst,
    char *why)
{
	why[0] = '\0';
	return pp_parse((const unsigned char *)text, len, src, dst, why, 200);
}

static void
test_pp(void)
{
	static const char v2[] = "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"
	    "\xc0\x00\x02\x07\x0a\x00\x00\x01\x15\xb3\x01\xbb";
	struct check ck = { "pp_parse, pp_build", "" };
	union pp_addr src, dst, s2, d2;
	struct pp_tls tls;
	unsigned char buf[PP_MAX];
	char why[200], text[64];
	const char *v1 = "PROXY TCP4 192.0.2.7 10.0.0.1 5555 443\r\nhello";
	long n;

	n = parse(v1, strlen(v1), &src, &dst, why);
	check_int(&ck, "v1 length", (int)n, 40);
	inet_ntop(AF_INET, &src.in.sin_addr, text, sizeof(text));
	check_str(&ck, "v1 source", text, "192.0.2.7");
	check_int(&ck, "v1 source port", ntohs(src.in.sin_port), 5555);
	check_int(&ck, "v1 cut short", (int)parse(v1, 20, &src, &dst, why), 0);
	n = parse(v2, sizeof(v2) - 1, &src, &dst, why);
	check_int(&ck, "v2 length", (int)n, 28);
	inet_ntop(AF_INET, &dst.in.sin_addr, text, sizeof(text));
	check_str(&ck, "v2 destination", text, "10.0.0.1");
	check_int(&ck, "v2 destination port", ntohs(dst.in.sin_port), 443);
	check_int(&ck, "v2 cut short", (int)parse(v2, 20, &src, &dst, why),
	    0);
	check_int(&ck, "TLS first", (int)parse("\x16\x03\x01", 3, &src, &dst,
	    why), -1);
	check_str(&ck, "TLS first: why", why, "missing (the connection "
	    "starts with a TLS handshake)");
	check_int(&ck, "v1 UNKNOWN", (int)parse("PROXY UNKNOWN\r\n", 15, &src,
	    &dst, why), 15);
	check_int(&ck, "v1 UNKNOWN: no address", src.sa.sa_family, AF_UNSPEC);
	parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", 36, &src, &dst, why);
	check_str(&ck, "v1 bad port", why, "v1: bad port");
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY TCP4 ", 11);
	check_int(&ck, "v1 too long", (int)pp_parse(buf, 200, &src, &dst,
	    why, sizeof(why)), -1);
	check_str(&ck, "v1 too long: why", why, "v1 header longer than 107 "
	    "bytes");
	memcpy(buf, v2, 16);
	memcpy(buf + 16, v2 + 16, 12);
	buf[12] = 0x20;
	check_int(&ck, "v2 LOCAL, cut short", (int)parse((const char *)buf, 16,
	    &src, &dst, why), 0);
	check_int(&ck, "v2 LOCAL", (int)parse((const char *)buf, 28, &src, &dst,
	    why), 28);
	check_int(&ck, "v2 LOCAL: no address", src.sa.sa_family, AF_UNSPEC);
	buf[12] = 0x21;
	buf[13] = 0x00;
	check_int(&ck, "v2 UNSPEC", (int)parse((const char *)buf, 28, &src, &dst,
	    why), 28);
	check_int(&ck, "v2 UNSPEC: no address", src.sa.sa_family, AF_UNSPEC);
	buf[12] = 0x21;
	buf[13] = 0x31;
	parse((const char *)buf, 16, &src, &dst, why);
	check_str(&ck, "v2 unix", why, "v2: unsupported address family and "
	    "protocol 0x31 (TCP over IPv4 or IPv6 expected)");
	buf[13] = 0x11;
	buf[14] = 0x08;
	parse((const char *)buf, 16, &src, &dst, why);
	check_str(&ck, "v2 too long", why, "v2 header of 2076 bytes, more "
	    "than 2048");
	/* build, then parse back */
	src = sa_of("::ffff:192.0.2.9");
	dst = sa_of("127.0.0.1");
	n = pp_build(1, &src, &dst, NULL, buf, sizeof(buf));
	check_int(&ck, "v1 built", n > 0 && memcmp(buf, "PROXY TCP4 "
	    "192.0.2.9 127.0.0.1 1 1\r\n", (size_t)n) == 0, 1);
	memset(&tls, 0, sizeof(tls));
	tls.version = "TLSv1.3";
	tls.cipher = "TLS_AES_128_GCM_SHA256";
	tls.sni = "example.org";
	tls.cn = "client";
	tls.cert = tls.verified = 1;
	src = sa_of("2001:db8::9");
	n = pp_build(2, &src, &dst, &tls, buf, sizeof(buf));
	check_int(&ck, "v2 built and read back", (int)parse((const char *)buf,
	    (size_t)n, &s2, &d2, why), (int)n);
	check_int(&ck, "v2 mixed families as TCP6", buf[13], 0x21);
	check_int(&ck, "v2 TLVs: authority first", buf[52], 0x02);
	check_int(&ck, "v2 TLVs: SSL next", buf[52 + 3 + 11], 0x20);
	check_int(&ck, "v2 SSL client flags", buf[52 + 3 + 11 + 3], 0x03);
	finish(&ck, NULL);
}

/* The PKI and the fixtures the cases name under $P. */
static int
setup(void)
{
	const char *srcdir = getenv("SRCDIR");
	const char *tmp = getenv("TMPDIR");
	char script[1024], path[256], line[700];
	pid_t pid;
	int status;

	if (srcdir == NULL || *srcdir == '\0')
		srcdir = ".";
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/config_test.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "config_test: mkdtemp %s: %s\n", dir,
		    strerror(errno));
		dir[0] = '\0';
		return -1;
	}
	snprintf(file, sizeof(file), "%s/routes.ini", dir);
	snprintf(script, sizeof(script), "%s/scripts/mkcerts", srcdir);
	if ((pid = fork()) == -1) {
		perror("config_test: fork");
		return -1;
	}
	if (pid == 0) {
		execl(script, script, dir, "all", (char *)NULL);
		fprintf(stderr, "config_test: %s: %s (set SRCDIR to the "
		    "repository)\n", script, strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "config_test: %s failed\n", script);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/adir", dir);
	if (mkdir(path, 0755) == -1) {
		perror("config_test: mkdir");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/garbage.pem", dir);
	write_file(path, "this is not PEM\n");
	snprintf(path, sizeof(path), "%s/empty.pem", dir);
	write_file(path, "");
	snprintf(path, sizeof(path), "%s/good.psk", dir);
	write_file(path, "alice:00112233445566778899aabbccddeeff\n"
	    "bob:0123456789abcdef0123456789abcdef\n");
	if (chmod(path, 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/bad.psk", dir);
	write_file(path, "alice:00112233445566778899aabbccddeeff\n"
	    "no colon here\n"
	    "carol:xyz1\n"
	    "dave:abc\n"
	    ":0011\n");
	if (chmod(path, 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/long.psk", dir);
	memset(line, 'a', 600);
	snprintf(line + 600, sizeof(line) - 600, ":00112233\n");
	write_file(path, line);
	if (chmod(path, 0600) == -1)
		return -1;
	snprintf(path, sizeof(path), "%s/noread.pem", dir);
	write_file(path, "-----BEGIN CERTIFICATE-----\n");
	if (chmod(path, 0) == -1)
		return -1;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		fprintf(stderr, "config_test: remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

/*
 * log.c: a line longer than a log line can hold is cut, and is still one
 * line of text: its last byte the newline, no NUL in it.
 */
static void
test_log_cut(void)
{
	struct check ck = { "a cut log line", "" };
	char big[3000], got[4096], path[sizeof(dir) + 16];
	ssize_t n;
	int fd, save;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(path, sizeof(path), "%s/log.out", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (save = dup(STDERR_FILENO)) == -1 ||
	    dup2(fd, STDERR_FILENO) == -1) {
		fail(ck.name, strerror(errno));
		return;
	}
	log_event(LOG_ERROR, "r", 1, "test", "detail=%s", big);
	(void)dup2(save, STDERR_FILENO);
	(void)close(save);
	n = pread(fd, got, sizeof(got), 0);
	(void)close(fd);
	check_int(&ck, "bytes written", n, 2048);
	if (ck.why[0] == '\0' && memchr(got, '\0', (size_t)n) != NULL)
		snprintf(ck.why, sizeof(ck.why), "a NUL byte at %td of %zd",
		    (char *)memchr(got, '\0', (size_t)n) - got, n);
	check_int(&ck, "newlines", memchr(got, '\n', (size_t)n) ==
	    got + n - 1, 1);
	check_int(&ck, "the byte before the newline", got[n - 2], 'x');
	if (ck.why[0] == '\0')
		pass();
	else
		fail(ck.name, ck.why);
}

int
main(int argc, char **argv)
{
	size_t i;

	verbose = (argc > 1 && strcmp(argv[1], "-v") == 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_ERROR);	/* the warnings of a load are not ours */
	if (setup() == -1) {
		failed++;
		goto out;
	}
	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
		run_error_case(&error_cases[i]);
	test_demo();
	test_defaults();
	test_gateway();
	test_psk();
	test_helpers();
	test_cidr();
	test_pp();
	test_log_cut();
out:
	if (dir[0] != '\0' &&
	    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		fprintf(stderr, "config_test: cannot remove %s\n", dir);
	printf("config: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
