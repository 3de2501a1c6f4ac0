/* GCC nested functions: the trampoline is code written onto an executable stack (self-modifying). */
#include <stdio.h>

static int apply(int (*f)(int), int x) { return f(x); }

static int run(int base) {
    int calls = 0;
    int add(int x) { calls++; return x + base; }
    int total = 0;
    for (int i = 0; i < 5; i++) total += apply(add, i);
    return total * 100 + calls;
}

int main(void) {
    for (int base = 1; base <= 3; base++) printf("base %d -> %d\n", base, run(base));
    return 0;
}
