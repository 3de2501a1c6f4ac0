/* Two threads take two mutexes in opposite orders and wait for each other forever. Under Linux
 * this process hangs; the executor ends it with a deadlock error (status 125). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both_hold_one;

static void *first(void *arg) {
    (void)arg;
    pthread_mutex_lock(&a);
    pthread_barrier_wait(&both_hold_one);
    pthread_mutex_lock(&b);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_barrier_init(&both_hold_one, NULL, 2);
    pthread_create(&t, NULL, first, NULL);
    pthread_mutex_lock(&b);
    pthread_barrier_wait(&both_hold_one);
    puts("both threads hold one lock");
    fflush(stdout);
    pthread_mutex_lock(&a);
    pthread_join(t, NULL);
    return 0;
}
