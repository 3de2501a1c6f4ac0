/* perf-bench workload: a walk over many pages, the software TLB's worst case.
 *
 * Touches one 8-byte word per 4 KiB page of a PAGES-page buffer, PASSES times in order, so once
 * PAGES exceeds the TLB's capacity every access is a miss under FIFO replacement.
 * Usage: pagewalk [PAGES [PASSES]]. Prints "pagewalk PAGES PASSES SUM" where the word of page p
 * holds p * 2654435761 (mod 2**64) and SUM is the wrapping sum of every word read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096L

int main(int argc, char **argv) {
    long pages = argc > 1 ? strtol(argv[1], NULL, 10) : 2048;
    long passes = argc > 2 ? strtol(argv[2], NULL, 10) : 4;
    if (pages <= 0 || passes <= 0) {
        fprintf(stderr, "pagewalk: PAGES and PASSES must be positive\n");
        return 2;
    }
    unsigned char *buf = malloc((size_t)(pages * PAGE));
    if (buf == NULL) return 3;
    for (long p = 0; p < pages; p++) *(uint64_t *)(buf + p * PAGE) = (uint64_t)p * 2654435761u;
    uint64_t sum = 0;
    for (long r = 0; r < passes; r++)
        for (long p = 0; p < pages; p++) sum += *(volatile uint64_t *)(buf + p * PAGE);
    printf("pagewalk %ld %ld %llu\n", pages, passes, (unsigned long long)sum);
    free(buf);
    return 0;
}
