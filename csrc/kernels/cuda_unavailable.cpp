// csrc/gramfree/cuda.hpp for a build without a CUDA compiler: no device is ever visible,
// and the operators say why they cannot run (the Python layer checks device_count() first).
#include <stdexcept>

#include "gramfree/cuda.hpp"

namespace gramfree::cuda {

namespace {
[[noreturn]] void unavailable() {
  throw std::runtime_error(
      "device='cuda': gramfree was built without CUDA (no CUDA compiler was found when it "
      "was compiled); reinstall it where nvcc is on the PATH");
}
}  // namespace

int device_count() noexcept { return 0; }
int runtime_version() noexcept { return 0; }
DeviceInfo device_info(int) { unavailable(); }

template <class T>
void kernel_matvec(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>, ConstMatrix<T>, Matrix<T>,
                   const Options&) {
  unavailable();
}
template <class T>
void kernel_rmatvec(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>, ConstMatrix<T>, Matrix<T>,
                    const Options&) {
  unavailable();
}
template <class T>
void kernel_normal_matvec(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>, ConstMatrix<T>,
                          Matrix<T>, const Options&, const T*) {
  unavailable();
}
template <class T>
void kernel_block(const KernelSpec&, ConstMatrix<T>, ConstMatrix<T>, Matrix<T>, const Options&) {
  unavailable();
}

GRAMFREE_CUDA_INSTANTIATE(float)
GRAMFREE_CUDA_INSTANTIATE(double)

}  // namespace gramfree::cuda
