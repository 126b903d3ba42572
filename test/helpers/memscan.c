/*
 * memscan [-x] [-n MAX] PID PATTERNS
 *
 * Search the memory of process PID (every readable mapping, through
 * /proc/PID/mem) for each line of the file PATTERNS, and report every
 * place one is found: "memscan: found LINE in MAPPING at ADDRESS". Lines
 * shorter than 16 bytes are ignored (too likely by chance). Needs the
 * right to trace PID (root, or the same user where ptrace is not
 * restricted). Mappings over 1 GiB are skipped (with a line saying so):
 * reading one faults its pages in.
 *   -x      each line is bytes in hex, to be searched as bytes
 *   -n MAX  a pattern may be found up to MAX times (default 0)
 * Exit: 0 no pattern found more than MAX times; 1 one was; 2 the memory
 * could not be read.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static const char *prog = "memscan";

#define MAX_PATTERNS	256
#define CHUNK		(1024 * 1024)
#define MAX_MAPPING	((uint64_t)1 << 30)	/* larger ones are skipped */

static char	*pat[MAX_PATTERNS];
static size_t	 patlen[MAX_PATTERNS];
static int	 count[MAX_PATTERNS];
static int	 npat, hex;

/* A line of hex digits into bytes, in place; its byte count. */
static size_t
unhex(char *s, size_t n)
{
	size_t i;
	unsigned v;

	for (i = 0; i + 1 < n; i += 2) {
		if (sscanf(s + i, "%2x", &v) != 1)
			die(prog, 2, "not hex: %s", s);
		s[i / 2] = (char)v;
	}
	return n / 2;
}

static void
load_patterns(const char *path)
{
	char line[4096];
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL)
		die(prog, 2, "%s: %s", path, strerror(errno));
	while (npat < MAX_PATTERNS && fgets(line, sizeof(line), fp) != NULL) {
		n = strcspn(line, "\r\n");
		line[n] = '\0';
		if (hex)
			n = unhex(line, n);
		if (n < 16)
			continue;
		if ((pat[npat] = malloc(n)) == NULL)
			die(prog, 2, "out of memory");
		memcpy(pat[npat], line, n);
		patlen[npat++] = n;
	}
	fclose(fp);
	if (npat == 0)
		die(prog, 2, "%s: no pattern of 16 bytes or more", path);
}

static void
report(int i, const char *name, uint64_t addr)
{
	size_t k;

	printf("memscan: found ");
	for (k = 0; k < patlen[i]; k++)
		if (hex)
			printf("%02x", (unsigned char)pat[i][k]);
		else
			putchar(pat[i][k]);
	printf(" in %s at 0x%" PRIx64 "\n", name[0] ? name : "[anonymous]",
	    addr);
}

int
main(int argc, char **argv)
{
	char path[64], line[512], name[256];
	unsigned char *buf, *hit;
	uint64_t lo, hi, at;
	char perms[8];
	size_t len, keep, total, maxlen = 0;
	ssize_t n;
	FILE *maps;
	unsigned char *from;
	int mem, i, c, found = 0, scanned = 0, max = 0;

	while ((c = getopt(argc, argv, "xn:")) != -1) {
		switch (c) {
		case 'x': hex = 1; break;
		case 'n': max = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	argv += optind - 1;
	load_patterns(argv[2]);
	for (i = 0; i < npat; i++)
		if (patlen[i] > maxlen)
			maxlen = patlen[i];
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	if ((maps = fopen(path, "r")) == NULL)
		die(prog, 2, "%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	if ((mem = open(path, O_RDONLY)) == -1)
		die(prog, 2, "%s: %s", path, strerror(errno));
	/* A chunk, and the tail of the one before it (a match may span). */
	if ((buf = malloc(CHUNK + 4096)) == NULL)
		die(prog, 2, "out of memory");
	while (fgets(line, sizeof(line), maps) != NULL) {
		name[0] = '\0';
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %255s",
		    &lo, &hi, perms, name) < 3 || perms[0] != 'r')
			continue;
		if (strcmp(name, "[vvar]") == 0 || strcmp(name, "[vsyscall]") == 0)
			continue;
		/*
		 * Reading a mapping faults its pages in: a sanitizer's
		 * shadow (terabytes) would fill the machine's memory.
		 */
		if (hi - lo > MAX_MAPPING) {
			printf("memscan: skipped a mapping of %" PRIu64
			    " MiB\n", (hi - lo) >> 20);
			continue;
		}
		keep = 0;
		for (at = lo; at < hi; at += len) {
			len = hi - at < CHUNK ? (size_t)(hi - at) : CHUNK;
			n = pread(mem, buf + keep, len, (off_t)at);
			if (n <= 0)
				break;
			scanned = 1;
			for (i = 0; i < npat; i++) {
				from = buf;
				while ((hit = memmem(from, keep + (size_t)n -
				    (size_t)(from - buf), pat[i], patlen[i])) !=
				    NULL) {
					from = hit + 1;
					/* Seen with the chunk before. */
					if (hit + patlen[i] <= buf + keep)
						continue;
					count[i]++;
					report(i, name, at - keep +
					    (uint64_t)(hit - buf));
				}
			}
			/* Keep what a match could start in: the last
			   longest-pattern-minus-one bytes. */
			total = keep + (size_t)n;
			keep = total < maxlen - 1 ? total : maxlen - 1;
			memmove(buf, buf + total - keep, keep);
		}
	}
	fclose(maps);
	close(mem);
	free(buf);
	if (!scanned)
		die(prog, 2, "nothing of process %s could be read", argv[1]);
	for (i = 0; i < npat; i++)
		if (count[i] > max) {
			printf("memscan: pattern %d found %d times (at most %d "
			    "allowed)\n", i + 1, count[i], max);
			found = 1;
		}
	return found;
usage:
	fprintf(stderr, "usage: memscan [-x] [-n MAX] PID PATTERNS\n");
	return 2;
}
