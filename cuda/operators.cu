// Host side of the GPU operators (csrc/gramfree/cuda.hpp): checks, device buffers, the
// tiling of host arrays through device memory, and the launches of tiles.cuh's kernels.
// Every CUDA call is checked; a failure throws std::runtime_error naming the call.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "gramfree/cuda.hpp"
#include "kernels/visit_kind.hpp"
#include "tiles.cuh"

namespace gramfree::cuda {

namespace {

using cuda_impl::Epi;
using cuda_impl::kBM;
using cuda_impl::kBN;
using cuda_impl::kThreads;
using cuda_impl::Params;

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess)
    throw std::runtime_error(std::string("gramfree CUDA: ") + what + " failed: " +
                             cudaGetErrorName(rc) + " (" + cudaGetErrorString(rc) + ")");
}

[[noreturn]] void invalid(const std::string& msg) { throw std::invalid_argument(msg); }

// One device allocation, freed on scope exit (also when a later call throws).
template <class T>
struct Buffer {
  T* ptr = nullptr;
  explicit Buffer(std::size_t elems) {
    if (elems) check(cudaMalloc(reinterpret_cast<void**>(&ptr), elems * sizeof(T)), "cudaMalloc");
  }
  ~Buffer() {
    if (ptr) cudaFree(ptr);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

template <class T>
void to_device(T* dst, const T* src, std::size_t elems) {
  if (elems)
    check(cudaMemcpy(dst, src, elems * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}
template <class T>
void to_host(T* dst, const T* src, std::size_t elems) {
  if (elems)
    check(cudaMemcpy(dst, src, elems * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}

// Makes `index` the calling thread's current device and restores the previous one on scope
// exit: torch, cupy and the caller's own CUDA code keep the device they had chosen.
struct DeviceGuard {
  int previous = -1;
  explicit DeviceGuard(int index) {
    check(cudaGetDevice(&previous), "cudaGetDevice");
    check(cudaSetDevice(index), "cudaSetDevice");
  }
  ~DeviceGuard() {
    if (previous >= 0) cudaSetDevice(previous);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
};

int checked_index(int index) {
  const int count = device_count();
  if (count == 0) throw std::runtime_error("device='cuda': no CUDA device is visible");
  if (index < 0 || index >= count)
    invalid("device: index " + std::to_string(index) + " is not one of the " +
            std::to_string(count) + " visible CUDA device(s)");
  return index;
}

// Selects the device (for the call's lifetime) and says how much memory the call may use
// and how many SMs it has. Declared before the call's buffers, so that they are freed on
// this device before the previous one is restored.
struct Session {
  DeviceGuard guard;
  std::size_t budget = 0;
  int sms = 1;
  Session(const Options& o) : guard(checked_index(o.device)) {
    std::size_t free_b = 0, total_b = 0;
    check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    budget = o.max_device_bytes ? o.max_device_bytes : free_b / 10 * 8;
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, o.device),
          "cudaDeviceGetAttribute");
  }
};

void poll(const Options& o) {
  if (o.interrupt && o.interrupt()) throw interrupted();
}

template <class T>
Params<T> params_of(const KernelSpec& s) {
  return Params<T>{T(s.gamma), T(s.coef0), T(s.length_scale), s.degree};
}

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Rows of a tile of X when `fit` rows fit in the budget: all n if they fit, else a
// multiple of the block height (at least one block).
std::size_t tile_rows(std::size_t n, std::size_t fit) {
  if (fit >= n) return std::max<std::size_t>(n, 1);
  return std::max<std::size_t>(kBM, fit / kBM * kBM);
}

// How many ranges of Z's tiles the blocks of one launch split (each summed into its own
// partial output, then reduced in order): enough blocks to fill the GPU twice over when
// X has few rows (the centres side of K^T U, small batches).
int z_splits(std::size_t n, std::size_t m, std::size_t k_blocks, int sms) {
  const std::size_t blocks = ceil_div(n, kBM) * k_blocks;
  const std::size_t want = ceil_div(2 * std::size_t(sms), std::max<std::size_t>(blocks, 1));
  return int(std::min<std::size_t>({want, ceil_div(m, kBN), 64}));
}

// dOut[n x k] (= or +=) K(dX, dZ) @ dV, all on the device; partial: scratch of at least
// splits * n * k elements (splits from z_splits, at most max_splits).
template <class T>
void launch_matvec(const KernelSpec& spec, const T* dX, std::size_t n, const T* dZ, std::size_t m,
                   std::size_t d, const T* dV, std::size_t k, T* dOut, bool accumulate, T* partial,
                   int max_splits, int sms) {
  if (n == 0 || k == 0) return;
  constexpr int KC = cuda_impl::VCols<T>::value;
  const std::size_t k_blocks = ceil_div(k, KC);
  if (k_blocks > 65535)  // the grid's y limit
    invalid("V: at most " + std::to_string(65535 * KC) + " columns on the GPU, got " +
            std::to_string(k));
  const int splits = std::min(max_splits, std::max(1, z_splits(n, m, k_blocks, sms)));
  cuda_impl::MatvecArgs<T> a{
      dX, dZ, dV, splits > 1 ? partial : dOut, n, m, d, k, params_of<T>(spec), splits, accumulate};
  const dim3 grid(unsigned(ceil_div(n, kBM)), unsigned(k_blocks), unsigned(splits));
  detail::visit_kind(spec.kind, [&](auto e) {
    cuda_impl::matvec_kernel<decltype(e)::value, T><<<grid, kThreads>>>(a);
  });
  check(cudaGetLastError(), "matvec_kernel launch");
  if (splits > 1) {
    const std::size_t count = n * k;
    const unsigned blocks = unsigned(std::min<std::size_t>(ceil_div(count, 256), 4096));
    cuda_impl::reduce_kernel<T><<<blocks, 256>>>(partial, dOut, count, splits, accumulate);
    check(cudaGetLastError(), "reduce_kernel launch");
  }
}

template <class T>
void check_common(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z) {
  validate(spec);
  if (X.cols != Z.cols)
    invalid("Z: has " + std::to_string(Z.cols) + " features, X has " + std::to_string(X.cols));
  if ((X.rows && !X.data) || (Z.rows && !Z.data)) invalid("X, Z: null data");
}

template <class T>
void check_out(Matrix<T> out, std::size_t rows, std::size_t cols, const char* what) {
  if (out.rows != rows || out.cols != cols)
    invalid(std::string("out: expected shape (") + std::to_string(rows) + ", " +
            std::to_string(cols) + ") for " + what);
  // The GPU copies results back contiguously: a row stride is a CPU block's option.
  if (out.ld != 0 && out.ld != out.cols)
    invalid("out: a row stride other than its columns is supported on the CPU only");
}

// Rows of X per tile and of Z per chunk for a matvec within budget: Z and V whole when
// they take at most half of it, else in chunks; X tiles take the rest.
struct Plan {
  std::size_t x_rows, z_rows;
  int max_splits;
};

template <class T>
Plan plan_matvec(std::size_t n, std::size_t m, std::size_t d, std::size_t k, std::size_t budget) {
  const std::size_t elems = budget / sizeof(T);
  const std::size_t z_row = d + k;
  std::size_t z_rows =
      std::max<std::size_t>(1, std::min(m, elems / 2 / std::max<std::size_t>(z_row, 1)));
  if (z_rows < m) z_rows = std::max<std::size_t>(kBN, z_rows / kBN * kBN);
  const int max_splits = 8;
  const std::size_t x_row = d + k + std::size_t(max_splits) * k;
  const std::size_t left = elems > z_rows * z_row ? elems - z_rows * z_row : 0;
  return {tile_rows(n, left / x_row), std::min(z_rows, std::max<std::size_t>(m, 1)), max_splits};
}

}  // namespace

int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: clear the sticky-free error state
    return 0;
  }
  return count;
}

int runtime_version() noexcept {
  int v = 0;
  return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
}

DeviceInfo device_info(int index) {
  const int count = device_count();
  if (index < 0 || index >= count)
    throw std::runtime_error("CUDA device " + std::to_string(index) + " is not visible (" +
                             std::to_string(count) + " device(s))");
  const DeviceGuard guard(index);  // cudaMemGetInfo reports on the current device
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_bytes = prop.totalGlobalMem;
  std::size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  info.free_bytes = free_b;
  return info;
}

template <class T>
void kernel_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                   Matrix<T> out, const Options& options) {
  check_common(spec, X, Z);
  if (V.rows != Z.rows) invalid("V: expected " + std::to_string(Z.rows) + " rows (Z's)");
  check_out(out, X.rows, V.cols, "K(X, Z) @ V");
  const std::size_t n = X.rows, m = Z.rows, d = X.cols, k = V.cols;
  if (n == 0 || k == 0) return;
  if (m == 0) {
    std::fill(out.data, out.data + n * k, T(0));
    return;
  }
  Session s(options);
  const Plan plan = plan_matvec<T>(n, m, d, k, s.budget);
  Buffer<T> dZ(plan.z_rows * d), dV(plan.z_rows * k), dX(plan.x_rows * d), dOut(plan.x_rows * k),
      partial(std::size_t(plan.max_splits) * plan.x_rows * k);
  const bool z_whole = plan.z_rows >= m;
  if (z_whole) {
    to_device(dZ.ptr, Z.data, m * d);
    to_device(dV.ptr, V.data, m * k);
  }
  for (std::size_t x0 = 0; x0 < n; x0 += plan.x_rows) {
    poll(options);
    const std::size_t rows = std::min(plan.x_rows, n - x0);
    to_device(dX.ptr, X.data + x0 * d, rows * d);
    for (std::size_t z0 = 0; z0 < m; z0 += plan.z_rows) {
      const std::size_t zr = std::min(plan.z_rows, m - z0);
      if (!z_whole) {
        poll(options);
        to_device(dZ.ptr, Z.data + z0 * d, zr * d);
        to_device(dV.ptr, V.data + z0 * k, zr * k);
      }
      launch_matvec<T>(spec, dX.ptr, rows, dZ.ptr, zr, d, dV.ptr, k, dOut.ptr, z0 > 0, partial.ptr,
                       plan.max_splits, s.sms);
    }
    to_host(out.data + x0 * k, dOut.ptr, rows * k);
  }
  check(cudaDeviceSynchronize(), "kernel_matvec");
}

template <class T>
void kernel_rmatvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> U,
                    Matrix<T> out, const Options& options) {
  check_common(spec, X, Z);
  if (U.rows != X.rows) invalid("U: expected " + std::to_string(X.rows) + " rows (X's)");
  kernel_matvec<T>(spec, Z, X, U, out, options);
}

template <class T>
void kernel_normal_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                          ConstMatrix<T> V, Matrix<T> out, const Options& options,
                          const T* row_weights) {
  check_common(spec, X, Z);
  if (V.rows != Z.rows) invalid("V: expected " + std::to_string(Z.rows) + " rows (Z's)");
  check_out(out, Z.rows, V.cols, "K(X, Z)^T diag(w) K(X, Z) @ V");
  const std::size_t n = X.rows, m = Z.rows, d = X.cols, k = V.cols;
  if (m == 0 || k == 0) return;
  if (n == 0) {
    std::fill(out.data, out.data + m * k, T(0));
    return;
  }
  Session s(options);
  const int max_splits = 8;
  // Resident: Z, V, out and its partials; per row of an X tile: x, K V, w, partials.
  const std::size_t resident = m * (d + k + k + std::size_t(max_splits) * k);
  const std::size_t elems = s.budget / sizeof(T);
  const std::size_t per_row = d + k + 1 + std::size_t(max_splits) * k;
  if (resident + kBM * per_row > elems)
    throw std::runtime_error("device='cuda': Z and V (" + std::to_string(m) +
                             " rows) do not fit in the GPU memory allowed; use the CPU or "
                             "fewer centres");
  const std::size_t x_rows = tile_rows(n, (elems - resident) / per_row);
  Buffer<T> dZ(m * d), dV(m * k), dOut(m * k), dX(x_rows * d), dT(x_rows * k),
      dW(row_weights ? x_rows : 0), partial(std::size_t(max_splits) * std::max(m, x_rows) * k);
  to_device(dZ.ptr, Z.data, m * d);
  to_device(dV.ptr, V.data, m * k);
  for (std::size_t x0 = 0; x0 < n; x0 += x_rows) {
    poll(options);
    const std::size_t rows = std::min(x_rows, n - x0);
    to_device(dX.ptr, X.data + x0 * d, rows * d);
    launch_matvec<T>(spec, dX.ptr, rows, dZ.ptr, m, d, dV.ptr, k, dT.ptr, false, partial.ptr,
                     max_splits, s.sms);
    if (row_weights) {
      to_device(dW.ptr, row_weights + x0, rows);
      const unsigned blocks = unsigned(std::min<std::size_t>(ceil_div(rows * k, 256), 4096));
      cuda_impl::scale_rows_kernel<T><<<blocks, 256>>>(dT.ptr, dW.ptr, rows, k);
      check(cudaGetLastError(), "scale_rows_kernel launch");
    }
    launch_matvec<T>(spec, dZ.ptr, m, dX.ptr, rows, d, dT.ptr, k, dOut.ptr, x0 > 0, partial.ptr,
                     max_splits, s.sms);
  }
  to_host(out.data, dOut.ptr, m * k);
  check(cudaDeviceSynchronize(), "kernel_normal_matvec");
}

template <class T>
void kernel_block(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, Matrix<T> out,
                  const Options& options) {
  check_common(spec, X, Z);
  check_out(out, X.rows, Z.rows, "K(X, Z)");
  const std::size_t n = X.rows, m = Z.rows, d = X.cols;
  if (n == 0 || m == 0) return;
  Session s(options);
  const std::size_t elems = s.budget / sizeof(T);
  // Chunks of Z with one block-row of output each take at most half the budget (and at
  // most 65535 blocks of columns, the grid's y limit); tiles of X rows use the rest.
  const std::size_t z_fit = elems / 2 / (d + kBM) / kBN * kBN;
  const std::size_t z_rows =
      std::min({m, std::max<std::size_t>(kBN, z_fit), std::size_t(65535) * kBN});
  const std::size_t left = elems > z_rows * d ? elems - z_rows * d : 0;
  const std::size_t x_rows = tile_rows(n, left / (d + z_rows));
  Buffer<T> dZ(z_rows * d), dX(x_rows * d), dOut(x_rows * z_rows);
  const bool z_whole = z_rows >= m;
  if (z_whole) to_device(dZ.ptr, Z.data, m * d);
  const Params<T> p = params_of<T>(spec);
  for (std::size_t x0 = 0; x0 < n; x0 += x_rows) {
    const std::size_t rows = std::min(x_rows, n - x0);
    to_device(dX.ptr, X.data + x0 * d, rows * d);
    for (std::size_t z0 = 0; z0 < m; z0 += z_rows) {
      poll(options);
      const std::size_t zr = std::min(z_rows, m - z0);
      if (!z_whole) to_device(dZ.ptr, Z.data + z0 * d, zr * d);
      const dim3 grid(unsigned(ceil_div(rows, kBM)), unsigned(ceil_div(zr, kBN)));
      detail::visit_kind(spec.kind, [&](auto e) {
        cuda_impl::block_kernel<decltype(e)::value, T>
            <<<grid, kThreads>>>(dX.ptr, dZ.ptr, rows, zr, d, p, dOut.ptr, zr);
      });
      check(cudaGetLastError(), "block_kernel launch");
      check(cudaMemcpy2D(out.data + x0 * m + z0, m * sizeof(T), dOut.ptr, zr * sizeof(T),
                         zr * sizeof(T), rows, cudaMemcpyDeviceToHost),
            "cudaMemcpy2D D2H");
    }
  }
  check(cudaDeviceSynchronize(), "kernel_block");
}

GRAMFREE_CUDA_INSTANTIATE(float)
GRAMFREE_CUDA_INSTANTIATE(double)

}  // namespace gramfree::cuda
