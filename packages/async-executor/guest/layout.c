/* Addresses a program can see: globals, the program break, large allocations (mmap), the stack,
   argv, the auxv. They match qemu-riscv64's because the memory layout is the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

int global_var;

int main(int argc, char **argv) {
    int local;
    void *small = malloc(16);
    void *big = malloc(1 << 20);
    void *anon = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* The first heap chunk's exact address depends on how long the program's directory name is
       (glibc's start-up mallocs a copy of it), so only its region is printed. */
    void *brk_now = sbrk(0);
    printf("global %p\nheap below brk %d\nbrk %p\n", (void *)&global_var,
           (char *)small < (char *)brk_now && (char *)small > (char *)&global_var, brk_now);
    printf("big %p\nmmap %p\n", big, anon);
    munmap(anon, 3 * 4096);
    free(big);
    void *again = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap after munmap %p\n", again);
    /* Exact stack addresses depend on the length of argv[0] (the program's path), so print what
       does not: the top of the stack (just above the AT_EXECFN string and its NULL word) and the
       MiB the stack pointer lies in. */
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("stack top %#lx, sp in MiB %#lx, argv below execfn %d\n",
           (unsigned long)(execfn + strlen(execfn) + 1 + 8), (unsigned long)&local >> 20,
           (char *)argv < execfn);
    printf("AT_RANDOM aligned %d AT_PHDR %#lx AT_ENTRY %#lx\n", getauxval(AT_RANDOM) % 16 == 0,
           getauxval(AT_PHDR), getauxval(AT_ENTRY));
    printf("argc %d\n", argc);
    return 0;
}
