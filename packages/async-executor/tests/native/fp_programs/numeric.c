/* Floating point for the native tier's whole-program test: hot loops of double and single
 * arithmetic (FMA-contracted by gcc -O2), conversions, compares, min/max, the accrued flags read
 * back through fenv, and a rounding mode other than RNE. Output must match qemu-riscv64. */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t bits_d(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static uint32_t bits_s(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }

static void flags(const char *what) {
    int f = fetestexcept(FE_ALL_EXCEPT);
    printf("%s flags:%s%s%s%s%s\n", what, f & FE_INVALID ? " NV" : "", f & FE_DIVBYZERO ? " DZ" : "",
           f & FE_OVERFLOW ? " OF" : "", f & FE_UNDERFLOW ? " UF" : "", f & FE_INEXACT ? " NX" : "");
    feclearexcept(FE_ALL_EXCEPT);
}

#define N 512
static double xs[N], ys[N], zs[N];
static float fx[N], fy[N];

struct body { double x, y, z, vx, vy, vz, m; };

static void nbody_step(struct body *b, int n, double dt) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * sqrt(d2));
            b[i].vx -= dx * b[j].m * mag; b[i].vy -= dy * b[j].m * mag; b[i].vz -= dz * b[j].m * mag;
            b[j].vx += dx * b[i].m * mag; b[j].vy += dy * b[i].m * mag; b[j].vz += dz * b[i].m * mag;
        }
    for (int i = 0; i < n; i++) {
        b[i].x += dt * b[i].vx; b[i].y += dt * b[i].vy; b[i].z += dt * b[i].vz;
    }
}

int main(void) {
    feclearexcept(FE_ALL_EXCEPT);
    for (int i = 0; i < N; i++) {
        xs[i] = (double)i / 7.0 - 20.0;
        ys[i] = sqrt((double)(i + 1)) * 1e-3;
        fx[i] = (float)i * 0.37f - 50.0f;
        fy[i] = 1.0f / (float)(i + 3);
    }
    flags("init");
    double dot = 0.0, s2 = 0.0;
    float fdot = 0.0f;
    for (int r = 0; r < 40; r++)
        for (int i = 0; i < N; i++) {
            dot += xs[i] * ys[i];
            s2 = fma(xs[i], xs[i], s2);
            fdot += fx[i] * fy[i];
            zs[i] = fmax(xs[i], ys[i]) - fmin(xs[i], -ys[i]);
        }
    printf("dot %.17g %016llx\n", dot, (unsigned long long)bits_d(dot));
    printf("s2 %.17g fdot %.9g %08x\n", s2, (double)fdot, bits_s(fdot));
    flags("dot");
    long cmp = 0;
    for (int i = 0; i + 1 < N; i++)
        cmp += (zs[i] < zs[i + 1]) + 2 * (zs[i] == zs[i + 1]) + 4 * (zs[i] <= 0.5);
    printf("cmp %ld\n", cmp);

    struct body b[5] = {
        {0, 0, 0, 0, 0, 0, 39.47},  {4.84, -1.16, -0.10, 0.606, 2.81, -0.02, 0.037},
        {8.34, 4.12, -0.40, -1.01, 1.82, 0.008, 0.011}, {12.89, -15.11, -0.22, 1.08, 0.868, -0.01, 0.0017},
        {15.37, -25.9, 0.179, 0.979, 0.594, -0.034, 0.002},
    };
    for (int s = 0; s < 2000; s++) nbody_step(b, 5, 0.01);
    for (int i = 0; i < 5; i++) printf("body %d %.15g %.15g %.15g\n", i, b[i].x, b[i].y, b[i].z);
    flags("nbody");

    /* Edge cases inside a hot loop: overflow, underflow, invalid, division by zero. */
    volatile double big = 1e300, tiny = 1e-300, zero = 0.0;
    double acc = 0;
    for (int i = 0; i < 300; i++) {
        double t = (i % 3 == 0) ? big * big : (i % 3 == 1) ? tiny * tiny * (double)i : 1.0 / (zero + (double)(i % 2));
        acc += isinf(t) ? 1.0 : t;
    }
    printf("edges %.17g\n", acc);
    flags("edges");
    volatile double nan = zero / zero;
    printf("nan %d %d %d\n", nan < 1.0, nan == nan, (int)fmin(nan, 3.0));
    flags("nan");

    /* Conversions in a loop. */
    long lsum = 0;
    unsigned usum = 0;
    float fsum = 0;
    for (int i = -300; i < 300; i++) {
        double v = i * 1.75 + 0.5;
        lsum += (long)v + lrint(v);
        usum += (unsigned)(v > 0 ? v : -v);
        fsum += (float)v + (float)i;
    }
    printf("conv %ld %u %.9g\n", lsum, usum, (double)fsum);
    flags("conv");

    /* A dynamic rounding mode other than RNE: native code must leave these to the interpreter. */
    fesetround(FE_UPWARD);
    double up = 0;
    for (int i = 1; i < 400; i++) up += 1.0 / (double)i;
    fesetround(FE_TOWARDZERO);
    float tz = 0;
    for (int i = 1; i < 400; i++) tz += 1.0f / (float)i;
    fesetround(FE_TONEAREST);
    printf("modes %.17g %.9g\n", up, (double)tz);
    flags("modes");
    return 0;
}
