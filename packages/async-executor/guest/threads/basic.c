/* Threads: create/join with results, a mutex-protected counter, contended atomics, thread-local
 * storage, detached threads that signal completion through a semaphore, thread ids. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 6
#define ROUNDS 4000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static atomic_long atomic_counter;
static atomic_int cas_counter;
static __thread long tls_value = 7;
static sem_t detached_done;
static atomic_int distinct_tids;

static void *worker(void *arg) {
    long id = (long)arg;
    tls_value = id * 100;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter += id;
        pthread_mutex_unlock(&lock);
        atomic_fetch_add_explicit(&atomic_counter, 1, memory_order_relaxed);
        int seen = atomic_load(&cas_counter);
        while (!atomic_compare_exchange_weak(&cas_counter, &seen, seen + 1)) {
        }
    }
    if (syscall(SYS_gettid) != getpid()) atomic_fetch_add(&distinct_tids, 1);
    return (void *)(tls_value + id); /* each thread saw only its own tls_value */
}

static void *detached(void *arg) {
    (void)arg;
    sem_post(&detached_done);
    return NULL;
}

int main(void) {
    pthread_t tids[THREADS];
    sem_init(&detached_done, 0, 0);
    for (long i = 0; i < THREADS; i++) {
        if (pthread_create(&tids[i], NULL, worker, (void *)(i + 1)) != 0) return 10;
    }
    long results = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        if (pthread_join(tids[i], &r) != 0) return 11;
        results += (long)r;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, detached, NULL) != 0) return 12;
    }
    for (int i = 0; i < 4; i++) sem_wait(&detached_done);
    printf("counter %ld atomic %ld cas %d\n", counter, (long)atomic_counter, (int)cas_counter);
    printf("results %ld main tls %ld threads with their own tid %d\n", results, tls_value,
           (int)distinct_tids);
    return 0;
}
