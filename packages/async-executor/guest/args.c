/* argv and environ as the program sees them. */
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc %d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d] = [%s]\n", i, argv[i]);
    int n = 0;
    for (char **e = environ; *e; e++) printf("env [%s]\n", *e), n++;
    printf("env count %d\n", n);
    const char *v = getenv("GUEST_VAR");
    printf("GUEST_VAR %s\n", v ? v : "(unset)");
    return argc;
}
