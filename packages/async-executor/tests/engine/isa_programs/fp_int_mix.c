/* ISA stress program: FP edge values and libm, __int128, atomics, jump tables, rounding modes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdatomic.h>
#include <fenv.h>
#include <stdint.h>
typedef unsigned __int128 u128;
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return (x>y)-(x<y);}
int sw(int k){switch(k){case 0:return 11;case 1:return 23;case 2:return 5;case 3:return 99;case 4:return -4;case 5:return 7;case 6:return 1;default:return 0;}}
int main(int argc, char**argv){
  volatile double d[]={0.0,-0.0,1e-310,3.5,-2.25,1e308,INFINITY,-INFINITY,NAN,0.1,1.0/3};
  for(int i=0;i<11;i++){double x=d[i];
    printf("%g %a %g %g %g %g %ld %d\n", x, x, sqrt(x), x*x, x/3, fma(x,x,0.5), (long)(isfinite(x)&&fabs(x)<1e18?x:0), (int)fpclassify(x));
    float f=(float)x; printf("f %g %a %g %g %.9g\n",(double)f,(double)f, (double)sqrtf(f),(double)fmaf(f,f,0.25f),(double)(f/7.0f));
    printf("lib %.17g %.17g %.17g %.17g\n", sin(x), exp(x), log(fabs(x)+1), pow(fabs(x),0.37));
  }
  long double ld=1.0L; for(int i=1;i<30;i++) ld*=i; printf("ld %Lg %.30Lf\n", ld, 1.0L/3);
  u128 a=(u128)0xFFFFFFFFFFFFFFFFull*0x123456789ABCDEFull; u128 q=a/0x1234567; printf("i128 %llx %llx %llx\n",(unsigned long long)(a>>64),(unsigned long long)a,(unsigned long long)(q%1000000007));
  long long mn=INT64_MIN; volatile long long m1=-1, z=0; printf("div %lld %lld\n", mn/(m1+2), mn%(m1+3));
  (void)z;
  atomic_long al=5; atomic_fetch_add(&al,7); atomic_fetch_xor(&al,3); long exp=15; atomic_compare_exchange_strong(&al,&exp,100); printf("atomic %ld %ld\n",(long)atomic_load(&al),exp);
  atomic_int ai=-3; atomic_fetch_and(&ai,0x7f); atomic_fetch_or(&ai,0x100); printf("ai %d\n",atomic_load(&ai));
  double arr[200]; srand(42); for(int i=0;i<200;i++) arr[i]=(rand()%10000)/7.0-500; qsort(arr,200,sizeof(double),cmp); printf("qs %g %g %g\n",arr[0],arr[100],arr[199]);
  int s=0; for(int i=0;i<100;i++) s+=sw(i%9)*i; printf("sw %d\n",s);
  for(int r=0;r<4;r++){ int modes[]={FE_TONEAREST,FE_TOWARDZERO,FE_DOWNWARD,FE_UPWARD}; fesetround(modes[r]); volatile double x=1.0, y=3.0; volatile float fx=2.0f; printf("rm %d %.20g %.20g %ld %.10g\n", r, x/y, -x/y, lrint(2.5), (double)(fx/3.0f)); }
  fesetround(FE_TONEAREST); feclearexcept(FE_ALL_EXCEPT); volatile double zz=0; volatile double r=1/zz; printf("exc %d %d %g\n", fetestexcept(FE_DIVBYZERO)!=0, fetestexcept(FE_INEXACT)!=0, r);
  char buf[100]; snprintf(buf,sizeof buf,"%.3e|%-8.2f|%+d|%x|%o|%s", 12345.678, -3.14159, 42, 255u, 8u, "str"); puts(buf);
  printf("strtod %.17g %.17g\n", strtod("1.7976931348623157e308",0), strtod("4.9e-324",0));
  uint64_t h=1469598103934665603ull; for(int i=0;i<1000;i++){h^=i; h*=1099511628211ull; h=(h<<13)|(h>>51);} printf("hash %llx %d %d\n",(unsigned long long)h, __builtin_popcountll(h), __builtin_clzll(h|1));
  unsigned u=0xdeadbeef; int si=-123456; printf("conv %u %d %f %f %u %d\n", (unsigned)(float)u, (int)(double)si, (double)u, (float)si, (unsigned)(double)4e9, (int)-2.7);
  return (int)(h&0x7f);
}
