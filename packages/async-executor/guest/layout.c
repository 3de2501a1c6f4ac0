/* Addresses a program can see: globals, the program break, large allocations (mmap), the stack,
   argv, the auxv. They match qemu-riscv64's because the memory layout is the same. */
#include <stdio.h>
#include <stdlib.h>
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
    printf("stack %p argv %p argv[0] %p\n", (void *)&local, (void *)argv, (void *)argv[0]);
    printf("AT_RANDOM %#lx AT_EXECFN %#lx AT_PHDR %#lx AT_ENTRY %#lx\n", getauxval(AT_RANDOM),
           getauxval(AT_EXECFN), getauxval(AT_PHDR), getauxval(AT_ENTRY));
    printf("argc %d\n", argc);
    return 0;
}
