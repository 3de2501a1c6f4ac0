/* 64- and 32-bit division and remainder edge cases, through volatile so nothing folds. */
#include <stdint.h>
#include <stdio.h>
#include <inttypes.h>

int main(void) {
    volatile int64_t min = INT64_MIN, m1 = -1, zero = 0, seven = 7, negseven = -7, two = 2;
    volatile uint64_t umax = UINT64_MAX, uzero = 0, three = 3;
    volatile int32_t min32 = INT32_MIN, m132 = -1, zero32 = 0;
    printf("min/-1 %" PRId64 " min%%-1 %" PRId64 "\n", min / m1, min % m1);
    printf("7/0 %" PRId64 " 7%%0 %" PRId64 "\n", seven / zero, seven % zero);
    printf("-7/0 %" PRId64 " -7%%0 %" PRId64 "\n", negseven / zero, negseven % zero);
    printf("-7/2 %" PRId64 " -7%%2 %" PRId64 "\n", negseven / two, negseven % two);
    printf("umax/0 %" PRIu64 " umax%%0 %" PRIu64 "\n", umax / uzero, umax % uzero);
    printf("umax/3 %" PRIu64 " umax%%3 %" PRIu64 "\n", umax / three, umax % three);
    printf("min32/-1 %" PRId32 " min32%%-1 %" PRId32 "\n", min32 / m132, min32 % m132);
    printf("x32/0 %" PRId32 " x32%%0 %" PRId32 "\n", min32 / zero32, min32 % zero32);
    printf("mulh %" PRId64 " %" PRIu64 "\n", (int64_t)(((__int128)min * min) >> 64), (uint64_t)(((unsigned __int128)umax * umax) >> 64));
    printf("shift %" PRId64 " %" PRIu64 "\n", min >> 63, (uint64_t)min >> 63);
    return 0;
}
