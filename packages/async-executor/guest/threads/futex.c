/* The futex operations glibc no longer uses but other runtimes do, called directly: WAIT and
 * WAKE, CMP_REQUEUE, WAKE_OP, bitsets, timeouts and EAGAIN. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long futex(atomic_uint *addr, int op, unsigned val, uintptr_t val2, atomic_uint *addr2,
                  unsigned val3) {
    long r = syscall(SYS_futex, addr, op, val, val2, addr2, val3);
    return r < 0 ? -errno : r;
}

static atomic_uint a, b, c, d, ready, woke;

static void *wait_on_a(void *arg) {
    (void)arg;
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&a) == 0) futex(&a, FUTEX_WAIT_PRIVATE, 0, 0, NULL, 0);
    atomic_fetch_add(&woke, 1);
    return NULL;
}

static void *wait_on_c(void *arg) {
    (void)arg;
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&c) == 0) futex(&c, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, NULL, 0x2);
    atomic_fetch_add(&woke, 1);
    return NULL;
}

static void settle(unsigned count) {
    while (atomic_load(&ready) < count) sched_yield();
    usleep(20000); /* let every waiter reach its futex wait */
}

int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, wait_on_a, NULL);
    settle(4);
    atomic_store(&a, 1);
    long requeued = futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 3, &b, 1);
    long stale = futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 3, &b, 7);
    long woken_b = futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX, 0, NULL, 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("cmp_requeue %ld (stale value: %ld), wake on b %ld, woke %u\n", requeued, stale,
           woken_b, atomic_load(&woke));

    atomic_store(&ready, 0);
    atomic_store(&woke, 0);
    pthread_t w;
    pthread_create(&w, NULL, wait_on_c, NULL);
    settle(1);
    long wrong_bits = futex(&c, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, NULL, 0x1);
    atomic_store(&c, 1);
    atomic_store(&d, 10);
    /* d += 5; wake one on c; and one on d if d's old value > 3 (nobody waits on d). */
    unsigned op = FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_GT, 3);
    long wake_op = futex(&c, FUTEX_WAKE_OP_PRIVATE, 1, 1, &d, op);
    pthread_join(w, NULL);
    printf("wake with other bits %ld, wake_op %ld, d %u, woke %u\n", wrong_bits, wake_op,
           atomic_load(&d), atomic_load(&woke));

    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    atomic_uint zero = 0;
    long timed = futex(&zero, FUTEX_WAIT_PRIVATE, 0, (uintptr_t)&ten_ms, NULL, 0);
    long again = futex(&zero, FUTEX_WAIT_PRIVATE, 1, 0, NULL, 0);
    long misaligned = futex((atomic_uint *)((char *)&zero + 1), FUTEX_WAKE_PRIVATE, 1, 0, NULL, 0);
    printf("timed wait %s, changed value %s, misaligned %s\n",
           timed == -ETIMEDOUT ? "ETIMEDOUT" : "?", again == -EAGAIN ? "EAGAIN" : "?",
           misaligned == -EINVAL ? "EINVAL" : "?");
    return 0;
}
