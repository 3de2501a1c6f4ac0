/* qsort and bsearch on a pseudo-random array (xorshift, deterministic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    int *v = malloc(sizeof(int) * (size_t)n);
    unsigned x = 2463534242u;
    for (int i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; v[i] = (int)(x % 100000) - 50000; }
    qsort(v, (size_t)n, sizeof(int), cmp_int);
    int sorted = 1;
    long sum = 0;
    for (int i = 0; i < n; i++) { if (i && v[i - 1] > v[i]) sorted = 0; sum += v[i]; }
    printf("n=%d sorted=%d min=%d max=%d sum=%ld\n", n, sorted, v[0], v[n - 1], sum);
    int key = v[n / 3];
    int *hit = bsearch(&key, v, (size_t)n, sizeof(int), cmp_int);
    printf("bsearch found=%d\n", hit != NULL && *hit == key);
    const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "date"};
    qsort(words, 6, sizeof words[0], cmp_str);
    for (int i = 0; i < 6; i++) printf("%s%c", words[i], i == 5 ? '\n' : ' ');
    free(v);
    return 0;
}
