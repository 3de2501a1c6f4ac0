/* setjmp/longjmp across frames, with values preserved in volatile locals. */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf env;
static int depth;

static void dive(int n) {
    depth = n;
    if (n == 5) longjmp(env, n * 10);
    dive(n + 1);
}

int main(void) {
    volatile int rounds = 0;
    int r = setjmp(env);
    printf("setjmp returned %d (round %d)\n", r, rounds);
    if (rounds++ < 3) dive(1);
    printf("depth %d, rounds %d\n", depth, rounds);
    jmp_buf inner;
    if (setjmp(inner) == 0) {
        puts("first pass");
        longjmp(inner, 0);
    } else {
        puts("longjmp(0) arrives as 1");
    }
    return 0;
}
