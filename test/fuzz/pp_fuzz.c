/*
 * libFuzzer target: the PROXY protocol header parser. What it accepts is
 * whole and no longer than what came; its addresses build a header again
 * (v1 and v2) that parses back to the same addresses (none, for a
 * header of the proxy's own connection: LOCAL, UNKNOWN, UNSPEC). The
 * same, as pp_build() writes them: an IPv4-mapped IPv6 address is its
 * IPv4 address, and an IPv4 one beside an IPv6 one goes out mapped.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An IPv4-mapped IPv6 address as IPv4; others as they are. */
static union pp_addr
unmapped(const union pp_addr *a)
{
	union pp_addr u = *a;

	if (a->sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
		memset(&u, 0, sizeof(u));
		u.in.sin_family = AF_INET;
		memcpy(&u.in.sin_addr, a->in6.sin6_addr.s6_addr + 12, 4);
		u.in.sin_port = a->in6.sin6_port;
	}
	return u;
}

static int
same(const union pp_addr *a0, const union pp_addr *b0)
{
	union pp_addr ua = unmapped(a0), ub = unmapped(b0);
	const union pp_addr *a = &ua, *b = &ub;

	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_UNSPEC)
		return 1;
	if (a->sa.sa_family == AF_INET)
		return memcmp(&a->in.sin_addr, &b->in.sin_addr, 4) == 0 &&
		    a->in.sin_port == b->in.sin_port;
	return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0 &&
	    a->in6.sin6_port == b->in6.sin6_port;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char out[PP_MAX];
	union pp_addr src, dst, s2, d2;
	char why[256];
	long n, m;
	int v;

	n = pp_parse(data, size, &src, &dst, why, sizeof(why));
	if (n < 0 || n == 0)
		return 0;
	if ((size_t)n > size || n > PP_MAX)
		__builtin_trap();
	for (v = 1; v <= 2; v++) {
		if ((m = pp_build(v, &src, &dst, NULL, out, sizeof(out))) <= 0)
			__builtin_trap();
		if (pp_parse(out, (size_t)m, &s2, &d2, why, sizeof(why)) != m)
			__builtin_trap();
		if (!same(&src, &s2) || !same(&dst, &d2))
			__builtin_trap();
	}
	return 0;
}
