/* More of what threaded glibc programs call: thread-specific data with destructors, spin locks,
 * a smaller stack, thread names, sem_timedwait and pthread_mutex_timedlock timing out, sigwait
 * in a thread for a signal another thread sends, and pthread_getattr_np on the main thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_key_t key;
static pthread_spinlock_t spin;
static long spun;
static sem_t sem;
static void destructor(void *p) { free(p); }

static void *keyed(void *arg) {
    long *v = malloc(sizeof *v);
    *v = (long)arg * 11;
    pthread_setspecific(key, v);
    for (int i = 0; i < 2000; i++) { pthread_spin_lock(&spin); spun++; pthread_spin_unlock(&spin); }
    return (void *)*(long *)pthread_getspecific(key);
}

static void *waiter(void *arg) {
    sigset_t set; int sig;
    sigemptyset(&set); sigaddset(&set, SIGUSR2);
    sigwait(&set, &sig);
    return (void *)(long)sig;
}

int main(void) {
    pthread_key_create(&key, destructor);
    pthread_spin_init(&spin, 0);
    pthread_attr_t attr; pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t[4]; long sum = 0;
    for (long i = 0; i < 4; i++) pthread_create(&t[i], &attr, keyed, (void *)(i + 1));
    for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("keys %ld spun %ld\n", sum, spun);
    pthread_setname_np(pthread_self(), "mainthr");
    char name[16] = {0}; pthread_getname_np(pthread_self(), name, sizeof name);
    printf("name %s\n", name);
    sem_init(&sem, 0, 0);
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); ts.tv_nsec += 5000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    int rc = sem_timedwait(&sem, &ts);
    printf("sem_timedwait %d %s\n", rc, rc ? strerror(errno) : "");
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_mutex_lock(&m);
    clock_gettime(CLOCK_REALTIME, &ts); ts.tv_nsec += 5000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    printf("timedlock %d\n", pthread_mutex_timedlock(&m, &ts) == ETIMEDOUT);
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t w; pthread_create(&w, NULL, waiter, NULL);
    usleep(2000);
    pthread_kill(w, SIGUSR2);
    void *got; pthread_join(w, &got);
    printf("sigwait got %ld\n", (long)got);
    pthread_attr_t a2; size_t ss = 0;
    pthread_getattr_np(pthread_self(), &a2); pthread_attr_getstacksize(&a2, &ss);
    printf("main stack known: %d\n", ss > 0);
    return 0;
}
