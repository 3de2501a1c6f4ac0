/* string.h, ctype.h, stdlib conversions, snprintf. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char buf[128];
    const char *s = "The quick brown fox jumps over the lazy dog";
    printf("len %zu\n", strlen(s));
    printf("strchr %s\n", strchr(s, 'q'));
    printf("strrchr %s\n", strrchr(s, 'o'));
    printf("strstr %s\n", strstr(s, "fox"));
    printf("cmp %d %d %d\n", strcmp("abc", "abd") < 0, strcmp("b", "a") > 0, strncmp("abcx", "abcy", 3));
    strcpy(buf, s);
    for (char *p = buf; *p; p++) *p = (char)toupper((unsigned char)*p);
    printf("upper %s\n", buf);
    memmove(buf + 4, buf, 10);
    buf[20] = 0;
    printf("memmove %s\n", buf);
    strcat(strcpy(buf, "con"), "cat");
    printf("cat %s\n", buf);
    char copy[64];
    strncpy(copy, s, 9); copy[9] = 0;
    printf("strncpy [%s]\n", copy);
    char tok[] = "a,bb,,ccc";
    for (char *t = strtok(tok, ","); t; t = strtok(NULL, ",")) printf("tok %s\n", t);
    printf("strtol %ld %ld %lu\n", strtol("-123xyz", NULL, 10), strtol("ff", NULL, 16), strtoul("777", NULL, 8));
    printf("atoi %d\n", atoi("  42"));
    printf("strtod %.3f\n", strtod("3.14159", NULL));
    int n = snprintf(buf, 10, "%s-%d", "truncated", 12345);
    printf("snprintf %d [%s]\n", n, buf);
    printf("memcmp %d\n", memcmp("abc", "abc", 3));
    char big[1000];
    memset(big, 'x', sizeof big);
    big[999] = 0;
    printf("memset %zu %c\n", strlen(big), big[500]);
    return 0;
}
