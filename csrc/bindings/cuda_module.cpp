// gramfree._core's GPU entry points (csrc/gramfree/cuda.hpp) for host (numpy) arrays:
// cuda_device_count, cuda_device_info, cuda_kernel_{matvec,rmatvec,normal_matvec,block}.
// Present in every build; without CUDA compiled in there are no devices and the operators
// raise RuntimeError saying so.
#include "bindings/common.hpp"
#include "gramfree/cuda.hpp"

namespace py = pybind11;
using namespace gramfree;
using namespace gramfree::bindings;

namespace {

enum class Op { matvec, rmatvec, normal };

cuda::Options make_cuda_options(int device, std::size_t max_device_bytes) {
  cuda::Options o;
  o.device = device;
  o.max_device_bytes = max_device_bytes;
  o.interrupt = make_options(0).interrupt;
  return o;
}

template <class T>
py::array run(Op op, const KernelSpec& spec, const py::array& X, const py::array& Z,
              const py::array& V, const cuda::Options& options, DType dt,
              const py::object& weights) {
  const auto x = view<T>(X, "X", dt), z = view<T>(Z, "Z", dt);
  const auto v = view<T>(V, op == Op::rmatvec ? "U" : "V", dt);
  const T* w = row_weights<T>(weights, x.rows, dt);
  const std::size_t rows = op == Op::matvec ? x.rows : z.rows;
  auto out = new_output<T>(rows, v.cols);
  Matrix<T> o{out.mutable_data(), rows, v.cols};
  call_released([&] {
    switch (op) {
      case Op::matvec:
        cuda::kernel_matvec<T>(spec, x, z, v, o, options);
        break;
      case Op::rmatvec:
        cuda::kernel_rmatvec<T>(spec, x, z, v, o, options);
        break;
      case Op::normal:
        cuda::kernel_normal_matvec<T>(spec, x, z, v, o, options, w);
        break;
    }
  });
  return std::move(out);
}

py::array entry(Op op, const py::array& X, const py::array& Z, const py::array& V,
                const std::string& kind, double gamma, double coef0, int degree,
                double length_scale, int device, std::size_t max_device_bytes,
                const py::object& weights = py::none()) {
  const KernelSpec spec = make_spec(kind, gamma, coef0, degree, length_scale);
  const cuda::Options options = make_cuda_options(device, max_device_bytes);
  const DType dt = dtype_of(X, "X");
  return dt == DType::f32 ? run<float>(op, spec, X, Z, V, options, dt, weights)
                          : run<double>(op, spec, X, Z, V, options, dt, weights);
}

template <class T>
py::array block(const KernelSpec& spec, const py::array& X, const py::array& Z,
                const cuda::Options& options, DType dt) {
  const auto x = view<T>(X, "X", dt), z = view<T>(Z, "Z", dt);
  auto out = new_output<T>(x.rows, z.rows);
  Matrix<T> o{out.mutable_data(), x.rows, z.rows};
  call_released([&] { cuda::kernel_block<T>(spec, x, z, o, options); });
  return std::move(out);
}

}  // namespace

void bind_cuda(py::module_& m) {
  m.def("cuda_device_count", &cuda::device_count,
        "Number of visible CUDA devices (0 without a driver, a GPU, or CUDA compiled in).");
  m.def("cuda_runtime_version", &cuda::runtime_version,
        "CUDA runtime version built in (e.g. 13000), 0 without CUDA.");
  m.def(
      "cuda_device_info",
      [](int index) {
        const cuda::DeviceInfo info = cuda::device_info(index);
        py::dict d;
        d["index"] = info.index;
        d["name"] = info.name;
        d["compute_capability"] = py::make_tuple(info.major, info.minor);
        d["multiprocessors"] = info.multiprocessors;
        d["total_bytes"] = info.total_bytes;
        d["free_bytes"] = info.free_bytes;
        return d;
      },
      py::arg("index") = 0);

#define GRAMFREE_CUDA_ARGS                                                              \
  py::kw_only(), py::arg("kind"), py::arg("gamma") = 1.0, py::arg("coef0") = 1.0,       \
                                  py::arg("degree") = 3, py::arg("length_scale") = 1.0, \
                                  py::arg("device") = 0,                                \
                                  py::arg("max_device_bytes") = std::size_t(0)

  m.def(
      "cuda_kernel_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int device,
         std::size_t max_device_bytes) {
        return entry(Op::matvec, X, Z, V, kind, gamma, coef0, degree, length_scale, device,
                     max_device_bytes);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), GRAMFREE_CUDA_ARGS,
      "K(X, Z) @ V on a GPU, shape (n, k).");
  m.def(
      "cuda_kernel_rmatvec",
      [](const py::array& X, const py::array& Z, const py::array& U, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int device,
         std::size_t max_device_bytes) {
        return entry(Op::rmatvec, X, Z, U, kind, gamma, coef0, degree, length_scale, device,
                     max_device_bytes);
      },
      py::arg("X"), py::arg("Z"), py::arg("U"), GRAMFREE_CUDA_ARGS,
      "K(X, Z).T @ U on a GPU, shape (m, k).");
  m.def(
      "cuda_kernel_normal_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int device,
         std::size_t max_device_bytes, const py::object& sample_weight) {
        return entry(Op::normal, X, Z, V, kind, gamma, coef0, degree, length_scale, device,
                     max_device_bytes, sample_weight);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), GRAMFREE_CUDA_ARGS,
      py::arg("sample_weight") = py::none(),
      "K(X, Z).T @ diag(sample_weight) @ K(X, Z) @ V on a GPU, shape (m, k).");
  m.def(
      "cuda_kernel_block",
      [](const py::array& X, const py::array& Z, const std::string& kind, double gamma,
         double coef0, int degree, double length_scale, int device, std::size_t max_device_bytes) {
        const KernelSpec spec = make_spec(kind, gamma, coef0, degree, length_scale);
        const cuda::Options options = make_cuda_options(device, max_device_bytes);
        const DType dt = dtype_of(X, "X");
        return dt == DType::f32 ? block<float>(spec, X, Z, options, dt)
                                : block<double>(spec, X, Z, options, dt);
      },
      py::arg("X"), py::arg("Z"), GRAMFREE_CUDA_ARGS,
      "K(X, Z) materialised on a GPU, shape (n, m).");
#undef GRAMFREE_CUDA_ARGS
}
