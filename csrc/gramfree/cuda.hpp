// The GPU twins of the operators in gramfree.hpp, for host (numpy) arrays.
// Compiled from cuda/ when CMake finds a CUDA compiler; otherwise
// csrc/kernels/cuda_unavailable.cpp provides these functions (device_count() == 0, the
// operators throw). Nothing here touches the CUDA runtime before it is called, so
// importing the module never needs a driver.
//
// Inputs live on the host and are moved in tiles of X's rows, so n may exceed the GPU's
// memory; Z and V (m rows) are moved in chunks too where they do not fit beside a tile.
// Arithmetic is exact FP32 / FP64 (no tensor cores): squared distances are summed as
// (x - z)^2 directly, the kernel function is applied in registers, and the tile is
// multiplied into V from shared memory before anything is written back.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "gramfree/gramfree.hpp"

namespace gramfree::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  std::size_t total_bytes = 0, free_bytes = 0;
};

// Number of visible CUDA devices; 0 without a driver, without a GPU, or when CUDA was not
// compiled in. Never throws.
int device_count() noexcept;
// Throws std::runtime_error for an index that is not visible.
DeviceInfo device_info(int index);
// The CUDA runtime's version the library was built with (e.g. 13000), 0 without CUDA.
int runtime_version() noexcept;

struct Options {
  int device = 0;
  // Device memory the call may allocate; 0: 80% of what is free when it starts. Tests set
  // it small to exercise the tiling that lets n exceed the GPU's memory.
  std::size_t max_device_bytes = 0;
  // Polled between tiles on the calling thread; true stops the call (throws interrupted).
  std::function<bool()> interrupt;
};

// out[n,k] = K(X,Z) @ V
template <class T>
void kernel_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> V,
                   Matrix<T> out, const Options& options = {});

// out[m,k] = K(X,Z)^T @ U  (every kernel here is symmetric: this is K(Z,X) @ U)
template <class T>
void kernel_rmatvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, ConstMatrix<T> U,
                    Matrix<T> out, const Options& options = {});

// out[m,k] = K(X,Z)^T diag(w) K(X,Z) V, X streamed in tiles; Z, V and out must fit.
template <class T>
void kernel_normal_matvec(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z,
                          ConstMatrix<T> V, Matrix<T> out, const Options& options = {},
                          const T* row_weights = nullptr);

// out[n,m] = K(X,Z)
template <class T>
void kernel_block(const KernelSpec& spec, ConstMatrix<T> X, ConstMatrix<T> Z, Matrix<T> out,
                  const Options& options = {});

}  // namespace gramfree::cuda

// Explicit instantiations of the operators above, in the file that defines them (cuda/
// operators.cu, or csrc/kernels/cuda_unavailable.cpp), inside namespace gramfree::cuda.
#define GRAMFREE_CUDA_INSTANTIATE(T)                                                          \
  template void kernel_matvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,           \
                                 ConstMatrix<T>, Matrix<T>, const Options&);                  \
  template void kernel_rmatvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,          \
                                  ConstMatrix<T>, Matrix<T>, const Options&);                 \
  template void kernel_normal_matvec<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>,    \
                                        ConstMatrix<T>, Matrix<T>, const Options&, const T*); \
  template void kernel_block<T>(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>, Matrix<T>, \
                                const Options&);
