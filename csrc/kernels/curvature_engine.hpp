// The curvature product K^T S (K V - 1 z^T) of a kernel block K held in memory (n x M,
// float32 or float64 values, float64 arithmetic): the Newton-CG logistic solver's Hessian
// product, once per CG iteration. S is row-local (per row i a k x k curvature), so the
// product runs in one pass over K: a block of kSwBlock rows is multiplied by V while it
// sits in L1/L2, its rows of W = S (U - z) formed in scalars, and the same rows multiplied
// into the thread's M x k accumulator before the next block is read. Two BLAS products
// (K V, then K^T W) read K from memory twice, and at k of a few classes each runs at about
// half the machine's read bandwidth (their packing is built for square shapes).
//
//  * U = K_b V: dot products along M (K's rows are contiguous), V transposed (k x M) so
//    that its columns are contiguous too;
//  * K_b^T W: the block's rows' vectors along M, times broadcasts of W, into a tile of the
//    thread's accumulator (k x M) held in registers through all of the block's rows.
// Threads take contiguous ranges of blocks with their own accumulators (k x M float64
// each, re-read and re-written once per block: once that outgrows the core's L2 cache the
// pass loses its advantage, and the Python side takes two BLAS products instead), summed
// in thread order at the end: the result depends on the number of threads (as a BLAS
// product's does), not on the run.
// Included inside the per-ISA namespace by engine.hpp, after vecmath.hpp (and <type_traits>).

// Both products keep a register tile of accumulators (tile widths below), their operand
// vectors and one more register live at a time:
//  * U = K_b V: R rows x NC classes of dot products along M; per step R vectors of K and,
//    one at a time, NC of V^T, so R NC + R + 1 registers and R + NC loads per R NC FMAs;
//  * acc += K_b^T W_b: MV vectors along M x NC classes, held through all of the block's
//    rows; per row MV vectors of K and, one at a time, NC broadcasts of W: the same count.
// With 16 registers a tile of up to 6 classes (2 rows, or 2 vectors, by 6: 15 registers).
// The first version's 4 rows x 2 classes, with the accumulator loaded and stored once per
// class and 8-row step, left the loads, not the FMAs, in charge (benchmarks/README.md,
// bench_curvature.py: satellite's 6-class product 4.1 ms before, 2.9 ms after).
inline constexpr int kSwCols = kVecRegisters == 32 ? 8 : 6;
// Rows (or vectors along M) that a tile of nc classes takes: the most that fit the
// registers with its operands, at most 4.
constexpr int sw_rows_for(int nc) {
  return (kVecRegisters - 1) / (nc + 1) < 4 ? (kVecRegisters - 1) / (nc + 1) : 4;
}
// Rows per block: the second product re-reads them from the core's cache.
inline constexpr size_t kSwBlock = 16;
static_assert(kSwCols >= 1 && kSwCols <= 8 && sw_rows_for(kSwCols) >= 1,
              "GRAMFREE_SW_CASES covers 1 to 8 classes");

// Run-time tile widths (classes of a tile) to templates: at most kSwCols.
#define GRAMFREE_SW_CASES(F) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8)

// K's values as float64 vectors: float32 ones widened on load (half a vector of floats).
static inline __attribute__((always_inline)) vec_t<double> sw_load(const double* p) {
  return vload<double>(p);
}
static inline __attribute__((always_inline)) vec_t<double> sw_load(const float* p) {
  typedef float half_t __attribute__((vector_size(kVecBytes / 2)));
  half_t h;
  __builtin_memcpy(&h, p, sizeof h);
  return __builtin_convertvector(h, vec_t<double>);
}

// U[r, c0 + q] = sum_m Kr[r][m] VT[c0 + q, m] for r < R, q < NC (U: R x k, row-major;
// Kr: the rows' pointers, consecutive rows of K or the ones a subset names).
template <int R, int NC, class T>
static inline void sw_rows_times_v(const T* const* Kr, size_t M, const double* __restrict VT,
                                   size_t c0, size_t k, double* __restrict U) {
  constexpr size_t W = size_t(Vec<double>::lanes);
  vec_t<double> acc[R][NC];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int q = 0; q < NC; ++q) acc[r][q] = vec_t<double>{};
  const double* v0 = VT + c0 * M;
  // The row pointers in locals (registers): read through Kr, they would be reloaded after
  // every vector store the compiler cannot prove apart from them.
  const T* __restrict rp[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) rp[r] = Kr[r];
  size_t m = 0;
  for (; m + W <= M; m += W) {
    vec_t<double> a[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a[r] = sw_load(rp[r] + m);
#pragma GCC unroll 8
    for (int q = 0; q < NC; ++q) {
      const vec_t<double> v = vload_pinned<double>(v0 + size_t(q) * M + m);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][q] += a[r] * v;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < NC; ++q) {
      double s = vhsum<double>(acc[r][q]);
      for (size_t t = m; t < M; ++t) s += double(rp[r][t]) * v0[size_t(q) * M + t];
      U[size_t(r) * k + c0 + size_t(q)] = s;
    }
}

// The `rows` of Kr times the NC classes from c0, in tiles of R rows and a last narrower
// one (R - 1 rows or fewer, by recursion on R).
template <int R, int NC, class T>
static inline void sw_block_times_v(const T* const* Kr, size_t rows, size_t M, const double* VT,
                                    size_t c0, size_t k, double* U) {
  size_t r = 0;
  for (; r + size_t(R) <= rows; r += size_t(R))
    sw_rows_times_v<R, NC, T>(Kr + r, M, VT, c0, k, U + r * k);
  if constexpr (R > 1)
    if (r < rows) sw_block_times_v<R - 1, NC, T>(Kr + r, rows - r, M, VT, c0, k, U + r * k);
}

// acc[c0 + q, m] += sum_{r < rows} Kr[r][m] Wb[r, c0 + q] for q < NC and m in [m0, m1), m1
// - m0 a multiple of MV vectors (acc: k x M per thread, Wb: rows x k row-major).
template <int MV, int NC, class T>
static inline void sw_accumulate_tile(const T* const* Kr, size_t rows, size_t M, size_t m0,
                                      size_t m1, const double* __restrict Wb, size_t c0, size_t k,
                                      double* __restrict acc) {
  constexpr size_t W = size_t(Vec<double>::lanes);
  for (size_t m = m0; m < m1; m += size_t(MV) * W) {
    vec_t<double> o[NC][MV];
#pragma GCC unroll 8
    for (int q = 0; q < NC; ++q)
#pragma GCC unroll 8
      for (int v = 0; v < MV; ++v) o[q][v] = vload<double>(acc + (c0 + q) * M + m + v * W);
    for (size_t r = 0; r < rows; ++r) {
      const T* __restrict p = Kr[r] + m;
      const double* w = Wb + r * k + c0;
      vec_t<double> a[MV];
#pragma GCC unroll 8
      for (int v = 0; v < MV; ++v) a[v] = sw_load(p + v * W);
#pragma GCC unroll 8
      for (int q = 0; q < NC; ++q) {
        const vec_t<double> b = vbroadcast<double>(w[q]);
#pragma GCC unroll 8
        for (int v = 0; v < MV; ++v) o[q][v] += a[v] * b;
      }
    }
#pragma GCC unroll 8
    for (int q = 0; q < NC; ++q)
#pragma GCC unroll 8
      for (int v = 0; v < MV; ++v) vstore<double>(acc + (c0 + q) * M + m + v * W, o[q][v]);
  }
}

// acc[c0 + q, :] += the block's rows' K^T Wb for the NC classes from c0: whole tiles of
// MV vectors along M, the remaining whole vectors one at a time, the last M % W in scalars.
template <int NC, class T>
static inline void sw_accumulate_classes(const T* const* Kr, size_t rows, size_t M,
                                         const double* Wb, size_t c0, size_t k, double* acc) {
  constexpr size_t W = size_t(Vec<double>::lanes);
  constexpr size_t MV = size_t(sw_rows_for(NC));
  const size_t tiled = M / (MV * W) * (MV * W), whole = M / W * W;
  sw_accumulate_tile<int(MV), NC, T>(Kr, rows, M, 0, tiled, Wb, c0, k, acc);
  if constexpr (MV > 1) sw_accumulate_tile<1, NC, T>(Kr, rows, M, tiled, whole, Wb, c0, k, acc);
  for (size_t m = whole; m < M; ++m)
    for (int q = 0; q < NC; ++q) {
      double s = acc[(c0 + q) * M + m];
      for (size_t r = 0; r < rows; ++r) s += double(Kr[r][m]) * Wb[r * k + c0 + q];
      acc[(c0 + q) * M + m] = s;
    }
}

// f(std::integral_constant<int, N>, c0) for each tile of the k classes: ceil(k / kSwCols)
// tiles of near-equal width N (7 classes: 3 + 4, not 6 + 1, whose narrow tile reloads K
// for little work), the width a compile-time constant for the register tiles.
template <class F>
static inline void sw_for_class_tiles(size_t k, F&& f) {
  const size_t tiles = tiles_for(k, size_t(kSwCols));
  for (size_t t = 0; t < tiles; ++t) {
    const size_t c0 = part(k, tiles, t), width = part(k, tiles, t + 1) - c0;
    switch (width) {
#define GRAMFREE_CASE(N)                                                 \
  case N:                                                                \
    if constexpr (N <= kSwCols) f(std::integral_constant<int, N>{}, c0); \
    break;
      GRAMFREE_SW_CASES(GRAMFREE_CASE)
#undef GRAMFREE_CASE
    }
  }
}

// The rows [i0, i0 + rows) of W = S (U - z), in place in U (rows x k): with P, per row
// t = u - z and w_i p_i * (t - p_i . t) (the softmax's curvature w (diag p - p p^T)
// applied to t); without, w_i u_i.
template <class T>
static inline void sw_middle(const CurvatureArgs<T>& a, size_t i0, size_t rows, double* U) {
  const size_t k = a.k;
  for (size_t r = 0; r < rows; ++r) {
    double* u = U + r * k;
    const double wi = a.w[i0 + r];
    if (a.P == nullptr) {
      for (size_t c = 0; c < k; ++c) u[c] *= wi;
      continue;
    }
    const double* p = a.P + (i0 + r) * k;
    double dot = 0;
    for (size_t c = 0; c < k; ++c) {
      u[c] -= a.z == nullptr ? 0.0 : a.z[c];
      dot += p[c] * u[c];
    }
    for (size_t c = 0; c < k; ++c) u[c] = wi * p[c] * (u[c] - dot);
  }
}

template <class T>
static size_t curvature_workspace_elems(const CurvatureArgs<T>& a) {
  const size_t threads = a.n_threads > 0 ? size_t(a.n_threads) : 1;
  // Per thread: the k x M accumulator, then a block's U (kSwBlock x k), each rounded up to
  // whole cache lines so that no two threads write the same line.
  const size_t acc = (a.k * a.M + 7) / 8 * 8, block = (kSwBlock * a.k + 7) / 8 * 8;
  return threads * (acc + block);
}

template <class T>
static int curvature_product(const CurvatureArgs<T>& a) {
  const size_t n = a.n, M = a.M, k = a.k, ldk = a.ldk;
  if (M == 0 || k == 0) return 0;
  const int threads = a.n_threads > 0 ? a.n_threads : 1;
  const size_t blocks = tiles_for(n, kSwBlock);
  const size_t acc_len = (k * M + 7) / 8 * 8, stride = acc_len + (kSwBlock * k + 7) / 8 * 8;
#pragma omp parallel num_threads(threads)
  {
    const size_t t = size_t(omp_get_thread_num()), nt = size_t(omp_get_num_threads());
    double* acc = a.workspace + t * stride;
    double* U = acc + acc_len;
    for (size_t e = 0; e < k * M; ++e) acc[e] = 0.0;
    for (size_t b = part(blocks, nt, t); b < part(blocks, nt, t + 1); ++b) {
      const size_t i0 = b * kSwBlock, rows = smin(kSwBlock, n - i0);
      // The block's rows of K: consecutive, or those the subset names (a.rows).
      const T* Kr[kSwBlock];
      for (size_t r = 0; r < rows; ++r)
        Kr[r] = a.K + (a.rows == nullptr ? i0 + r : size_t(a.rows[i0 + r])) * ldk;
      sw_for_class_tiles(k, [&](auto nc, size_t c0) {
        sw_block_times_v<sw_rows_for(nc()), nc(), T>(Kr, rows, M, a.VT, c0, k, U);
      });
      sw_middle(a, i0, rows, U);
      sw_for_class_tiles(k, [&](auto nc, size_t c0) {
        sw_accumulate_classes<nc(), T>(Kr, rows, M, U, c0, k, acc);
      });
    }
#pragma omp barrier
    // out (M x k, row-major) = the threads' accumulators summed in thread order; each
    // thread its share of M, each accumulator read along M.
    const size_t m0 = part(M, nt, t), m1 = part(M, nt, t + 1);
    for (size_t c = 0; c < k; ++c)
      for (size_t m = m0; m < m1; ++m) {
        double s = 0.0;
        for (size_t u = 0; u < nt; ++u) s += a.workspace[u * stride + c * M + m];
        a.out[m * k + c] = s;
      }
  }
  return 0;
}

static size_t curvature_workspace_f32(const CurvatureArgs<float>& a) {
  return curvature_workspace_elems(a);
}
static size_t curvature_workspace_f64(const CurvatureArgs<double>& a) {
  return curvature_workspace_elems(a);
}
static int curvature_f32(const CurvatureArgs<float>& a) { return curvature_product(a); }
static int curvature_f64(const CurvatureArgs<double>& a) { return curvature_product(a); }

#undef GRAMFREE_SW_CASES
