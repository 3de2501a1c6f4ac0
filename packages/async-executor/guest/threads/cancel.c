/* Cancellation, signals to threads, timed waits, and a thread that ends the process. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static volatile int cleanup_ran;
static volatile sig_atomic_t usr1_in_thread;
static pthread_t signalled;

static void cleanup(void *arg) {
    (void)arg;
    cleanup_ran = 1;
    pthread_mutex_unlock(&lock);
}

static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    pthread_cleanup_push(cleanup, NULL);
    for (;;) pthread_cond_wait(&never, &lock); /* a cancellation point */
    pthread_cleanup_pop(1);
    return NULL;
}

static void on_usr1(int sig) {
    (void)sig;
    if (pthread_equal(pthread_self(), signalled)) usr1_in_thread = 1;
}

static volatile int stop_spinning;
static void *spin_until_signalled(void *arg) {
    (void)arg;
    while (!usr1_in_thread) sched_yield();
    return NULL;
}

static void *exit_process(void *arg) {
    (void)arg;
    fflush(stdout);
    exit(3); /* ends every thread, the main one blocked in a join */
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, wait_forever, NULL);
    usleep(2000);
    void *result;
    pthread_cancel(t);
    pthread_join(t, &result);
    printf("cancelled: %s, cleanup ran %d\n", result == PTHREAD_CANCELED ? "yes" : "no",
           cleanup_ran);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_create(&signalled, NULL, spin_until_signalled, NULL);
    pthread_kill(signalled, SIGUSR1);
    pthread_join(signalled, NULL);
    printf("SIGUSR1 handled in the target thread: %d\n", (int)usr1_in_thread);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 20 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&lock);
    int rc = pthread_cond_timedwait(&never, &lock, &deadline);
    pthread_mutex_unlock(&lock);
    printf("timed wait: %s\n", rc == ETIMEDOUT ? "timed out" : strerror(rc));

    pthread_t e;
    pthread_create(&e, NULL, exit_process, NULL);
    pthread_join(e, NULL);
    printf("not reached\n");
    return 0;
}
