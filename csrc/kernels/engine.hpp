// The fused tiled engine, written once and compiled once per instruction set.
// BLIS-style: each thread packs a chunk of Z (NC columns, sized for L2) and, per micro-panel
// of MR rows of X, an MR x d panel; the micro-kernel holds an MR x NR tile of inner products
// (or distances) in registers, applies the kernel function there, and multiplies the tile
// into V before anything is written back. Memory beyond inputs and outputs: the packed
// panels, O((NC + MR) * (d + k)) per thread, independent of n and m.
//
// The including file defines GRAMFREE_ISA_NS; everything here lives in that namespace so
// that the AVX-512 instantiations can never be linked into the baseline path. For the same
// reason this file instantiates no standard-library templates.

#include <cstddef>
#include <cstdint>
#include <type_traits>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif
#include <omp.h>
#include <sched.h>

#include "engine_api.hpp"

namespace gramfree::GRAMFREE_ISA_NS {

using detail::CurvatureArgs;
using detail::EngineArgs;
using detail::Epilogue;
using detail::GemmArgs;
using detail::TrsmArgs;
using std::size_t;

#include "vecmath.hpp"

// The kernel formulas on vectors; vecmath.hpp supplies their vocabulary.
#define GRAMFREE_FORMULA inline __attribute__((always_inline))
#include "kernel_formulas.inc"
#undef GRAMFREE_FORMULA

static inline size_t smin(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t smax(size_t a, size_t b) { return a > b ? a : b; }
static inline size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

// Register tile: MR rows of X by NV vectors of Z columns. Accumulators MR*NV, plus NV
// loads of Z and one broadcast, must fit the register file (16 for SSE2/AVX2, 32 AVX-512).
#if defined(__AVX512F__)
inline constexpr int kMR = 12;
#else
inline constexpr int kMR = 6;
#endif
inline constexpr int kNV = 2;
template <class T>
inline constexpr int kNR = kNV* Vec<T>::lanes;

// Many right-hand sides: kernel values of kGroupCols columns are stored to a small MR x
// kGroupCols tile (L1) and multiplied into V by a register-blocked micro-GEMM whose MR x kKB
// accumulators (vectors along the right-hand sides) stay in registers across all those
// columns, one load and store per kGroupCols FMAs instead of one per FMA. kMR * kKB + kKB + 1
// registers: 27 of 32 (AVX-512), 15 of 16 (AVX2, SSE2).
inline constexpr int kKB = 2;
inline constexpr size_t kGroupCols = 128;  // a multiple of every kNR

// The wide path vectorizes along the right-hand sides, so k is padded to whole vectors;
// below half a vector the lane-wise path (vectors along the columns of Z) wastes less.
template <class T>
static constexpr bool wide_rhs(size_t k) {
  return 2 * k >= size_t(Vec<T>::lanes);
}
template <class T>
static constexpr size_t padded_rhs(size_t k) {
  return wide_rhs<T>(k) ? (k + Vec<T>::lanes - 1) / Vec<T>::lanes * Vec<T>::lanes : k;
}

// How a tile's pre-kernel quantity is formed from x and z: the table's metric, except that
// the expanded Gaussian accumulates inner products.
static constexpr Metric metric_of(Epilogue e) {
  return e.expand ? Metric::dot : kernel_table[static_cast<size_t>(e.kind)].metric;
}

// Which row norms the epilogue needs: squared (the Gaussian's expansion) or plain (the
// kernels whose formula takes norms).
enum class Norms { none, squared, plain };
static constexpr Norms norms_of(Epilogue e) {
  if (e.expand) return Norms::squared;
  return kernel_table[static_cast<size_t>(e.kind)].needs_norms ? Norms::plain : Norms::none;
}

// The kernel function applied to one vector of a tile row. s: inner product, squared
// distance or L1 distance (per metric_of); xn/zn: the norms of norms_of.
template <Epilogue E, class T>
static inline __attribute__((always_inline)) vec_t<T> apply(vec_t<T> s, T xn, vec_t<T> zn,
                                                            const Params<T>& p) {
  using F = Formula<E.kind>;
  if constexpr (E.expand) s = vmax<T>(xn + zn - s * T(2), vec_t<T>{});
  if constexpr (E.slope)
    return F::template slope<T>(s, p);
  else if constexpr (kernel_row<E.kind>.needs_norms)
    return F::template value<T>(s, xn, zn, p);
  else
    return F::template value<T>(s, p);
}

// One MR x NR tile of the metric over the full depth d. xp: d x MR (packed by rows of
// the depth), zp: d x NR. GCC keeps acc in registers once the loops are unrolled.
template <Metric M, class T>
static inline __attribute__((always_inline)) void tile(const T* __restrict xp,
                                                       const T* __restrict zp, size_t d,
                                                       vec_t<T> (&acc)[kMR][kNV]) {
  constexpr int L = Vec<T>::lanes;
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = vec_t<T>{};
  for (size_t t = 0; t < d; ++t) {
    vec_t<T> z[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) z[v] = vload<T>(zp + t * kNV * L + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vec_t<T> x = vbroadcast<T>(xp[t * kMR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) {
        if constexpr (M == Metric::dot) {
          acc[i][v] += x * z[v];
        } else if constexpr (M == Metric::sqdist) {
          const vec_t<T> diff = x - z[v];
          acc[i][v] += diff * diff;
        } else {
          acc[i][v] += vabs<T>(x - z[v]);
        }
      }
    }
  }
}

// Sizes of one thread's part of the workspace.
template <class T>
struct Layout {
  size_t nc;  // columns of Z per chunk (a multiple of NR)
  size_t zpack, znorm, vpack, xpack, xnorm, racc, ktile;  // element counts
  size_t per_thread;
  bool split_z;    // threads split the columns of Z (few rows of X) instead of the rows
  size_t chunks;   // chunks of Z: ceil(m / nc)
  size_t partial;  // split_z matvec: one n x k buffer per thread, after the threads' parts
};

template <class T>
static Layout<T> layout(const EngineArgs<T>& a) {
  constexpr size_t NR = kNR<T>;
  constexpr size_t align = 64 / sizeof(T);
  Layout<T> s{};
  const size_t threads = a.n_threads > 0 ? size_t(a.n_threads) : 1;
  const size_t x_panels = (a.n + kMR - 1) / kMR;
  const size_t kp = padded_rhs<T>(a.k);
  // Packed Z chunk (d + k + 1 values per column): 1 MiB. Each row panel of X is packed
  // once per chunk, so with many features a small chunk (256 KiB: two column panels at
  // d = 784) spent as long packing as multiplying; the Z panels a tile reads stream well
  // from L2 or L3 (benchmarks/bench_operators.py at d = 784: half a GEMM-based numpy
  // block's speed before, about its speed after).
  const size_t bytes_per_col = (a.d + kp + 1) * sizeof(T);
  size_t nc = (size_t(1) << 20) / bytes_per_col / NR * NR;
  nc = smin(smax(nc, NR), size_t(16384));
  // Not cut finer for threads that split Z (few rows of X): at least 8 chunks made such
  // products slower on 2 cores (more rounds of partial sums); it could pay only with many
  // more cores, which no measurement here covers.
  // nc depends on the shapes only, never on the thread count: the chunks are the unit of
  // summation, so every split of the work adds the same partial sums in the same order.
  s.nc = smin(nc, round_up(a.m, NR));
  s.chunks = (a.m + s.nc - 1) / s.nc;
  s.split_z = threads > 1 && x_panels < 2 * threads && s.chunks >= 2;
  s.zpack = round_up(s.nc * a.d, align);
  s.znorm = round_up(s.nc, align);
  s.vpack = round_up(s.nc * kp, align);
  s.xpack = round_up(kMR * a.d, align);
  s.xnorm = round_up(kMR, align);
  s.racc = round_up(size_t(kMR) * (wide_rhs<T>(a.k) ? kp : a.k * NR), align);
  s.ktile = wide_rhs<T>(a.k) ? round_up(size_t(kMR) * kGroupCols, align) : 0;
  s.per_thread = s.zpack + s.znorm + s.vpack + s.xpack + s.xnorm + s.racc + s.ktile;
  s.partial = s.split_z && a.V ? round_up(a.n * a.k, align) : 0;
  return s;
}

// The workspace, independent of n and m: per thread, a chunk of Z packed with its rows of
// V (nc (d + k + 1), nc sized for 1 MiB) and a panel of X with its accumulators
// (kMR (d + 2k) and a kMR x 128 tile for k >= half a vector); for a matvec whose threads
// split Z (fewer than 2 kMR rows per thread), one n x k buffer per thread as well.
template <class T>
static size_t workspace_elems(const EngineArgs<T>& a) {
  const size_t threads = a.n_threads > 0 ? size_t(a.n_threads) : 1;
  const Layout<T> s = layout(a);
  return (s.per_thread + s.partial) * threads;
}

// Pack rows [r0, r0 + count) of A (d columns) as depth-major panels of `width` rows,
// subtracting the shift; rows past count are zero. Also their norms if wanted.
template <Norms N, class T>
static void pack_rows(const T* A, size_t r0, size_t count, size_t d, size_t width, const T* shift,
                      T* __restrict dst, T* __restrict norms) {
  const size_t panels = (count + width - 1) / width;
  for (size_t p = 0; p < panels; ++p) {
    T* panel = dst + p * width * d;
    for (size_t r = 0; r < width; ++r) {
      const size_t row = p * width + r;
      T nrm = 0;
      if (row < count) {
        const T* src = A + (r0 + row) * d;
        for (size_t t = 0; t < d; ++t) {
          const T v = shift ? src[t] - shift[t] : src[t];
          panel[t * width + r] = v;
          nrm += v * v;
        }
      } else {
        for (size_t t = 0; t < d; ++t) panel[t * width + r] = T(0);
      }
      if constexpr (N == Norms::squared) norms[p * width + r] = nrm;
      if constexpr (N == Norms::plain) norms[p * width + r] = T(__builtin_sqrt(double(nrm)));
    }
  }
}

// V rows [c0, c0 + count) packed as NR-column panels, k values each: [panel][c][NR].
template <class T>
static void pack_v(const T* V, size_t c0, size_t count, size_t k, T* __restrict dst) {
  constexpr size_t NR = kNR<T>;
  const size_t panels = (count + NR - 1) / NR;
  for (size_t p = 0; p < panels; ++p)
    for (size_t c = 0; c < k; ++c)
      for (size_t j = 0; j < NR; ++j) {
        const size_t col = p * NR + j;
        dst[(p * k + c) * NR + j] = col < count ? V[(c0 + col) * k + c] : T(0);
      }
}

// V rows [c0, c0 + count) as a count x kp row-major block (kp: k padded to whole vectors;
// padding and rows past count are zero), read row by row by the micro-GEMM.
template <class T>
static void pack_v_rows(const T* V, size_t c0, size_t count, size_t rows, size_t k, size_t kp,
                        T* __restrict dst) {
  for (size_t j = 0; j < rows; ++j)
    for (size_t c = 0; c < kp; ++c)
      dst[j * kp + c] = (j < count && c < k) ? V[(c0 + j) * k + c] : T(0);
}

// acc (MR rows x KB vectors of right-hand sides, at ra with row stride kp) +=
// kt (MR x cols) @ vp (cols x KB vectors, row stride kp). kt is the kernel tile, row-major
// with row stride kGroupCols, or (JMajor) a packed panel whose MR values per column are
// contiguous; both give the broadcasts constant offsets.
template <int KB, bool JMajor, class T>
static inline __attribute__((always_inline)) void micro_gemm(const T* __restrict kt, size_t cols,
                                                             const T* __restrict vp, size_t kp,
                                                             T* __restrict ra) {
  constexpr int L = Vec<T>::lanes;
  vec_t<T> acc[kMR][KB];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int b = 0; b < KB; ++b) acc[i][b] = vload<T>(ra + i * kp + b * L);
  for (size_t j = 0; j < cols; ++j) {
    vec_t<T> v[KB];
#pragma GCC unroll 4
    for (int b = 0; b < KB; ++b) v[b] = vload<T>(vp + j * kp + b * L);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vec_t<T> x = vbroadcast<T>(JMajor ? kt[j * kMR + i] : kt[i * kGroupCols + j]);
#pragma GCC unroll 4
      for (int b = 0; b < KB; ++b) acc[i][b] += x * v[b];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int b = 0; b < KB; ++b) vstore<T>(ra + i * kp + b * L, acc[i][b]);
}

// All kp columns (whole vectors) of one MR-row block: kKB vectors at a time, then the rest.
template <bool JMajor, class T>
static inline void micro_gemm_all(const T* kt, size_t cols, const T* vp, size_t kp, T* ra) {
  constexpr size_t L = Vec<T>::lanes;
  size_t b = 0;
  for (; b + kKB * L <= kp; b += kKB * L) micro_gemm<kKB, JMajor, T>(kt, cols, vp + b, kp, ra + b);
  for (; b < kp; b += L) micro_gemm<1, JMajor, T>(kt, cols, vp + b, kp, ra + b);
}

struct StopFlag {
  int stop = 0;
  bool get() const { return __atomic_load_n(&stop, __ATOMIC_RELAXED) != 0; }
  void set() { __atomic_store_n(&stop, 1, __ATOMIC_RELAXED); }
};

// One thread's work: X rows [x0, x1) against Z columns [z0, z1), into out_rows (row r of
// the result at out_rows + (r - x0) * ld). Rows of out_rows are zeroed first unless
// accumulate is set.
template <Epilogue E, class T>
static void run_range(const EngineArgs<T>& a, const Layout<T>& s, T* ws, size_t x0, size_t x1,
                      size_t z0, size_t z1, T* out_rows, size_t ld, bool accumulate, StopFlag& flag,
                      bool is_poller) {
  constexpr Metric M = metric_of(E);
  constexpr Norms N = norms_of(E);
  constexpr int L = Vec<T>::lanes;
  constexpr size_t NR = kNR<T>;
  const bool store = a.V == nullptr;
  const size_t k = a.k, d = a.d;
  const bool wide = !store && wide_rhs<T>(k);
  const size_t kp = padded_rhs<T>(k);
  const Params<T> prm{a.gamma, a.coef0, a.length_scale, a.degree};

  T* zpack = ws;
  T* znorm = zpack + s.zpack;
  T* vpack = znorm + s.znorm;
  T* xpack = vpack + s.vpack;
  T* xnorm = xpack + s.xpack;
  T* racc = xnorm + s.xnorm;
  T* ktile = racc + s.racc;

  if (!store && !accumulate)
    for (size_t r = x0; r < x1; ++r)
      for (size_t c = 0; c < k; ++c) out_rows[(r - x0) * ld + c] = T(0);

  for (size_t c0 = z0; c0 < z1; c0 += s.nc) {
    const size_t ccount = smin(s.nc, z1 - c0);
    const size_t cpanels = (ccount + NR - 1) / NR;
    pack_rows<N>(a.Z, c0, ccount, d, NR, a.shift, zpack, znorm);
    if (wide)
      pack_v_rows(a.V, c0, ccount, cpanels * NR, k, kp, vpack);
    else if (!store)
      pack_v(a.V, c0, ccount, k, vpack);

    for (size_t r0 = x0; r0 < x1; r0 += kMR) {
      if (flag.get()) return;
      if (is_poller && a.poll && a.poll(a.poll_ctx)) {
        flag.set();
        return;
      }
      const size_t rcount = smin(size_t(kMR), x1 - r0);
      pack_rows<N>(a.X, r0, rcount, d, kMR, a.shift, xpack, xnorm);
      if (!store)
        for (size_t e = 0; e < size_t(kMR) * (wide ? kp : k * NR); ++e) racc[e] = T(0);

      for (size_t p = 0; p < cpanels; ++p) {
        vec_t<T> acc[kMR][kNV];
        tile<M, T>(xpack, zpack + p * NR * d, d, acc);
        vec_t<T> zn[kNV];
        for (int v = 0; v < kNV; ++v) zn[v] = vload<T>(znorm + p * NR + v * L);
        const size_t valid = smin(NR, ccount - p * NR);
        // Wide path: where this panel's columns sit in the kernel tile.
        const size_t gcol = (p * NR) % kGroupCols;
#pragma GCC unroll 16
        for (int i = 0; i < kMR; ++i) {
          vec_t<T> kv[kNV];
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v) kv[v] = apply<E, T>(acc[i][v], xnorm[i], zn[v], prm);
          if (store) {
            if (size_t(i) >= rcount) continue;
            if constexpr (std::is_same_v<T, float>) {
              if (a.out_wide != nullptr) {  // rows and columns of the whole block, as out's
                double* dst = a.out_wide + (r0 + i) * ld + (c0 + p * NR);
                if (valid == NR) {
#pragma GCC unroll 4
                  for (int v = 0; v < kNV; ++v)
#pragma GCC unroll 16
                    for (int l = 0; l < L; ++l) dst[v * L + l] = double(kv[v][l]);
                } else {
                  for (size_t j = 0; j < valid; ++j) dst[j] = double(kv[j / L][j % L]);
                }
                continue;
              }
            }
            T* dst = out_rows + (r0 + i - x0) * ld + (c0 + p * NR);
            if (valid == NR) {
              for (int v = 0; v < kNV; ++v) vstore<T>(dst + v * L, kv[v]);
            } else {
              for (size_t j = 0; j < valid; ++j) dst[j] = kv[j / L][j % L];
            }
            continue;
          }
          // Padded columns carry V = 0, but a kernel value could be inf (a polynomial
          // overflowing): zero them so that inf * 0 cannot make a NaN.
          if (valid != NR) {
            for (int v = 0; v < kNV; ++v)
              for (int l = 0; l < L; ++l)
                if (size_t(v * L + l) >= valid) kv[v][l] = T(0);
          }
          if (wide) {
#pragma GCC unroll 4
            for (int v = 0; v < kNV; ++v)
              vstore<T>(ktile + size_t(i) * kGroupCols + gcol + v * L, kv[v]);
            continue;
          }
          const T* vp = vpack + p * k * NR;
          T* ra = racc + size_t(i) * k * NR;
          for (size_t c = 0; c < k; ++c)
#pragma GCC unroll 4
            for (int v = 0; v < kNV; ++v) {
              vec_t<T> r = vload<T>(ra + c * NR + v * L);
              r += kv[v] * vload<T>(vp + c * NR + v * L);
              vstore<T>(ra + c * NR + v * L, r);
            }
        }
        // The tile is full (or the chunk ends): multiply it into V, kKB vectors at a time.
        if (wide && (gcol + NR == kGroupCols || p + 1 == cpanels)) {
          const size_t cols = gcol + NR;
          micro_gemm_all<false, T>(ktile, cols, vpack + (p * NR + NR - cols) * kp, kp, racc);
        }
      }
      if (wide) {
        for (size_t i = 0; i < rcount; ++i)
          for (size_t c = 0; c < k; ++c) out_rows[(r0 + i - x0) * ld + c] += racc[i * kp + c];
      } else if (!store) {
        for (size_t i = 0; i < rcount; ++i)
          for (size_t c = 0; c < k; ++c) {
            const T* ra = racc + (i * k + c) * NR;
            vec_t<T> sum = vload<T>(ra);
            for (int v = 1; v < kNV; ++v) sum += vload<T>(ra + v * L);
            out_rows[(r0 + i - x0) * ld + c] += vhsum<T>(sum);
          }
      }
    }
  }
}

template <Epilogue E, class T>
static int run_epilogue(const EngineArgs<T>& a) {
  const Layout<T> s = layout(a);
  const int threads = a.n_threads > 0 ? a.n_threads : 1;
  const bool store = a.V == nullptr;
  const size_t ld = store ? (a.ldo != 0 ? a.ldo : a.m) : a.k;
  StopFlag flag;

#pragma omp parallel num_threads(threads)
  {
    const size_t t = size_t(omp_get_thread_num());
    const size_t nt = size_t(omp_get_num_threads());
    T* ws = a.workspace + t * s.per_thread;
    if (!s.split_z) {
      // Rows of X in whole micro-panels, contiguous per thread: each output row is
      // summed in the same order whatever the number of threads.
      const size_t panels = (a.n + kMR - 1) / kMR;
      const size_t p0 = panels * t / nt, p1 = panels * (t + 1) / nt;
      const size_t x0 = smin(p0 * kMR, a.n), x1 = smin(p1 * kMR, a.n);
      if (x0 < x1)
        run_range<E, T>(a, s, ws, x0, x1, 0, a.m, a.out == nullptr ? nullptr : a.out + x0 * ld, ld,
                        a.accumulate, flag, t == 0);
    } else {
      // Few rows of X: threads take whole chunks of Z. A stored block writes each chunk's
      // columns in place. A matvec goes in rounds of nt chunks: thread t computes chunk
      // (round + t) into its own n x k buffer, then the round's buffers are added into out
      // in chunk order -- the same additions, in the same order, as one thread running
      // through the chunks, with nt buffers however many chunks m makes.
      T* partials = a.workspace + s.per_thread * nt;
      if (store) {
        const size_t c0 = s.chunks * t / nt, c1 = s.chunks * (t + 1) / nt;
        for (size_t c = c0; c < c1; ++c) {
          const size_t z0 = c * s.nc, z1 = smin(z0 + s.nc, a.m);
          run_range<E, T>(a, s, ws, 0, a.n, z0, z1, a.out, ld, true, flag, t == 0);
        }
      } else {
        for (size_t round = 0; round < s.chunks; round += nt) {
          const size_t c = round + t;
          if (c < s.chunks) {
            const size_t z0 = c * s.nc, z1 = smin(z0 + s.nc, a.m);
            run_range<E, T>(a, s, ws, 0, a.n, z0, z1, partials + t * s.partial, ld, false, flag,
                            t == 0);
          }
#pragma omp barrier
          // Read by every thread between the barrier and the next round's tiles, where
          // nobody writes it: all threads leave the loop at the same round.
          if (flag.get()) break;
          const size_t in_round = smin(nt, s.chunks - round);
          const bool first = round == 0 && !a.accumulate;
#pragma omp for schedule(static)
          for (size_t e = 0; e < a.n * a.k; ++e) {
            T sum = first ? T(0) : a.out[e];
            for (size_t j = 0; j < in_round; ++j) sum += partials[j * s.partial + e];
            a.out[e] = sum;
          }
        }
      }
    }
  }
  return flag.get() ? 1 : 0;
}

// The epilogue as compile-time constants: the kernel from the table, then its variants.
template <KernelKind K, bool Slope, class T>
static int run_expanded_or_not(const EngineArgs<T>& a) {
  if constexpr (K == detail::kExpandable)
    if (a.epilogue.expand) return run_epilogue<Epilogue{K, Slope, true}, T>(a);
  return run_epilogue<Epilogue{K, Slope, false}, T>(a);
}

template <KernelKind K, class T>
static int run_kind(const EngineArgs<T>& a) {
  if constexpr (kernel_row<K>.gradient == Gradient::fused)
    if (a.epilogue.slope) return run_expanded_or_not<K, true, T>(a);
  return run_expanded_or_not<K, false, T>(a);
}

template <class T>
static int run(const EngineArgs<T>& a) {
  switch (a.epilogue.kind) {
#define GRAMFREE_CASE(id, ...) \
  case KernelKind::id:         \
    return run_kind<KernelKind::id, T>(a);
    GRAMFREE_KERNEL_TABLE(GRAMFREE_CASE)
#undef GRAMFREE_CASE
  }
  return 0;
}

// ---- Dense products for the normal operator's stored strips: C (+)= op(A) B ----------

// Depth of one packed panel of A: kMR x kGemmDepth values stay in L1 beside B's rows.
inline constexpr size_t kGemmDepth = 256;

template <class T>
struct GemmLayout {
  size_t kp, bpack, apack, racc;
};

template <class T>
static GemmLayout<T> gemm_layout(const GemmArgs<T>& a) {
  constexpr size_t align = 64 / sizeof(T);
  constexpr size_t L = Vec<T>::lanes;
  GemmLayout<T> g{};
  g.kp = round_up(a.k, L);
  g.bpack = round_up(a.p * g.kp, align);
  g.apack = round_up(kGemmDepth * kMR, align);
  g.racc = round_up(size_t(kMR) * g.kp, align);
  return g;
}

template <class T>
static size_t gemm_workspace_elems(const GemmArgs<T>& a) {
  const size_t threads = a.n_threads > 0 ? size_t(a.n_threads) : 1;
  const GemmLayout<T> g = gemm_layout(a);
  return g.bpack + threads * (g.apack + g.racc);
}

// Row panels of the output split between threads in contiguous runs; each output is summed
// over the depth in the same order whatever the number of threads.
template <class T>
static int gemm(const GemmArgs<T>& a) {
  const GemmLayout<T> g = gemm_layout(a);
  const size_t kp = g.kp, k = a.k;
  T* bpack = a.workspace;
  const int threads = a.n_threads > 0 ? a.n_threads : 1;
#pragma omp parallel num_threads(threads)
  {
    const size_t t = size_t(omp_get_thread_num());
    const size_t nt = size_t(omp_get_num_threads());
#pragma omp for schedule(static)
    for (size_t j = 0; j < a.p; ++j)
      for (size_t c = 0; c < kp; ++c) bpack[j * kp + c] = c < k ? a.B[j * k + c] : T(0);
    T* apack = a.workspace + g.bpack + t * (g.apack + g.racc);
    T* racc = apack + g.apack;
    const size_t panels = (a.n + kMR - 1) / kMR;
    const size_t p0 = panels * t / nt, p1 = panels * (t + 1) / nt;
    for (size_t panel = p0; panel < p1; ++panel) {
      const size_t r0 = panel * kMR, rcount = smin(size_t(kMR), a.n - r0);
      for (size_t e = 0; e < size_t(kMR) * kp; ++e) racc[e] = T(0);
      for (size_t j0 = 0; j0 < a.p; j0 += kGemmDepth) {
        const size_t cols = smin(kGemmDepth, a.p - j0);
        for (size_t j = 0; j < cols; ++j)
          for (size_t i = 0; i < size_t(kMR); ++i)
            apack[j * kMR + i] = i >= rcount ? T(0)
                                 : a.trans_a ? a.A[(j0 + j) * a.lda + r0 + i]
                                             : a.A[(r0 + i) * a.lda + j0 + j];
        micro_gemm_all<true, T>(apack, cols, bpack + j0 * kp, kp, racc);
      }
      for (size_t i = 0; i < rcount; ++i)
        for (size_t c = 0; c < k; ++c) {
          T* dst = a.C + (r0 + i) * k + c;
          *dst = a.accumulate ? *dst + racc[i * kp + c] : racc[i * kp + c];
        }
    }
  }
  return 0;
}

static size_t workspace_f32(const EngineArgs<float>& a) { return workspace_elems(a); }
static size_t workspace_f64(const EngineArgs<double>& a) { return workspace_elems(a); }
static int run_f32(const EngineArgs<float>& a) { return run(a); }
static int run_f64(const EngineArgs<double>& a) { return run(a); }
static size_t gemm_workspace_f32(const GemmArgs<float>& a) { return gemm_workspace_elems(a); }
static size_t gemm_workspace_f64(const GemmArgs<double>& a) { return gemm_workspace_elems(a); }
static int gemm_f32(const GemmArgs<float>& a) { return gemm(a); }
static int gemm_f64(const GemmArgs<double>& a) { return gemm(a); }

#include "trsm_engine.hpp"
#include "curvature_engine.hpp"

}  // namespace gramfree::GRAMFREE_ISA_NS

// The per-ISA table (engine_api.hpp), spelled once for the three translation units.
#define GRAMFREE_ENGINE_TABLE(name, ns)                                                           \
  {                                                                                               \
    name, ns::workspace_f32, ns::run_f32, ns::workspace_f64, ns::run_f64, ns::gemm_workspace_f32, \
        ns::gemm_f32, ns::gemm_workspace_f64, ns::gemm_f64, ns::trsm_workspace_f32, ns::trsm_f32, \
        ns::trsm_workspace_f64, ns::trsm_f64, ns::curvature_workspace_f32, ns::curvature_f32,     \
        ns::curvature_workspace_f64, ns::curvature_f64                                            \
  }
