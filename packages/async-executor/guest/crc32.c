/* CRC-32 (IEEE, bitwise) over a generated buffer: a branchy integer loop kernel. argv[1] = bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    uint8_t *buf = malloc((size_t)n);
    uint32_t seed = 12345;
    for (long i = 0; i < n; i++) { seed = seed * 1103515245u + 12345u; buf[i] = (uint8_t)(seed >> 16); }
    uint32_t crc = 0xFFFFFFFFu;
    for (long i = 0; i < n; i++) {
        crc ^= buf[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    printf("crc32(%ld bytes) = %08x\n", n, crc ^ 0xFFFFFFFFu);
    free(buf);
    return 0;
}
