/* libFuzzer target: the SCHEME://HOST:PORT and unix:PATH address parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a;
	char *s;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (config_parse_addr(s, &a) == NULL) {
		/*
		 * Accepted: the parts are terminated; the port is valid, or
		 * empty for a unix socket whose path fits a sockaddr_un.
		 */
		if (memchr(a.host, '\0', sizeof(a.host)) == NULL)
			__builtin_trap();
		if (a.scheme == SCHEME_UNIX ? a.port[0] != '\0' ||
		    (a.host[0] != '/' && a.host[0] != '@') ||
		    strlen(a.host) > 107 : atoi(a.port) < 1 ||
		    atoi(a.port) > 65535)
			__builtin_trap();
	}
	free(s);
	return 0;
}
