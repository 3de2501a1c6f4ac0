/* Floating-point formatting (%f %e %g %a), arithmetic and libm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    volatile double third = 1.0 / 3.0, big = 1e300, tiny = 5e-324, neg = -0.0;
    printf("%f %e %g\n", third, third, third);
    printf("%.10f %.3e %.12g\n", M_PI, M_PI, M_PI);
    printf("%g %g %g %g\n", 100000.0, 1000000.0, 1e-4, 1e-5);
    printf("%e %g %e\n", big, big * 10, tiny);
    printf("%f %g\n", neg, neg);
    printf("%f %f %f\n", INFINITY, -INFINITY, NAN);
    printf("%a %a\n", 1.0, 0.1);
    printf("%.2f %.0f %.0f %.0f\n", 2.675, 0.5, 1.5, 2.5);
    float f = 1.1f;
    printf("%.9g %f\n", f, f * 3.0f);
    printf("sqrt %.15g sin %.15g exp %.15g log %.15g pow %.15g\n", sqrt(2.0), sin(1.0), exp(1.0), log(10.0), pow(2.0, 0.5));
    printf("floor %g ceil %g round %g trunc %g fmod %g\n", floor(-2.5), ceil(-2.5), round(-2.5), trunc(-2.5), fmod(7.5, 2.0));
    double acc = 0;
    for (int i = 1; i <= 1000; i++) acc += 1.0 / ((double)i * i);
    printf("basel %.15f\n", acc);
    float facc = 0;
    for (int i = 1; i <= 1000; i++) facc += 1.0f / (float)i;
    printf("harmonic %.7f\n", facc);
    printf("conv %d %ld %u %d\n", (int)-3.99, (long)1e18, (unsigned)3.7e9, (int)(float)16777217);
    printf("strtod %.17g\n", strtod("0.1", NULL));
    printf("fma %.17g\n", fma(0.1, 10.0, -1.0));
    return 0;
}
