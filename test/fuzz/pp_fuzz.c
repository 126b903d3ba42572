/*
 * libFuzzer target: the PROXY protocol header parser. What it accepts is
 * whole and no longer than what came; its addresses build a header again
 * (v1 and v2) that parses back to the same addresses (none, for a
 * header of the proxy's own connection: LOCAL, UNKNOWN, UNSPEC).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const union pp_addr *a, const union pp_addr *b)
{
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
		/* v1 and v2 keep IPv4 as IPv4 and IPv6 as IPv6 */
		if (!same(&src, &s2) || !same(&dst, &d2))
			if (src.sa.sa_family == dst.sa.sa_family)
				__builtin_trap();
	}
	return 0;
}
