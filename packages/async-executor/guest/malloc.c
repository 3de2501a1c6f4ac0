/* malloc/free/realloc/calloc, small (brk) and large (mmap) allocations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

int main(void) {
    enum { N = 2000 };
    static char *blocks[N];
    unsigned long sum = 0;
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i % 97) * 13 + 1;
        blocks[i] = malloc(n);
        memset(blocks[i], i & 0xff, n);
    }
    for (int i = 0; i < N; i += 2) { free(blocks[i]); blocks[i] = NULL; }
    for (int i = 1; i < N; i += 2) {
        size_t n = (size_t)(i % 97) * 13 + 1;
        blocks[i] = realloc(blocks[i], n * 3);
        for (size_t j = 0; j < n; j++) sum += (unsigned char)blocks[i][j];
    }
    printf("small sum %lu\n", sum);
    int *big = calloc(300000, sizeof(int));
    long total = 0;
    for (int i = 0; i < 300000; i++) total += big[i];
    for (int i = 0; i < 300000; i += 1000) big[i] = i;
    big = realloc(big, 600000 * sizeof(int));
    for (int i = 0; i < 300000; i += 1000) total += big[i];
    printf("big total %ld\n", total);
    free(big);
    char *huge = malloc(8 << 20);
    huge[0] = 1; huge[(8 << 20) - 1] = 2;
    printf("huge ends %d %d\n", huge[0], huge[(8 << 20) - 1]);
    free(huge);
    for (int i = 1; i < N; i += 2) free(blocks[i]);
    void *p = malloc(0);
    printf("malloc(0) %s\n", p ? "non-null" : "null");
    free(p);
    puts("malloc ok");
    return 0;
}
