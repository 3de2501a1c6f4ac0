/* Ways to end: exit(3), return 42, abort(), a wild pointer, a runaway loop. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "return";
    printf("mode %s\n", mode);
    fflush(stdout);
    if (strcmp(mode, "exit") == 0) exit(3);
    if (strcmp(mode, "abort") == 0) abort();
    if (strcmp(mode, "segv") == 0) {
        volatile long *p = (long *)(uintptr_t)0xdead0000;
        *p = 1;
    }
    if (strcmp(mode, "null") == 0) {
        volatile int *p = NULL;
        return *p;
    }
    if (strcmp(mode, "loop") == 0) {
        volatile unsigned long n = 0;
        for (;;) n++;
    }
    if (strcmp(mode, "atexit") == 0) {
        printf("buffered without newline");
        exit(5);
    }
    return 42;
}
