/*
 * libFuzzer target: routes.ini parsing and validation (config_read without
 * loading the files it names, so inputs cannot make it read /dev/zero).
 */
#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	char path[64];
	int fd;

	if ((fd = memfd_create("routes.ini", MFD_CLOEXEC)) == -1)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		c = config_read(path, 0, &errs);
		/* Valid exactly when no error was reported. */
		if ((c == NULL) != (errs.n > 0))
			__builtin_trap();
		config_free(c);
		config_errors_clear(&errs);
	}
	(void)close(fd);
	return 0;
}
