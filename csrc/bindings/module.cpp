// gramfree._core: converts and checks arrays, releases the GIL, calls the C++ core.
// Python callers (python/gramfree/operators.py) validate first; this layer checks again so
// that the module is safe on its own.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "gramfree/gramfree.hpp"

namespace py = pybind11;
using namespace gramfree;

namespace {

[[noreturn]] void type_error(const std::string& msg) { throw py::type_error(msg); }
[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

// The one dtype of a call: float32 or float64, taken from X.
enum class DType { f32, f64 };

DType dtype_of(const py::array& a, const char* name) {
  // Equivalence, not identity: unpickled or memory-mapped arrays carry their own
  // descriptor objects. Non-native byte order is not equivalent and is refused.
  if (py::isinstance<py::array_t<float>>(a)) return DType::f32;
  if (py::isinstance<py::array_t<double>>(a)) return DType::f64;
  type_error(std::string(name) + ": dtype must be float32 or float64, got " +
             std::string(py::str(a.dtype())));
}

template <class T>
ConstMatrix<T> view(const py::array& a, const char* name, DType want) {
  if (dtype_of(a, name) != want)
    type_error(std::string(name) + ": dtype " + std::string(py::str(a.dtype())) +
               " differs from X's");
  if (a.ndim() != 2)
    value_error(std::string(name) + ": expected a 2-d array, got " + std::to_string(a.ndim()) +
                " dimension(s)");
  if (!(a.flags() & py::array::c_style))
    value_error(std::string(name) + ": must be C-contiguous");
  return ConstMatrix<T>{static_cast<const T*>(a.data()), std::size_t(a.shape(0)),
                        std::size_t(a.shape(1))};
}

std::size_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::numeric_limits<std::size_t>::max();
  return std::size_t(pages) * std::size_t(page);
}

// The output is the one allocation whose size the user controls directly; refuse one that
// cannot fit rather than let the kernel's overcommit kill the process later.
template <class T>
py::array_t<T> new_output(std::size_t rows, std::size_t cols) {
  if (rows != 0 && cols > std::numeric_limits<std::size_t>::max() / rows / sizeof(T))
    value_error("result of shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
                ") overflows the address space");
  const std::size_t bytes = rows * cols * sizeof(T);
  if (bytes > physical_memory_bytes())
    value_error("result of shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
                ") needs " + std::to_string(bytes >> 20) + " MiB, more than this machine's " +
                std::to_string(physical_memory_bytes() >> 20) + " MiB of memory");
  return py::array_t<T>({py::ssize_t(rows), py::ssize_t(cols)});
}

KernelSpec make_spec(const std::string& kind, double gamma, double coef0, int degree,
                     double length_scale) {
  KernelSpec spec;
  spec.kind = kernel_kind_from_string(kind);
  spec.gamma = gamma;
  spec.coef0 = coef0;
  spec.degree = degree;
  spec.length_scale = length_scale;
  validate(spec);
  return spec;
}

Options make_options(int n_threads) {
  if (n_threads < 0) value_error("n_threads: must be >= 0");
  Options options;
  options.n_threads = n_threads;
  // Ctrl-C: Python only runs signal handlers when asked, so poll it; the core calls this
  // from the calling thread between tiles, at most every 20 ms.
  options.interrupt = []() -> bool {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  };
  return options;
}

template <class F>
void call_released(F&& f) {
  try {
    py::gil_scoped_release release;
    f();
  } catch (const interrupted&) {
    throw py::error_already_set();  // the KeyboardInterrupt that PyErr_CheckSignals set
  }
}

// out = op(X, Z, V) for the three operators whose result is (rows_of(X or Z), V.cols).
enum class Op { matvec, rmatvec, normal, grad };

template <class T>
py::array run_op(Op op, const KernelSpec& spec, const py::array& X, const py::array& Z,
                 const py::array& V, const Options& options, DType dt,
                 const py::object& weights = py::none()) {
  const auto x = view<T>(X, "X", dt), z = view<T>(Z, "Z", dt);
  const T* w = nullptr;
  if (!weights.is_none()) {
    const py::array wa = weights.cast<py::array>();
    if (wa.ndim() != 1 || std::size_t(wa.shape(0)) != x.rows)
      value_error("sample_weight: expected a 1-d array of length " + std::to_string(x.rows));
    if (dtype_of(wa, "sample_weight") != dt || !(wa.flags() & py::array::c_style))
      type_error("sample_weight: must be a contiguous array of X's dtype");
    w = static_cast<const T*>(wa.data());
  }
  const auto v = view<T>(V, op == Op::rmatvec ? "U" : "V", dt);
  std::size_t rows = op == Op::matvec || op == Op::grad ? x.rows : z.rows;
  std::size_t cols = v.cols;
  if (op == Op::grad) {
    if (x.cols != 0 && v.cols > std::numeric_limits<std::size_t>::max() / x.cols)
      value_error("V: too many columns");
    cols = v.cols * x.cols;
  }
  auto out = new_output<T>(rows, cols);
  Matrix<T> o{out.mutable_data(), rows, cols};
  call_released([&] {
    switch (op) {
      case Op::matvec: kernel_matvec<T>(spec, x, z, v, o, options); break;
      case Op::rmatvec: kernel_rmatvec<T>(spec, x, z, v, o, options); break;
      case Op::normal: kernel_normal_matvec<T>(spec, x, z, v, o, options, w); break;
      case Op::grad: kernel_grad_matvec<T>(spec, x, z, v, o, options); break;
    }
  });
  return std::move(out);
}

py::array op_entry(Op op, const py::array& X, const py::array& Z, const py::array& V,
                   const std::string& kind, double gamma, double coef0, int degree,
                   double length_scale, int n_threads, const py::object& weights = py::none()) {
  const KernelSpec spec = make_spec(kind, gamma, coef0, degree, length_scale);
  const Options options = make_options(n_threads);
  const DType dt = dtype_of(X, "X");
  return dt == DType::f32 ? run_op<float>(op, spec, X, Z, V, options, dt, weights)
                          : run_op<double>(op, spec, X, Z, V, options, dt, weights);
}

template <class T>
py::array block_typed(const KernelSpec& spec, const py::array& X, const py::array& Z,
                      const Options& options, DType dt) {
  const auto x = view<T>(X, "X", dt), z = view<T>(Z, "Z", dt);
  auto out = new_output<T>(x.rows, z.rows);
  Matrix<T> o{out.mutable_data(), x.rows, z.rows};
  call_released([&] { kernel_block<T>(spec, x, z, o, options); });
  return std::move(out);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "gramfree native core: fused Gram-free kernel operators";

  py::register_exception<interrupted>(m, "Interrupted", PyExc_KeyboardInterrupt);

#define GRAMFREE_KERNEL_ARGS                                                             \
  py::arg("kind"), py::arg("gamma") = 1.0, py::arg("coef0") = 1.0, py::arg("degree") = 3, \
      py::arg("length_scale") = 1.0, py::arg("n_threads") = 0

  m.def(
      "kernel_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads) {
        return op_entry(Op::matvec, X, Z, V, kind, gamma, coef0, degree, length_scale,
                        n_threads);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "K(X, Z) @ V, shape (n, k).");
  m.def(
      "kernel_rmatvec",
      [](const py::array& X, const py::array& Z, const py::array& U, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads) {
        return op_entry(Op::rmatvec, X, Z, U, kind, gamma, coef0, degree, length_scale,
                        n_threads);
      },
      py::arg("X"), py::arg("Z"), py::arg("U"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "K(X, Z).T @ U, shape (m, k).");
  m.def(
      "kernel_normal_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads,
         const py::object& sample_weight) {
        return op_entry(Op::normal, X, Z, V, kind, gamma, coef0, degree, length_scale,
                        n_threads, sample_weight);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      py::arg("sample_weight") = py::none(),
      "K(X, Z).T @ diag(sample_weight) @ (K(X, Z) @ V) in one pass over X, shape (m, k).");
  m.def(
      "kernel_grad_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads) {
        return op_entry(Op::grad, X, Z, V, kind, gamma, coef0, degree, length_scale,
                        n_threads);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "Gradient of K(X, Z) @ V with respect to X, shape (n, k * d).");
  m.def(
      "kernel_block",
      [](const py::array& X, const py::array& Z, const std::string& kind, double gamma,
         double coef0, int degree, double length_scale, int n_threads) {
        const KernelSpec spec = make_spec(kind, gamma, coef0, degree, length_scale);
        const Options options = make_options(n_threads);
        const DType dt = dtype_of(X, "X");
        return dt == DType::f32 ? block_typed<float>(spec, X, Z, options, dt)
                                : block_typed<double>(spec, X, Z, options, dt);
      },
      py::arg("X"), py::arg("Z"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "K(X, Z) materialised, shape (n, m).");
#undef GRAMFREE_KERNEL_ARGS

  m.def("simd_level", [] { return to_string(simd_level()); });
  m.def("detected_simd_level", [] { return to_string(detected_simd_level()); });
  m.def(
      "set_simd_level",
      [](const std::string& level) { set_simd_level(simd_level_from_string(level)); },
      py::arg("level"), "Force an instruction-set level (tests compare them in one process).");
  m.def("max_threads", &max_threads);
  m.def("cuda_compiled", &cuda_compiled);
#if defined(__clang__)
  m.attr("compiler") = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.attr("compiler") = std::string("gcc ") + __VERSION__;
#else
  m.attr("compiler") = "unknown";
#endif
}
