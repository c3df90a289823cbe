// Triangular solves with few right-hand sides, L X = B or L^T X = B for lower-triangular L,
// at a multiply-add rate near GEMM's. BLAS's trsm (and its GEMM) with k = 26 columns runs
// at about a third of the square GEMM rate: they vectorise along the right-hand sides and
// pack for square shapes. Here the vectors run along L's columns (long contiguous runs,
// whatever k is), the right-hand sides are the register tile's other dimension, and L is
// streamed once from memory per solve.
//
// Column-major throughout, as LAPACK: L[r + c * lda] (only the lower triangle is read) and
// X[r + q * ldx], n x k, solved in place. Blocked by kTrsmBlock rows:
//  * forward (L X = B), left-looking: a block's rows first take the update
//    X_i -= L[i, :i] X[:i] (rows split between threads; a register tile of kFwdMV vectors
//    of rows by up to kFwdNR right-hand sides, broadcast from X), then the block's own
//    triangle, split between threads by right-hand side;
//  * backward (L^T X = B): a block's columns first take X_i -= L[below, i]^T X[below], a
//    dot product down L's columns (columns split between threads; kBwdMC columns by up to
//    kBwdNR right-hand sides, vector partial sums kept in a per-thread buffer across the
//    row chunks and summed once), then the triangle.
// Each entry of X is summed in an order that does not depend on the number of threads:
// every split follows the blocks, not the thread count. (The right-hand-side tiles of the
// small triangles do vary with it; their columns still agree bit for bit because each
// product-sum compiles to the same operation, one FMA under -ffp-contract=fast where the
// instruction set has it, in every tile width.)
// Included inside the per-ISA namespace by engine.hpp, after vecmath.hpp.

inline constexpr int kTrsmRegs = kVecRegisters;
inline constexpr int kFwdMV = 2;
// kFwdMV * kFwdNR accumulators + kFwdMV loads of L + one broadcast.
inline constexpr int kFwdNR = (kTrsmRegs - kFwdMV - 1) / kFwdMV;  // 14 (AVX-512), 6
inline constexpr int kBwdMC = kTrsmRegs == 32 ? 4 : 2;
// kBwdMC * kBwdNR accumulators + kBwdMC loads of L + one load of X.
inline constexpr int kBwdNR = 6;
inline constexpr size_t kTrsmBlock = 512;
// Forward: columns of L per pass over a thread's rows (its rows x this many, packed, stay
// in L2 for the other right-hand-side tiles). Backward: rows of L per pass, likewise.
inline constexpr size_t kTrsmDepth = 128;
inline constexpr size_t kBwdDepth = 128;
// Rows (forward) or columns (backward) of the small triangles inside a block.
template <class T>
inline constexpr size_t kFwdRows = size_t(kFwdMV) * Vec<T>::lanes;
inline constexpr size_t kBwdCols = 16;

// Elements per cache line: the prefetches below step by lines.
template <class T>
inline constexpr size_t kLineElems = 64 / sizeof(T);

// A share of the next chunk of L to fetch into cache while a tile computes: `count`
// cache lines, taken column by column (each column's lines in order, `lines` of them from
// `base + c lda`), starting at line `first` of the chunk. Whole column runs at a time:
// lines of one DRAM page back to back; one line from each column in turn (a scratch
// variant) left the forward solve far below the memory's bandwidth.
template <class T>
struct Prefetch {
  const T* base = nullptr;
  size_t lda = 0, lines = 1, first = 0, count = 0;
};

// X[0..G, 0..NR) -= Lp[0..G, 0..depth) Xj[0..depth, 0..NR), G = kFwdMV vectors of rows.
// Lp = &L[r0 + j0 lda], Xj = &X[j0 + q0 ldx], Xr = &X[r0 + q0 ldx]; pf spread over the
// steps.
template <int NR, class T>
static inline void fwd_kernel(const T* __restrict Lp, size_t lda, const T* __restrict Xj,
                              size_t ldx, size_t depth, T* __restrict Xr, const Prefetch<T>& pf) {
  constexpr int W = Vec<T>::lanes;
  vec_t<T> acc[NR][kFwdMV];
#pragma GCC unroll 16
  for (int q = 0; q < NR; ++q)
#pragma GCC unroll 4
    for (int v = 0; v < kFwdMV; ++v) acc[q][v] = vec_t<T>{};
  size_t col = pf.lines ? pf.first / pf.lines : 0, line = pf.lines ? pf.first % pf.lines : 0;
  size_t issued = 0;
  for (size_t j = 0; j < depth; ++j) {
    const size_t due = pf.count * (j + 1) / depth;
    for (; issued < due; ++issued) {
      __builtin_prefetch(pf.base + col * pf.lda + line * kLineElems<T>, 0, 3);
      if (++line == pf.lines) line = 0, ++col;
    }
    const T* c = Lp + j * lda;
    vec_t<T> a[kFwdMV];
#pragma GCC unroll 4
    for (int v = 0; v < kFwdMV; ++v) a[v] = vload<T>(c + v * W);
#pragma GCC unroll 16
    for (int q = 0; q < NR; ++q) {
      const vec_t<T> x = vbroadcast<T>(Xj[j + q * ldx]);
#pragma GCC unroll 4
      for (int v = 0; v < kFwdMV; ++v) acc[q][v] += a[v] * x;
    }
  }
#pragma GCC unroll 16
  for (int q = 0; q < NR; ++q)
#pragma GCC unroll 4
    for (int v = 0; v < kFwdMV; ++v) {
      T* dst = Xr + q * ldx + v * W;
      vstore<T>(dst, vload<T>(dst) - acc[q][v]);
    }
}

// The first pf_steps steps each fetch a cache line of every column at pf (+ s lines), as
// fwd_kernel: a share of the next chunk.
template <int NR, class T>
static inline void bwd_kernel(const T* __restrict Lc, size_t lda, const T* __restrict Xr,
                              size_t ldx, size_t rows, vec_t<T>* __restrict acc_io, const T* pf,
                              size_t pf_steps) {
  constexpr int W = Vec<T>::lanes;
  vec_t<T> acc[kBwdMC][NR];
#pragma GCC unroll 8
  for (int c = 0; c < kBwdMC; ++c)
#pragma GCC unroll 16
    for (int q = 0; q < NR; ++q) acc[c][q] = acc_io[c * NR + q];
  for (size_t r = 0, s = 0; r < rows; r += W, ++s) {
    if (s < pf_steps)
#pragma GCC unroll 8
      for (int c = 0; c < kBwdMC; ++c) __builtin_prefetch(pf + c * lda + s * kLineElems<T>, 0, 3);
    vec_t<T> l[kBwdMC];
#pragma GCC unroll 8
    for (int c = 0; c < kBwdMC; ++c) l[c] = vload<T>(Lc + c * lda + r);
#pragma GCC unroll 16
    for (int q = 0; q < NR; ++q) {
      const vec_t<T> x = vload<T>(Xr + q * ldx + r);
#pragma GCC unroll 8
      for (int c = 0; c < kBwdMC; ++c) acc[c][q] += l[c] * x;
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < kBwdMC; ++c)
#pragma GCC unroll 16
    for (int q = 0; q < NR; ++q) acc_io[c * NR + q] = acc[c][q];
}

// Run-time tile width to template: one case per width up to the register budget.
#define GRAMFREE_TRSM_CASES(F) \
  F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14)

template <class T>
static void fwd_tile(int nr, const T* Lp, size_t lda, const T* Xj, size_t ldx, size_t depth, T* Xr,
                     const Prefetch<T>& pf) {
  switch (nr) {
#define GRAMFREE_CASE(N)                                                          \
  case N:                                                                         \
    if constexpr (N <= kFwdNR) fwd_kernel<N, T>(Lp, lda, Xj, ldx, depth, Xr, pf); \
    return;
    GRAMFREE_TRSM_CASES(GRAMFREE_CASE)
#undef GRAMFREE_CASE
  }
}

template <class T>
static void bwd_tile(int nr, const T* Lc, size_t lda, const T* Xr, size_t ldx, size_t rows,
                     vec_t<T>* acc, const T* pf, size_t pf_steps) {
  switch (nr) {
#define GRAMFREE_CASE(N)                                                                    \
  case N:                                                                                   \
    if constexpr (N <= kBwdNR) bwd_kernel<N, T>(Lc, lda, Xr, ldx, rows, acc, pf, pf_steps); \
    return;
    GRAMFREE_TRSM_CASES(GRAMFREE_CASE)
#undef GRAMFREE_CASE
  }
}

// The i-th of `tiles` near-equal parts of [0, count).
static inline size_t part(size_t count, size_t tiles, size_t i) { return count * i / tiles; }
static inline size_t tiles_for(size_t count, size_t width) { return (count + width - 1) / width; }

// X[r, q] -= sum_{j in [j0, j1)} L[r, j] X[j, q] for the rows [r0, r1) of a partial row
// tile (fewer than kFwdRows), q in [q0, q1): per column j an update of those few
// contiguous rows, so that the sums over j for different rows are independent chains.
template <class T>
static void fwd_update_plain(const T* L, size_t lda, T* X, size_t ldx, size_t r0, size_t r1,
                             size_t j0, size_t j1, size_t q0, size_t q1) {
  T acc[kFwdRows<T>];
  const size_t rows = r1 - r0;
  for (size_t q = q0; q < q1; ++q) {
    for (size_t r = 0; r < rows; ++r) acc[r] = 0;
    for (size_t j = j0; j < j1; ++j) {
      const T x = X[j + q * ldx];
      const T* col = L + r0 + j * lda;
      for (size_t r = 0; r < rows; ++r) acc[r] += col[r] * x;
    }
    for (size_t r = 0; r < rows; ++r) X[r0 + r + q * ldx] -= acc[r];
  }
}

// The right-hand sides of a small triangle in chunks of this many: the substitution runs
// across them (independent chains) rather than down one column at a time (one chain of
// dependent multiply-adds per entry).
inline constexpr size_t kTriRhs = 32;

// Rows [r0, r1) of X, right-hand sides [q0, q1), updated by columns [j0, j1) of L: full
// row tiles by the register kernel, a partial one by plain loops. Every tile fetches a
// share of the next chunk's lines: columns c0 + kTrsmDepth on, or after the last chunk
// (with next_block) the first chunk of the rows kTrsmBlock further down, which the next
// block's update reads first.
template <class T>
static void fwd_update(const T* L, size_t lda, T* X, size_t ldx, size_t r0, size_t r1, size_t j0,
                       size_t j1, size_t q0, size_t q1, bool next_block, T* pack) {
  constexpr size_t G = kFwdRows<T>;
  const size_t full_end = r0 + (r1 - r0) / G * G;
  const size_t groups = (full_end - r0) / G;
  const size_t ntiles = tiles_for(q1 - q0, size_t(kFwdNR));
  const size_t lines = tiles_for((r1 - r0) * sizeof(T), 64);  // per column of a chunk
  const size_t calls = ntiles * groups;
  for (size_t c0 = j0; c0 < j1; c0 += kTrsmDepth) {
    const size_t depth = smin(kTrsmDepth, j1 - c0);
    Prefetch<T> pf;
    pf.lda = lda;
    pf.lines = lines;
    size_t next_cols = 0;
    if (c0 + kTrsmDepth < j1) {
      pf.base = L + r0 + (c0 + kTrsmDepth) * lda;
      next_cols = smin(kTrsmDepth, j1 - c0 - kTrsmDepth);
    } else if (next_block) {
      pf.base = L + r0 + kTrsmBlock + j0 * lda;
      next_cols = smin(kTrsmDepth, j1 + kTrsmBlock - j0);
    }
    const size_t total = next_cols * lines;
    // With a pack buffer, the chunk is first copied tile by tile (each column's rows read
    // as one run, which the hardware streams; the tiles then read contiguous memory).
    const T* src = L + c0 * lda;
    size_t src_ld = lda, tile_stride = G;
    if (pack != nullptr) {
      constexpr int W = Vec<T>::lanes;
      for (size_t j = 0; j < depth; ++j) {
        const T* col = L + r0 + (c0 + j) * lda;
        for (size_t g = 0; g < groups; ++g)
#pragma GCC unroll 4
          for (int v = 0; v < kFwdMV; ++v)
            vstore<T>(pack + (g * depth + j) * G + v * W, vload<T>(col + g * G + v * W));
      }
      src = pack;
      src_ld = G;
      tile_stride = depth * G;
    }
    for (size_t t = 0; t < ntiles; ++t) {
      const size_t qa = q0 + part(q1 - q0, ntiles, t), qb = q0 + part(q1 - q0, ntiles, t + 1);
      for (size_t g = 0; g < groups; ++g) {
        const size_t r = r0 + g * G, call = t * groups + g;
        pf.first = part(total, calls, call);
        pf.count = part(total, calls, call + 1) - pf.first;
        const T* tile = pack != nullptr ? src + g * tile_stride : src + r;
        fwd_tile<T>(int(qb - qa), tile, src_ld, X + c0 + qa * ldx, ldx, depth, X + r + qa * ldx,
                    pf);
      }
      if (full_end < r1) fwd_update_plain(L, lda, X, ldx, full_end, r1, c0, c0 + depth, qa, qb);
    }
  }
}

// The block [i0, i1) of a forward solve, after its update: right-hand sides [q0, q1).
template <class T>
static void fwd_diagonal(const T* L, size_t lda, T* X, size_t ldx, size_t i0, size_t i1, size_t q0,
                         size_t q1) {
  constexpr size_t G = kFwdRows<T>;
  for (size_t s0 = i0; s0 < i1; s0 += G) {
    const size_t s1 = smin(s0 + G, i1);
    if (s0 > i0) fwd_update<T>(L, lda, X, ldx, s0, s1, i0, s0, q0, q1, false, nullptr);
    for (size_t qa = q0; qa < q1; qa += kTriRhs) {
      const size_t nq = smin(kTriRhs, q1 - qa);
      T sum[kTriRhs];
      for (size_t r = s0; r < s1; ++r) {
        for (size_t q = 0; q < nq; ++q) sum[q] = X[r + (qa + q) * ldx];
        for (size_t j = s0; j < r; ++j) {
          const T l = L[r + j * lda];
          for (size_t q = 0; q < nq; ++q) sum[q] -= l * X[j + (qa + q) * ldx];
        }
        const T d = L[r + r * lda];
        for (size_t q = 0; q < nq; ++q) X[r + (qa + q) * ldx] = sum[q] / d;
      }
    }
  }
}

// Columns [c0, c1) of X (rows of the solution), right-hand sides [q0, q1), updated by rows
// [r0, r1) of L: acc is a scratch of (c1 - c0) * (q1 - q0) vectors; (c1 - c0) a multiple
// of kBwdMC. Every tile fetches a share of the next chunk's lines (rows kTrsmDepth
// further down or, after the last chunk, with next_block, the first chunk of the block
// above: rows from c0's block start, columns kTrsmBlock to the left).
template <class T>
static void bwd_update(const T* L, size_t lda, T* X, size_t ldx, size_t c0, size_t c1, size_t r0,
                       size_t r1, size_t q0, size_t q1, vec_t<T>* acc, const T* next_block) {
  constexpr size_t W = Vec<T>::lanes;
  const size_t kq = q1 - q0;
  const size_t vec_end = r0 + (r1 - r0) / W * W;
  const size_t ntiles = tiles_for(kq, size_t(kBwdNR));
  const size_t lines = tiles_for(kBwdDepth * sizeof(T), 64);  // per column of a chunk
  for (size_t e = 0; e < (c1 - c0) * kq; ++e) acc[e] = vec_t<T>{};
  for (size_t ra = r0; ra < vec_end; ra += kBwdDepth) {
    const size_t rows = smin(kBwdDepth, vec_end - ra);
    const T* next = ra + kBwdDepth < vec_end ? L + ra + kBwdDepth + c0 * lda : next_block;
    for (size_t t = 0; t < ntiles; ++t) {
      const size_t qa = part(kq, ntiles, t), qb = part(kq, ntiles, t + 1);
      const size_t l0 = part(lines, ntiles, t), l1 = part(lines, ntiles, t + 1);
      for (size_t c = c0; c < c1; c += kBwdMC) {
        const T* pf = next == nullptr ? nullptr : next + (c - c0) * lda + l0 * kLineElems<T>;
        // The tile's kBwdMC x (qb - qa) vectors, contiguous, at a fixed place per (c, t).
        bwd_tile<T>(int(qb - qa), L + ra + c * lda, lda, X + ra + (q0 + qa) * ldx, ldx, rows,
                    acc + (c - c0) * kq + size_t(kBwdMC) * qa, pf, pf == nullptr ? 0 : l1 - l0);
      }
    }
  }
  for (size_t t = 0; t < ntiles; ++t) {
    const size_t qa = part(kq, ntiles, t), qb = part(kq, ntiles, t + 1), nr = qb - qa;
    for (size_t c = c0; c < c1; c += kBwdMC)
      for (size_t cc = 0; cc < size_t(kBwdMC); ++cc)
        for (size_t q = 0; q < nr; ++q) {
          T s = vhsum<T>(acc[(c - c0) * kq + size_t(kBwdMC) * qa + cc * nr + q]);
          const size_t col = c + cc, rhs = q0 + qa + q;
          for (size_t r = vec_end; r < r1; ++r) s += L[r + col * lda] * X[r + rhs * ldx];
          X[col + rhs * ldx] -= s;
        }
  }
}

// The block [i0, i1) of a backward solve, after its update: right-hand sides [q0, q1),
// columns from the last; acc: kBwdCols * (q1 - q0) vectors of scratch.
template <class T>
static void bwd_diagonal(const T* L, size_t lda, T* X, size_t ldx, size_t i0, size_t i1, size_t q0,
                         size_t q1, vec_t<T>* acc) {
  const size_t count = tiles_for(i1 - i0, kBwdCols);
  for (size_t b = count; b-- > 0;) {
    const size_t s0 = i0 + b * kBwdCols, s1 = smin(s0 + kBwdCols, i1);
    // Only the bottom block's last sub-block is partial (s1 == i1 there, no update), so
    // every updated one has kBwdCols columns, a multiple of kBwdMC.
    if (s1 < i1) bwd_update<T>(L, lda, X, ldx, s0, s1, s1, i1, q0, q1, acc, nullptr);
    for (size_t qa = q0; qa < q1; qa += kTriRhs) {
      const size_t nq = smin(kTriRhs, q1 - qa);
      T sum[kTriRhs];
      for (size_t c = s1; c-- > s0;) {
        for (size_t q = 0; q < nq; ++q) sum[q] = X[c + (qa + q) * ldx];
        for (size_t r = c + 1; r < s1; ++r) {
          const T l = L[r + c * lda];
          for (size_t q = 0; q < nq; ++q) sum[q] -= l * X[r + (qa + q) * ldx];
        }
        const T d = L[c + c * lda];
        for (size_t q = 0; q < nq; ++q) X[c + (qa + q) * ldx] = sum[q] / d;
      }
    }
  }
}

// The solve's barriers (two per block) as a spin on a shared counter. gramfree sets
// OMP_WAIT_POLICY=PASSIVE (idle OpenMP workers must not spin between operator calls), and
// a passive `omp barrier` puts the early thread to sleep in the kernel each time, a
// large part of a small solve's time on 2 cores (scratch timings). The waits
// here are short (the work between them is split evenly), so spin, and yield the processor
// only after a while (more threads than processors).
struct SpinBarrier {
  alignas(64) int arrived = 0;
  alignas(64) int generation = 0;
};

static inline void spin_wait(SpinBarrier& b, int threads) {
  if (threads == 1) return;
  const int gen = __atomic_load_n(&b.generation, __ATOMIC_ACQUIRE);
  if (__atomic_add_fetch(&b.arrived, 1, __ATOMIC_ACQ_REL) == threads) {
    __atomic_store_n(&b.arrived, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b.generation, gen + 1, __ATOMIC_RELEASE);
    return;
  }
  for (int spins = 0; __atomic_load_n(&b.generation, __ATOMIC_ACQUIRE) == gen; ++spins) {
    if (spins < (1 << 14)) {
#if defined(__x86_64__) || defined(_M_X64)
      _mm_pause();
#endif
    } else {
      sched_yield();
    }
  }
}

// The backward solve runs right-hand sides in groups of at most this many, which bounds
// its partial sums' workspace (their size is columns x right-hand sides x vector width).
inline constexpr size_t kBwdMaxRhs = 64;

template <class T>
static size_t trsm_workspace_elems(const TrsmArgs<T>& a) {
  const size_t threads = a.n_threads > 0 ? size_t(a.n_threads) : 1;
  if (!a.trans) return threads * kTrsmBlock * kTrsmDepth;  // a packed chunk each
  // The backward update's partial sums, each thread at its columns' place in a block,
  // then each thread's for the small triangles.
  const size_t rhs = smin(a.k, kBwdMaxRhs);
  return (kTrsmBlock + threads * kBwdCols) * rhs * Vec<T>::lanes;
}

template <class T>
static int trsm(const TrsmArgs<T>& a) {
  const size_t n = a.n, k = a.k, lda = a.lda, ldx = a.ldx;
  const T* L = a.L;
  T* X = a.X;
  if (n == 0 || k == 0) return 0;
  const int threads = a.n_threads > 0 ? a.n_threads : 1;
  const size_t blocks = tiles_for(n, kTrsmBlock);
  SpinBarrier barrier;
#pragma omp parallel num_threads(threads)
  {
    const size_t t = size_t(omp_get_thread_num());
    const size_t nt = size_t(omp_get_num_threads());
    const size_t q0 = part(k, nt, t), q1 = part(k, nt, t + 1);
    if (!a.trans) {
      constexpr size_t G = kFwdRows<T>;
      T* pack = a.workspace + t * kTrsmBlock * kTrsmDepth;
      for (size_t b = 0; b < blocks; ++b) {
        const size_t i0 = b * kTrsmBlock, i1 = smin(n, i0 + kTrsmBlock);
        if (i0 > 0) {
          const size_t groups = tiles_for(i1 - i0, G);
          const size_t ra = i0 + part(groups, nt, t) * G;
          const size_t rb = smin(i1, i0 + part(groups, nt, t + 1) * G);
          if (ra < rb) fwd_update(L, lda, X, ldx, ra, rb, 0, i0, 0, k, i1 < n, pack);
        }
        spin_wait(barrier, int(nt));
        if (q0 < q1) fwd_diagonal(L, lda, X, ldx, i0, i1, q0, q1);
        spin_wait(barrier, int(nt));
      }
    } else {
      // Right-hand sides in groups (kBwdMaxRhs): the workspace was sized for one group.
      // A thread's update sums sit at its columns' offset in the block (the same columns
      // of every full block), so the threads' parts never overlap whatever their number.
      const size_t rhs = smin(k, kBwdMaxRhs);
      const size_t groups = kTrsmBlock / kBwdMC;
      const size_t ca0 = part(groups, nt, t) * kBwdMC, cb0 = part(groups, nt, t + 1) * kBwdMC;
      vec_t<T>* base = reinterpret_cast<vec_t<T>*>(a.workspace);
      vec_t<T>* acc = base + ca0 * rhs;
      vec_t<T>* acc_diag = base + (kTrsmBlock + t * kBwdCols) * rhs;
      for (size_t g0 = 0; g0 < k; g0 += kBwdMaxRhs) {
        const size_t g1 = smin(k, g0 + kBwdMaxRhs);
        const size_t p0 = g0 + part(g1 - g0, nt, t), p1 = g0 + part(g1 - g0, nt, t + 1);
        for (size_t b = blocks; b-- > 0;) {
          const size_t i0 = b * kTrsmBlock, i1 = smin(n, i0 + kTrsmBlock);
          if (i1 < n && ca0 < cb0) {  // a block below exists: this block is full
            const size_t ca = i0 + ca0, cb = i0 + cb0;
            bwd_update(L, lda, X, ldx, ca, cb, i1, n, g0, g1, acc,
                       b > 0 ? L + i0 + (ca - kTrsmBlock) * lda : nullptr);
          }
          spin_wait(barrier, int(nt));
          if (p0 < p1) bwd_diagonal(L, lda, X, ldx, i0, i1, p0, p1, acc_diag);
          spin_wait(barrier, int(nt));
        }
      }
    }
  }
  return 0;
}

static size_t trsm_workspace_f32(const TrsmArgs<float>& a) { return trsm_workspace_elems(a); }
static size_t trsm_workspace_f64(const TrsmArgs<double>& a) { return trsm_workspace_elems(a); }
static int trsm_f32(const TrsmArgs<float>& a) { return trsm(a); }
static int trsm_f64(const TrsmArgs<double>& a) { return trsm(a); }
