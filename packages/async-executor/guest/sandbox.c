/* Tries to leave the guest root; prints what each attempt returns (errno names). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void try_open(const char *path) {
    errno = 0;
    int fd = open(path, O_RDONLY);
    printf("open %s -> %s\n", path, fd >= 0 ? "ok" : strerror(errno));
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) try_open(argv[i]);
    char buf[256];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    printf("readlink /proc/self/exe ok %d\n", n > 0);
    if (getcwd(buf, sizeof buf)) printf("cwd %s\n", buf);
    printf("chdir .. %d\n", chdir(".."));
    if (getcwd(buf, sizeof buf)) printf("cwd %s\n", buf);
    return 0;
}
