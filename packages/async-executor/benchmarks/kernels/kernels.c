/* Loop kernels for the interpreter benchmark: freestanding (no libc), so they need only
 * the exit syscall. Build: see Makefile. Each kernel's result is the exit status (& 0xff),
 * so a wrong execution shows. */
typedef unsigned long u64;
typedef unsigned int u32;

static void exit_(long status) {
    register long a0 __asm__("a0") = status;
    register long a7 __asm__("a7") = 93;
    __asm__ volatile("ecall" : : "r"(a0), "r"(a7));
    for (;;) {}
}

static unsigned char buf[4096];
static u32 table[256];

static u32 crc32(int rounds) {
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (unsigned char)(i * 7 + 3);
    u32 crc = 0xFFFFFFFFu;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < (int)sizeof buf; i++) crc = table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static char sieve_flags[65536];

static long sieve(int n) {
    long count = 0;
    for (int i = 2; i < n; i++) sieve_flags[i] = 1;
    for (int i = 2; i < n; i++) {
        if (sieve_flags[i]) {
            count++;
            for (int j = i + i; j < n; j += i) sieve_flags[j] = 0;
        }
    }
    return count;
}

#define N 64
static long ma[N][N], mb[N][N], mc[N][N];

static long matmul(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) { ma[i][j] = i + j; mb[i][j] = i - j; }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            long s = 0;
            for (int k = 0; k < N; k++) s += ma[i][k] * mb[k][j];
            mc[i][j] = s;
        }
    long t = 0;
    for (int i = 0; i < N; i++) t += mc[i][i] * (i + 1) + mc[i][N - 1 - i];
    return t;
}

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* The A extension: amoadd.d, a compare-and-swap (an lr.d/sc.d loop) and amoswap.d per turn. */
static long shared_word;

static long atomics(int n) {
    long t = 0;
    for (int i = 0; i < n; i++) {
        __atomic_fetch_add(&shared_word, i, __ATOMIC_SEQ_CST);
        long seen = __atomic_load_n(&shared_word, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&shared_word, &seen, seen ^ i, 0, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST)) {
        }
        t += __atomic_exchange_n(&shared_word, t, __ATOMIC_SEQ_CST);
    }
    return t + shared_word;
}

/* Double-precision dot products (gcc contracts the loop body into fmadd.d). */
#define FN 1024
static double fa[FN], fb[FN];

static long fdot(void) {
    for (int i = 0; i < FN; i++) {
        fa[i] = (double)i * 0.5 + 1.0;
        fb[i] = 1.0 / (double)(i + 1);
    }
    double s = 0.0;
    for (int r = 0; r < 16; r++)
        for (int i = 0; i < FN; i++) s += fa[i] * fb[i];
    return (long)s;
}

/* SCALE multiplies the work (bench_native.py builds two scales to measure marginal speed). */
#ifndef SCALE
#define SCALE 1
#endif

void _start(void) {
    long result = 0;
    for (int s = 0; s < SCALE; s++) {
#if defined(KERNEL_CRC)
        result += crc32(64);
#elif defined(KERNEL_SIEVE)
        result += sieve(65536);
#elif defined(KERNEL_FIB)
        result += fib(24);
#elif defined(KERNEL_ATOMIC)
        result += atomics(100000);
#elif defined(KERNEL_FDOT)
        result += fdot();
#else
        result += matmul() >> 5;
#endif
    }
    exit_(result & 0xff);
}
