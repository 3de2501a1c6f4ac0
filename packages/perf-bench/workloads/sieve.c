/* perf-bench workload: sieve of Eratosthenes over a byte array.
 *
 * Stores striding through a heap buffer: memory-bound integer code with short inner loops.
 * Usage: sieve [LIMIT]. Prints "sieve LIMIT COUNT LARGEST" (primes <= LIMIT, the largest one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long limit = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    if (limit < 2) {
        fprintf(stderr, "sieve: LIMIT must be at least 2\n");
        return 2;
    }
    unsigned char *composite = malloc((size_t)limit + 1);
    if (composite == NULL) return 3;
    memset(composite, 0, (size_t)limit + 1);
    long count = 0, largest = 0;
    for (long i = 2; i <= limit; i++) {
        if (composite[i]) continue;
        count++;
        largest = i;
        for (long j = i * i; j <= limit; j += i) composite[j] = 1;
    }
    printf("sieve %ld %ld %ld\n", limit, count, largest);
    free(composite);
    return 0;
}
