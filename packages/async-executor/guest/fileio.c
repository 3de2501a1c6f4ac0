/* File I/O: fopen/fwrite/fread/fseek/ftell/unlink, stat, directories, rename, in /tmp or the root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[256], path2[256];
    snprintf(path, sizeof path, "%s/ae_fileio_test.txt", dir);
    snprintf(path2, sizeof path2, "%s/ae_fileio_renamed.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) { perror("fopen w"); return 1; }
    for (int i = 0; i < 100; i++) fprintf(f, "line %03d\n", i);
    fwrite("tail", 1, 4, f);
    fclose(f);
    struct stat st;
    if (stat(path, &st) != 0) { perror("stat"); return 1; }
    printf("size %ld regular %d\n", (long)st.st_size, S_ISREG(st.st_mode));
    f = fopen(path, "r+");
    fseek(f, 9 * 50, SEEK_SET);
    char buf[32] = {0};
    size_t got = fread(buf, 1, 8, f);
    printf("read %zu [%s] tell %ld\n", got, buf, ftell(f));
    fseek(f, -4, SEEK_END);
    memset(buf, 0, sizeof buf);
    fread(buf, 1, 10, f);
    printf("end [%s] eof %d\n", buf, feof(f));
    fseek(f, 0, SEEK_SET);
    fputs("LINE", f);
    fclose(f);
    int fd = open(path, O_RDONLY);
    memset(buf, 0, sizeof buf);
    read(fd, buf, 12);
    printf("raw [%.*s]\n", 8, buf);
    printf("lseek %ld\n", (long)lseek(fd, 0, SEEK_END));
    close(fd);
    if (rename(path, path2) != 0) { perror("rename"); return 1; }
    printf("old exists %d\n", access(path, F_OK) == 0);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/ae_fileio_dir", dir);
    mkdir(sub, 0755);
    DIR *d = opendir(dir);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, "ae_fileio_renamed.txt") == 0 || strcmp(e->d_name, "ae_fileio_dir") == 0) seen++;
    closedir(d);
    printf("readdir saw %d\n", seen);
    printf("rmdir %d\n", rmdir(sub));
    printf("unlink %d\n", unlink(path2));
    errno = 0;
    printf("unlink again %d errno %s\n", unlink(path2), strerror(errno));
    printf("open missing %d errno %s\n", open("/no/such/file", O_RDONLY) >= 0, strerror(errno));
    int p[2];
    pipe(p);
    write(p[1], "piped", 5);
    memset(buf, 0, sizeof buf);
    read(p[0], buf, 5);
    printf("pipe [%s]\n", buf);
    fd = open("/dev/null", O_WRONLY);
    printf("devnull write %ld\n", (long)write(fd, "xyz", 3));
    close(fd);
    return 0;
}
