/*
 * randread FILE READERS OPS SEED: OPS reads of 4 KiB at distinct random
 * aligned offsets of FILE, shared among READERS processes that start
 * together; prints the seconds from start until the last reader is done.
 * Distinct offsets: with a cold cache every read reaches the file system.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	if (argc != 5) {
		fprintf(stderr, "usage: randread file readers ops seed\n");
		return 2;
	}
	int readers = atoi(argv[2]);
	long ops = atol(argv[3]);
	uint64_t x = strtoull(argv[4], NULL, 10) | 1;
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	long pages = st.st_size / 4096;
	if (readers < 1 || ops < readers || ops > pages) {
		fprintf(stderr, "randread: need 1 <= readers <= ops <= %ld pages\n", pages);
		return 2;
	}
	/* The first OPS entries of a random permutation of the pages (xorshift64). */
	long *page = malloc(pages * sizeof *page);
	for (long i = 0; i < pages; i++)
		page[i] = i;
	for (long i = 0; i < ops; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		long j = i + (long)(x % (uint64_t)(pages - i)), t = page[i];
		page[i] = page[j];
		page[j] = t;
	}
	int go[2];
	if (pipe(go) < 0) {
		perror("pipe");
		return 1;
	}
	for (int r = 0; r < readers; r++) {
		if (fork() == 0) {
			char buf[4096], c;
			int own = open(argv[1], O_RDONLY);
			close(go[1]);
			if (own < 0 || read(go[0], &c, 1) < 0)
				_exit(1);
			for (long i = r * ops / readers; i < (r + 1) * ops / readers; i++)
				if (pread(own, buf, sizeof buf, page[i] * 4096) != sizeof buf)
					_exit(1);
			_exit(0);
		}
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	close(go[1]);
	int status, failed = 0;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (failed) {
		fprintf(stderr, "randread: a reader failed\n");
		return 1;
	}
	printf("%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
