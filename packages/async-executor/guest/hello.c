/* stdio: printf, puts, putchar, fputs to stderr, a line read from stdin when asked. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    printf("Hello, RISC-V!\n");
    puts("puts works");
    for (int i = 0; i < 5; i++) putchar('a' + i);
    putchar('\n');
    printf("%d %u %ld %lx %s %c %5.2s|\n", -42, 42u, -1234567890123L, 0xdeadbeefcafeL, "str", 'Z', "abc");
    fprintf(stderr, "to stderr\n");
    if (argc > 1 && strcmp(argv[1], "echo") == 0) {
        char line[256];
        while (fgets(line, sizeof line, stdin)) printf("echo: %s", line);
    }
    return 0;
}
