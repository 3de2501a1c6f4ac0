/* perf-bench workload: bitwise CRC-32 (IEEE 802.3, reflected) over a pseudo-random buffer.
 *
 * A tight, branchy integer loop: the shape a JIT turns into one self-looping block.
 * Usage: crc32 [BYTES]. Prints "crc32 BYTES XXXXXXXX"; perf-bench checks it against zlib.crc32
 * of the same bytes (an LCG: state = state * 1103515245 + 12345, byte = state >> 16).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, long n) {
    for (long i = 0; i < n; i++) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; bit++) {
            uint32_t mask = -(crc & 1u);
            crc = (crc >> 1) ^ (0xEDB88320u & mask);
        }
    }
    return crc;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 65536;
    if (n <= 0) {
        fprintf(stderr, "crc32: BYTES must be positive\n");
        return 2;
    }
    uint8_t *data = malloc((size_t)n);
    if (data == NULL) return 3;
    uint32_t state = 12345u;
    for (long i = 0; i < n; i++) {
        state = state * 1103515245u + 12345u;
        data[i] = (uint8_t)(state >> 16);
    }
    uint32_t crc = crc32_update(0xFFFFFFFFu, data, n) ^ 0xFFFFFFFFu;
    printf("crc32 %ld %08x\n", n, (unsigned)crc);
    free(data);
    return 0;
}
