/* perf-bench workload: N x N integer matrix multiply (64-bit, wrapping).
 *
 * Nested loops with loads from two heap matrices and multiply-accumulate (the M extension).
 * Usage: matmul [N]. Prints "matmul N CHECKSUM" with CHECKSUM = sum of C[i][j] * (i + j + 1)
 * as a signed 64-bit integer; A[i][j] = (7i + 3j) % 17 - 8, B[i][j] = (5i + 11j) % 13 - 6.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 48;
    if (n <= 0 || n > 4096) {
        fprintf(stderr, "matmul: N must be in 1..4096\n");
        return 2;
    }
    int64_t *a = malloc(sizeof(int64_t) * (size_t)(n * n));
    int64_t *b = malloc(sizeof(int64_t) * (size_t)(n * n));
    int64_t *c = malloc(sizeof(int64_t) * (size_t)(n * n));
    if (a == NULL || b == NULL || c == NULL) return 3;
    for (long i = 0; i < n; i++) {
        for (long j = 0; j < n; j++) {
            a[i * n + j] = (7 * i + 3 * j) % 17 - 8;
            b[i * n + j] = (5 * i + 11 * j) % 13 - 6;
        }
    }
    for (long i = 0; i < n; i++) {
        for (long j = 0; j < n; j++) {
            int64_t sum = 0;
            for (long k = 0; k < n; k++) sum += a[i * n + k] * b[k * n + j];
            c[i * n + j] = sum;
        }
    }
    uint64_t check = 0;
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) check += (uint64_t)c[i * n + j] * (uint64_t)(i + j + 1);
    printf("matmul %ld %lld\n", n, (long long)(int64_t)check);
    free(a);
    free(b);
    free(c);
    return 0;
}
