/* Sieve of Eratosthenes: a memory-bound loop kernel. argv[1] = limit. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    char *composite = calloc((size_t)n + 1, 1);
    long count = 0, last = 0;
    for (long i = 2; i <= n; i++) {
        if (composite[i]) continue;
        count++;
        last = i;
        for (long j = i * i; j <= n; j += i) composite[j] = 1;
    }
    printf("primes up to %ld: %ld (largest %ld)\n", n, count, last);
    free(composite);
    return 0;
}
