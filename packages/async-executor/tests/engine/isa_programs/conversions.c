/* ISA stress program: FP-to-int conversions in every static rounding mode with fflags, setjmp, misaligned memcpy/memmove, long double. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <math.h>
#include <stdint.h>
static jmp_buf jb;
static void deep(int n){ if(n==0) longjmp(jb, 42); deep(n-1); }
#define CV(ins, T, src, rm) ({ T r; __asm__ volatile(ins " %0, %1, " rm : "=r"(r) : "f"(src)); r; })
int main(void){
  double vals[] = {2.5, -2.5, 3.5, -0.5, 1e20, -1e20, 4294967295.7, -2147483648.6, NAN, INFINITY, 0.49999999999999994};
  unsigned fl;
  for (int i = 0; i < 11; i++) {
    double v = vals[i];
    __asm__ volatile("fsflags zero");
    long a = CV("fcvt.l.d", long, v, "rne"), b = CV("fcvt.l.d", long, v, "rtz"), c = CV("fcvt.l.d", long, v, "rdn"), d = CV("fcvt.l.d", long, v, "rup"), e = CV("fcvt.l.d", long, v, "rmm");
    int w = CV("fcvt.w.d", int, v, "rmm"); unsigned wu = CV("fcvt.wu.d", unsigned, v, "rup"); unsigned long lu = CV("fcvt.lu.d", unsigned long, v, "rdn");
    __asm__ volatile("frflags %0" : "=r"(fl));
    float f = (float)v;
    int fw = CV("fcvt.w.s", int, f, "rne"); long fl2 = CV("fcvt.l.s", long, f, "rmm");
    printf("%g: %ld %ld %ld %ld %ld %d %u %lu %d %ld fl=%u\n", v, a, b, c, d, e, w, wu, lu, fw, fl2, fl);
  }
  for (int rm = 0; rm < 5; rm++) {
    long xs[] = {0x7fffffffffffffffL, -0x7fffffffffffffffL - 1, 123456789012345679L, -3, 16777217};
    for (int j = 0; j < 5; j++) { double dd; float ff;
      switch (rm) {
        case 0: __asm__("fcvt.d.l %0, %1, rne" : "=f"(dd) : "r"(xs[j])); __asm__("fcvt.s.l %0, %1, rne" : "=f"(ff) : "r"(xs[j])); break;
        case 1: __asm__("fcvt.d.l %0, %1, rtz" : "=f"(dd) : "r"(xs[j])); __asm__("fcvt.s.l %0, %1, rtz" : "=f"(ff) : "r"(xs[j])); break;
        case 2: __asm__("fcvt.d.l %0, %1, rdn" : "=f"(dd) : "r"(xs[j])); __asm__("fcvt.s.l %0, %1, rdn" : "=f"(ff) : "r"(xs[j])); break;
        case 3: __asm__("fcvt.d.l %0, %1, rup" : "=f"(dd) : "r"(xs[j])); __asm__("fcvt.s.l %0, %1, rup" : "=f"(ff) : "r"(xs[j])); break;
        default: __asm__("fcvt.d.l %0, %1, rmm" : "=f"(dd) : "r"(xs[j])); __asm__("fcvt.s.l %0, %1, rmm" : "=f"(ff) : "r"(xs[j])); break;
      }
      printf("rm%d %a %a\n", rm, dd, (double)ff);
    }
  }
  int r = setjmp(jb); if (!r) deep(100); printf("setjmp %d\n", r);
  char src[300], dst[300]; for (int i = 0; i < 300; i++) src[i] = (char)(i * 13);
  unsigned sum = 0;
  for (int a = 0; a < 8; a++) for (int b = 0; b < 8; b++) for (int n = 0; n < 70; n += 7) {
    memset(dst, 0x5a, sizeof dst); memcpy(dst + a, src + b, n); memmove(dst + a + 1, dst + a, n);
    for (int i = 0; i < 300; i++) sum = sum * 31 + (unsigned char)dst[i];
    sum += (unsigned)memcmp(dst + a, src + b, n) + strlen(dst + 200);
  }
  printf("mem %u\n", sum);
  printf("strtol %ld %lu %ld\n", strtol("-0x7fffffffffffffff", 0, 16), strtoul("18446744073709551615", 0, 10), strtol("0777", 0, 0));
  long double x = 1.1L; for (int i = 0; i < 10; i++) x = x * x - 0.5L; printf("ld %.25Lg\n", x);
  float fs = 0; for (int i = 1; i < 1000; i++) fs += 1.0f / (float)i; printf("fs %.9g %.9g %.9g\n", (double)fs, (double)fminf(fs, NAN), (double)fmaxf(-0.0f, 0.0f));
  printf("%.17g %.17g %.17g %.17g\n", nextafter(1.0, 2.0), ldexp(1.0, -1074), frexp(12345.0, &r), (double)r);
  return 0;
}
