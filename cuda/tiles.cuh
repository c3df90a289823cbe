// Device code: one 64 x 64 tile of K(X, Z) per thread block, computed from shared-memory
// stages of X and Z, the kernel function applied in registers (the CPU engine's formulas,
// csrc/kernels/kernel_formulas.inc, on device scalars), then either multiplied into V
// (matvec_kernel: the tile never reaches global memory) or stored (block_kernel).
#pragma once

#include <cstddef>

#include "gramfree/gramfree.hpp"
#include "gramfree/kernel_table.hpp"

namespace gramfree::cuda_impl {

using std::size_t;

// Tile geometry: 256 threads as 16 x 16, each owning 4 x 4 entries of a 64 x 64 tile
// (rows ty + 16 i, columns tx + 16 j, so that a warp's reads of a stage hit distinct banks).
constexpr int kThreads = 256;
constexpr int kBM = 64, kBN = 64, kBK = 16;
constexpr int kStageStride = kBM + 1;  // padding: the transposing stores do not conflict
constexpr int kTileStride = kBN + 1;
// The shared K tile is reused as the stage of X and Z once their loop is done.
constexpr int kTileElems = kBM * kTileStride;
static_assert(2 * kBK * kStageStride <= kTileElems, "stages must fit in the tile buffer");

// The kernel functions are the core's KernelKind, used as a template parameter; what each
// is made of comes from its row of the table (gramfree/kernel_table.hpp).
using Epi = gramfree::KernelKind;
template <Epi E>
constexpr Metric kMetric = kernel_row<E>.metric;
template <Epi E>
constexpr bool kNeedsNorms = kernel_row<E>.needs_norms;

// The vocabulary of kernel_formulas.inc on device scalars.
template <class T>
using vec_t = T;
template <class T>
__device__ __forceinline__ T vbroadcast(T x) {
  return x;
}
template <class T>
__device__ __forceinline__ T vmax(T a, T b) {
  return a > b ? a : b;
}
template <class T>
__device__ __forceinline__ T vmin(T a, T b) {
  return a < b ? a : b;
}
__device__ __forceinline__ float vexp(float x) { return expf(x); }
__device__ __forceinline__ double vexp(double x) { return exp(x); }
__device__ __forceinline__ float vsqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double vsqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float vacos(float x) { return acosf(x); }
__device__ __forceinline__ double vacos(double x) { return acos(x); }

#define GRAMFREE_FORMULA __device__ __forceinline__
#include "kernels/kernel_formulas.inc"
#undef GRAMFREE_FORMULA

// s: squared distance, L1 distance or inner product (kMetric); xn, zn: the plain norms
// (kNeedsNorms only).
template <Epi E, class T>
__device__ __forceinline__ T apply(T s, T xn, T zn, const Params<T>& p) {
  if constexpr (kNeedsNorms<E>)
    return Formula<E>::template value<T>(s, xn, zn, p);
  else
    return Formula<E>::template value<T>(s, p);
}

// The metric of the tile (row0.., col0..) over the full depth d, into s[i][j] for the
// thread's rows ty + 16 i and columns tx + 16 j; xsq/zsq: the squared norms
// (kNeedsNorms).
// Rows past n and columns past m read zeros; the caller never uses them.
template <Metric M, bool Norms, class T>
__device__ __forceinline__ void tile_metric(const T* __restrict__ X, const T* __restrict__ Z,
                                            size_t n, size_t m, size_t d, size_t row0, size_t col0,
                                            T* stage, T (&s)[4][4], T (&xsq)[4], T (&zsq)[4]) {
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  T* xs = stage;
  T* zs = stage + kBK * kStageStride;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    xsq[i] = zsq[i] = T(0);
#pragma unroll
    for (int j = 0; j < 4; ++j) s[i][j] = T(0);
  }
  for (size_t d0 = 0; d0 < d; d0 += kBK) {
    const int depth = int(d - d0 < size_t(kBK) ? d - d0 : size_t(kBK));
    for (int e = t; e < kBK * kBM; e += kThreads) {
      const int r = e / kBK, c = e % kBK;
      const size_t gc = d0 + c, gx = row0 + r, gz = col0 + r;
      xs[c * kStageStride + r] = (gx < n && c < depth) ? X[gx * d + gc] : T(0);
      zs[c * kStageStride + r] = (gz < m && c < depth) ? Z[gz * d + gc] : T(0);
    }
    __syncthreads();
#pragma unroll 4
    for (int c = 0; c < depth; ++c) {
      T xr[4], zc[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) xr[i] = xs[c * kStageStride + ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) zc[j] = zs[c * kStageStride + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if constexpr (M == Metric::dot) {
            s[i][j] = fma(xr[i], zc[j], s[i][j]);
          } else if constexpr (M == Metric::sqdist) {
            const T diff = xr[i] - zc[j];
            s[i][j] = fma(diff, diff, s[i][j]);
          } else {
            s[i][j] += fabs(xr[i] - zc[j]);
          }
        }
      }
      if constexpr (Norms) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          xsq[i] = fma(xr[i], xr[i], xsq[i]);
          zsq[i] = fma(zc[i], zc[i], zsq[i]);
        }
      }
    }
    __syncthreads();  // the stage is overwritten next (or reused as the K tile)
  }
}

template <class T>
struct MatvecArgs {
  const T* X;  // n x d
  const T* Z;  // m x d
  const T* V;  // m x k
  T* out;      // n x k (row stride k), or the partial sums when splits > 1
  size_t n, m, d, k;
  Params<T> p;
  int splits;       // gridDim.z: Z's tiles are divided into this many contiguous ranges
  bool accumulate;  // splits == 1: out += instead of out =
};

// Columns of V per block: float keeps 8 accumulators per thread, double 4 (shared memory
// stays under the 48 KiB of a static allocation).
template <class T>
struct VCols {
  static constexpr int value = sizeof(T) == 4 ? 32 : 16;
};

// grid (ceil(n / 64), ceil(k / KC), splits). With splits > 1, block z writes
// out[z][row][col] (n x k per split), summed in order by reduce_kernel: deterministic.
template <Epi E, class T>
__global__ void __launch_bounds__(kThreads) matvec_kernel(MatvecArgs<T> a) {
  constexpr Metric M = kMetric<E>;
  constexpr bool kNorms = kNeedsNorms<E>;
  constexpr int KC = VCols<T>::value;
  constexpr int NQ = KC / (kThreads / kBM);
  __shared__ T kt[kTileElems];
  __shared__ T vs[kBN * KC];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int orow = t % kBM, og = t / kBM;  // output row, column group (columns og + 4 q)
  const size_t row0 = size_t(blockIdx.x) * kBM;
  const size_t c0 = size_t(blockIdx.y) * KC;
  const int kc = int(a.k - c0 < size_t(KC) ? a.k - c0 : size_t(KC));
  const size_t tiles = (a.m + kBN - 1) / kBN;
  const size_t tile_begin = tiles * blockIdx.z / a.splits;
  const size_t tile_end = tiles * (blockIdx.z + 1) / a.splits;
  T acc[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) acc[q] = T(0);
  for (size_t tile = tile_begin; tile < tile_end; ++tile) {
    const size_t col0 = tile * kBN;
    T s[4][4], xsq[4], zsq[4];
    tile_metric<M, kNorms, T>(a.X, a.Z, a.n, a.m, a.d, row0, col0, kt, s, xsq, zsq);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = tx + 16 * j;
        T kv = T(0);
        if (col0 + c < a.m) {
          if constexpr (kNorms)
            kv = apply<E, T>(s[i][j], vsqrt(xsq[i]), vsqrt(zsq[j]), a.p);
          else
            kv = apply<E, T>(s[i][j], T(0), T(0), a.p);
        }
        kt[(ty + 16 * i) * kTileStride + c] = kv;
      }
    }
    for (int e = t; e < kBN * KC; e += kThreads) {
      const int j = e / KC, c = e % KC;
      const size_t gj = col0 + j;
      vs[e] = (gj < a.m && c < kc) ? a.V[gj * a.k + c0 + c] : T(0);
    }
    __syncthreads();
#pragma unroll 8
    for (int j = 0; j < kBN; ++j) {
      const T kv = kt[orow * kTileStride + j];
#pragma unroll
      for (int q = 0; q < NQ; ++q) acc[q] = fma(kv, vs[j * KC + og + 4 * q], acc[q]);
    }
    __syncthreads();  // kt and vs are overwritten by the next tile
  }
  const size_t gr = row0 + orow;
  if (gr >= a.n) return;
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    const int c = og + 4 * q;
    if (c >= kc) continue;
    if (a.splits > 1) {
      a.out[(size_t(blockIdx.z) * a.n + gr) * a.k + c0 + c] = acc[q];
    } else {
      T* o = a.out + gr * a.k + c0 + c;
      *o = a.accumulate ? *o + acc[q] : acc[q];
    }
  }
}

// out[i] (= or +=) sum over s of partial[s * count + i], s in order.
template <class T>
__global__ void reduce_kernel(const T* __restrict__ partial, T* __restrict__ out, size_t count,
                              int splits, bool accumulate) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += size_t(gridDim.x) * blockDim.x) {
    T sum = partial[i];
    for (int s = 1; s < splits; ++s) sum += partial[size_t(s) * count + i];
    out[i] = accumulate ? out[i] + sum : sum;
  }
}

// Rows of a row-major n x k matrix times w (the Nystrom-PCG weights).
template <class T>
__global__ void scale_rows_kernel(T* __restrict__ A, const T* __restrict__ w, size_t n, size_t k) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n * k;
       i += size_t(gridDim.x) * blockDim.x)
    A[i] *= w[i / k];
}

// grid (ceil(n / 64), ceil(m / 64)): out[r * ldo + c] = K(X_r, Z_c).
template <Epi E, class T>
__global__ void __launch_bounds__(kThreads)
    block_kernel(const T* __restrict__ X, const T* __restrict__ Z, size_t n, size_t m, size_t d,
                 Params<T> p, T* __restrict__ out, size_t ldo) {
  constexpr bool kNorms = kNeedsNorms<E>;
  __shared__ T stage[kTileElems];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const size_t row0 = size_t(blockIdx.x) * kBM, col0 = size_t(blockIdx.y) * kBN;
  T s[4][4], xsq[4], zsq[4];
  tile_metric<kMetric<E>, kNorms, T>(X, Z, n, m, d, row0, col0, stage, s, xsq, zsq);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const size_t r = row0 + ty + 16 * i;
    if (r >= n) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const size_t c = col0 + tx + 16 * j;
      if (c >= m) continue;
      if constexpr (kNorms)
        out[r * ldo + c] = apply<E, T>(s[i][j], vsqrt(xsq[i]), vsqrt(zsq[j]), p);
      else
        out[r * ldo + c] = apply<E, T>(s[i][j], T(0), T(0), p);
    }
  }
}

}  // namespace gramfree::cuda_impl
