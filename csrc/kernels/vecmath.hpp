// Short vectors and the elementwise maths the kernels need (exp, sqrt, abs, select),
// written once with GCC/Clang vector extensions: the same source becomes SSE2, AVX2 or
// AVX-512 code depending on the flags of the translation unit that includes it.
// Included only inside the per-ISA namespace opened by engine.hpp.

#if defined(__AVX512F__)
inline constexpr int kVecBytes = 64;
#elif defined(__AVX2__)
inline constexpr int kVecBytes = 32;
#else
inline constexpr int kVecBytes = 16;
#endif
// Vector registers the compiler can keep tiles in (zmm0-31 with AVX-512, else 16).
inline constexpr int kVecRegisters = kVecBytes == 64 ? 32 : 16;

template <class T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
  typedef std::int32_t itype __attribute__((vector_size(kVecBytes)));
  static constexpr int lanes = kVecBytes / 4;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
  typedef std::int64_t itype __attribute__((vector_size(kVecBytes)));
  static constexpr int lanes = kVecBytes / 8;
};
template <class T>
using vec_t = typename Vec<T>::type;
template <class T>
using ivec_t = typename Vec<T>::itype;

template <class T>
static inline __attribute__((always_inline)) vec_t<T> vload(const T* p) {
  vec_t<T> v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
static inline __attribute__((always_inline)) void vstore(T* p, vec_t<T> v) {
  __builtin_memcpy(p, &v, sizeof v);
}
// v loaded into a register once, where it is reused: GCC otherwise folds the load into
// every FMA that reads v as a memory operand, one load per use (a 2-row by 6-class tile
// then made 14 loads per 12 FMAs instead of 8, and the loads set the pace).
template <class T>
static inline __attribute__((always_inline)) vec_t<T> vload_pinned(const T* p) {
  vec_t<T> v = vload<T>(p);
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+v"(v));
#endif
  return v;
}
// Scalar-vector arithmetic is a broadcast in GCC's vector extensions, and x - 0 is exactly
// x (also for -0 and NaN), so this folds to one vbroadcast; a lane-by-lane loop does not.
template <class T>
static inline __attribute__((always_inline)) vec_t<T> vbroadcast(T x) {
  return x - vec_t<T>{};
}
template <class T>
static inline __attribute__((always_inline)) vec_t<T> vmax(vec_t<T> a, vec_t<T> b) {
  return a > b ? a : b;
}
template <class T>
static inline __attribute__((always_inline)) vec_t<T> vmin(vec_t<T> a, vec_t<T> b) {
  return a < b ? a : b;
}
template <class T>
static inline __attribute__((always_inline)) vec_t<T> vabs(vec_t<T> a) {
  // Clear the sign bit: one AND, no branch.
  const ivec_t<T> mask = ~(ivec_t<T>(vbroadcast<T>(T(-0.0))));
  return vec_t<T>(ivec_t<T>(a) & mask);
}
template <class T>
static inline __attribute__((always_inline)) T vhsum(vec_t<T> a) {
  // A fixed order, so that results do not depend on how work was split.
  T s = 0;
  for (int l = 0; l < Vec<T>::lanes; ++l) s += a[l];
  return s;
}

static inline __attribute__((always_inline)) vec_t<float> vsqrt(vec_t<float> a) {
#if defined(__AVX512F__)
  return vec_t<float>(_mm512_sqrt_ps(__m512(a)));
#elif defined(__AVX__)
  return vec_t<float>(_mm256_sqrt_ps(__m256(a)));
#elif defined(__SSE2__)
  return vec_t<float>(_mm_sqrt_ps(__m128(a)));
#else
  for (int l = 0; l < Vec<float>::lanes; ++l) a[l] = __builtin_sqrtf(a[l]);
  return a;
#endif
}
static inline __attribute__((always_inline)) vec_t<double> vsqrt(vec_t<double> a) {
#if defined(__AVX512F__)
  return vec_t<double>(_mm512_sqrt_pd(__m512d(a)));
#elif defined(__AVX__)
  return vec_t<double>(_mm256_sqrt_pd(__m256d(a)));
#elif defined(__SSE2__)
  return vec_t<double>(_mm_sqrt_pd(__m128d(a)));
#else
  for (int l = 0; l < Vec<double>::lanes; ++l) a[l] = __builtin_sqrt(a[l]);
  return a;
#endif
}

// exp for float: Cephes' expf (range reduction by ln 2 in two parts, degree-5 polynomial
// for e^r - 1 - r), about 1 ulp. Rounding to the nearest integer uses the 1.5 * 2^23 trick,
// which also leaves the integer in the low mantissa bits, so 2^n needs no conversion.
static inline __attribute__((always_inline)) vec_t<float> vexp(vec_t<float> x) {
  using V = vec_t<float>;
  using I = ivec_t<float>;
  const V lo = vbroadcast<float>(-87.33654f), hi = vbroadcast<float>(88.37626f);
  const I underflow = x < lo;
  x = vmin<float>(vmax<float>(x, lo), hi);
  const V magic = vbroadcast<float>(12582912.0f);  // 1.5 * 2^23
  const V t = x * 1.44269504088896341f + magic;
  const V n = t - magic;
  V r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = vbroadcast<float>(1.9875691500E-4f);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  const V y = p * (r * r) + r + 1.0f;
  const I e = (I(t) - I(magic) + 127) << 23;
  const V result = y * V(e);
  return underflow ? V{} : result;
}

// exp for double: the same reduction, then a degree-12 Taylor polynomial (error below
// 2e-16 relative for |r| <= ln2 / 2).
static inline __attribute__((always_inline)) vec_t<double> vexp(vec_t<double> x) {
  using V = vec_t<double>;
  using I = ivec_t<double>;
  const V lo = vbroadcast<double>(-708.39), hi = vbroadcast<double>(709.43);
  const I underflow = x < lo;
  x = vmin<double>(vmax<double>(x, lo), hi);
  const V magic = vbroadcast<double>(6755399441055744.0);  // 1.5 * 2^52
  const V t = x * 1.4426950408889634074 + magic;
  const V n = t - magic;
  V r = x - n * 6.93145751953125E-1;
  r = r - n * 1.42860682030941723212E-6;
  V p = vbroadcast<double>(1.0 / 479001600.0);  // 1/12!
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const I e = (I(t) - I(magic) + 1023) << 52;
  const V result = p * V(e);
  return underflow ? V{} : result;
}

// acos has no cheap vector form worth its accuracy cost here; the arc-cosine kernel is
// not on a hot path, so it calls libm lane by lane.
static inline vec_t<float> vacos(vec_t<float> c) {
  for (int l = 0; l < Vec<float>::lanes; ++l) c[l] = __builtin_acosf(c[l]);
  return c;
}
static inline vec_t<double> vacos(vec_t<double> c) {
  for (int l = 0; l < Vec<double>::lanes; ++l) c[l] = __builtin_acos(c[l]);
  return c;
}
