/* Synchronisation: a bounded queue with condition variables, barriers, a read-write lock,
 * pthread_once, and a recursive mutex; the output does not depend on the interleaving. */
#include <pthread.h>
#include <stdio.h>

#define ITEMS 3000
#define CONSUMERS 3
#define SLOTS 8

static int queue[SLOTS];
static int head, tail, count, done;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static long consumed_sum[CONSUMERS];

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&qlock);
        while (count == SLOTS) pthread_cond_wait(&not_full, &qlock);
        queue[tail] = i;
        tail = (tail + 1) % SLOTS;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qlock);
    }
    pthread_mutex_lock(&qlock);
    done = 1;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&qlock);
    return NULL;
}

static void *consumer(void *arg) {
    long id = (long)arg;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (count == 0 && !done) pthread_cond_wait(&not_empty, &qlock);
        if (count == 0 && done) {
            pthread_mutex_unlock(&qlock);
            return NULL;
        }
        int item = queue[head];
        head = (head + 1) % SLOTS;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qlock);
        consumed_sum[id] += item;
    }
}

#define PHASES 5
#define PARTIES 4
static pthread_barrier_t barrier;
static int phase_arrivals[PHASES];
static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static int serial_count;

static void *phased(void *arg) {
    (void)arg;
    for (int p = 0; p < PHASES; p++) {
        pthread_mutex_lock(&plock);
        phase_arrivals[p]++;
        pthread_mutex_unlock(&plock);
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
            pthread_mutex_lock(&plock);
            serial_count++;
            /* Everyone of this phase arrived before anyone passed the barrier. */
            if (phase_arrivals[p] != PARTIES) printf("barrier broken in phase %d\n", p);
            pthread_mutex_unlock(&plock);
        }
    }
    return NULL;
}

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long shared_value;
static long reads_consistent = 1;

static void *reader(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        pthread_rwlock_rdlock(&rw);
        long a = shared_value;
        long b = shared_value;
        if (a != b || a % 2) reads_consistent = 0;
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}

static void *writer(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        pthread_rwlock_wrlock(&rw);
        shared_value++;
        shared_value++; /* odd only inside the write lock */
        pthread_rwlock_unlock(&rw);
    }
    return NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static void init_once(void) { once_runs++; }
static void *call_once(void *arg) {
    (void)arg;
    pthread_once(&once, init_once);
    return NULL;
}

int main(void) {
    pthread_t p, c[CONSUMERS];
    pthread_create(&p, NULL, producer, NULL);
    for (long i = 0; i < CONSUMERS; i++) pthread_create(&c[i], NULL, consumer, (void *)i);
    pthread_join(p, NULL);
    long total = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(c[i], NULL);
        total += consumed_sum[i];
    }
    printf("queue: consumed sum %ld (expected %ld)\n", total, (long)ITEMS * (ITEMS + 1) / 2);

    pthread_barrier_init(&barrier, NULL, PARTIES);
    pthread_t b[PARTIES];
    for (int i = 0; i < PARTIES; i++) pthread_create(&b[i], NULL, phased, NULL);
    for (int i = 0; i < PARTIES; i++) pthread_join(b[i], NULL);
    printf("barrier: %d phases, %d serial threads\n", PHASES, serial_count);

    pthread_t r[3], w[2];
    for (int i = 0; i < 3; i++) pthread_create(&r[i], NULL, reader, NULL);
    for (int i = 0; i < 2; i++) pthread_create(&w[i], NULL, writer, NULL);
    for (int i = 0; i < 3; i++) pthread_join(r[i], NULL);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    printf("rwlock: value %ld, reads consistent %ld\n", shared_value, reads_consistent);

    pthread_t o[4];
    for (int i = 0; i < 4; i++) pthread_create(&o[i], NULL, call_once, NULL);
    for (int i = 0; i < 4; i++) pthread_join(o[i], NULL);
    pthread_mutexattr_t ma;
    pthread_mutex_t rec;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &ma);
    pthread_mutex_lock(&rec);
    int again = pthread_mutex_lock(&rec);
    pthread_mutex_unlock(&rec);
    pthread_mutex_unlock(&rec);
    printf("once ran %d time(s); recursive relock %d\n", once_runs, again);
    return 0;
}
