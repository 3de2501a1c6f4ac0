/* Threads that wait for each other through descriptors: a blocking read of a pipe another thread
 * fills later, epoll over a pipe and an eventfd, and a timed epoll_wait that times out. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int data_pipe[2];
static int efd;

static void *reader(void *arg) {
    (void)arg;
    char buf[64];
    size_t got = 0;
    while (got < 10) {
        ssize_t n = read(data_pipe[0], buf + got, sizeof buf - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = 0;
    printf("reader got %zu bytes: %s\n", got, buf);
    return NULL;
}

static void *signaller(void *arg) {
    (void)arg;
    usleep(3000);
    uint64_t one = 1;
    write(efd, &one, sizeof one);
    return NULL;
}

int main(void) {
    pipe(data_pipe);
    pthread_t r;
    pthread_create(&r, NULL, reader, NULL);
    usleep(2000); /* the reader is blocked in read() by now */
    write(data_pipe[1], "hello", 5);
    usleep(1000);
    write(data_pipe[1], "world", 5);
    pthread_join(r, NULL);

    efd = eventfd(0, EFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    struct epoll_event got[4];
    int none = epoll_wait(ep, got, 4, 5); /* nobody writes yet: times out */
    pthread_t s;
    pthread_create(&s, NULL, signaller, NULL);
    int n = epoll_wait(ep, got, 4, -1);
    uint64_t value = 0;
    read(efd, &value, sizeof value);
    pthread_join(s, NULL);
    printf("timed out with %d events; then %d event, data %llu, counter %llu\n", none, n,
           (unsigned long long)got[0].data.u64, (unsigned long long)value);
    struct epoll_event bad = {.events = EPOLLIN};
    int rc = epoll_ctl(ep, EPOLL_CTL_ADD, ep, &bad);
    printf("an epoll watching itself: %d\n", rc);
    return 0;
}
