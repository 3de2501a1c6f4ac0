/* Signals a program sends itself: handlers (signal, sigaction with SA_SIGINFO), masks, pending
   delivery on unblock, SA_RESETHAND, SIG_IGN, siglongjmp out of a handler, abort() via a handler. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static volatile int last_sig, last_code;
static sigjmp_buf jump;

static void counter(int sig) { hits++; last_sig = sig; }
static void info_handler(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    last_sig = info->si_signo;
    last_code = info->si_code;
    hits += 10;
    (void)sig;
}
static void jumper(int sig) { siglongjmp(jump, sig); }
static void on_abort(int sig) { printf("SIGABRT handler ran (%d)\n", sig); fflush(stdout); }

int main(int argc, char **argv) {
    signal(SIGUSR1, counter);
    raise(SIGUSR1);
    printf("after raise: hits=%d sig=%d\n", hits, last_sig);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = info_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    kill(getpid(), SIGUSR2);
    printf("sa_siginfo: hits=%d signo=%d code_is_tkill=%d\n", hits, last_sig, last_code == SI_TKILL || last_code == SI_USER);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    printf("blocked: hits=%d\n", hits);
    sigset_t pend;
    sigpending(&pend);
    printf("pending SIGUSR1: %d\n", sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: hits=%d\n", hits);

    signal(SIGTERM, SIG_IGN);
    raise(SIGTERM);
    puts("SIGTERM ignored");

    sa.sa_handler = counter;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGHUP, &sa, NULL);
    raise(SIGHUP);
    struct sigaction now;
    sigaction(SIGHUP, NULL, &now);
    printf("resethand: hits=%d reset=%d\n", hits, now.sa_handler == SIG_DFL);

    signal(SIGALRM, jumper);
    int r = sigsetjmp(jump, 1);
    if (r == 0) {
        raise(SIGALRM);
        puts("not reached");
    }
    printf("siglongjmp out of handler: %d\n", r);
    sigprocmask(SIG_SETMASK, NULL, &old);
    printf("SIGALRM blocked after siglongjmp: %d\n", sigismember(&old, SIGALRM));

    double x = 1.5;
    for (int i = 0; i < 3; i++) { raise(SIGUSR1); x *= 1.25; }
    printf("fp state survives handlers: %.4f hits=%d\n", x, hits);

    if (argc > 1 && strcmp(argv[1], "abort") == 0) {
        signal(SIGABRT, on_abort);
        abort();
    }
    return 0;
}
