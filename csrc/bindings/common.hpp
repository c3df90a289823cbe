// Shared by the pybind11 translation units: array views, checks, options, GIL release.
#pragma once

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>

#include "gramfree/gramfree.hpp"

namespace gramfree::bindings {

namespace py = pybind11;

[[noreturn]] inline void type_error(const std::string& msg) { throw py::type_error(msg); }
[[noreturn]] inline void value_error(const std::string& msg) { throw py::value_error(msg); }

// The one dtype of a call: float32 or float64, taken from X.
enum class DType { f32, f64 };

inline DType dtype_of(const py::array& a, const char* name) {
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
  if (!(a.flags() & py::array::c_style)) value_error(std::string(name) + ": must be C-contiguous");
  return ConstMatrix<T>{static_cast<const T*>(a.data()), std::size_t(a.shape(0)),
                        std::size_t(a.shape(1))};
}

// The optional sample_weight argument of the one-pass operators: nullptr for None, else
// a contiguous 1-d array of X's dtype and X's number of rows.
template <class T>
const T* row_weights(const py::object& weights, std::size_t rows, DType want) {
  if (weights.is_none()) return nullptr;
  // An ndarray only: casting a list would make a temporary array whose data this pointer
  // would outlive.
  if (!py::isinstance<py::array>(weights))
    type_error("sample_weight: must be None or a numpy array");
  const py::array wa = weights.cast<py::array>();
  if (wa.ndim() != 1 || std::size_t(wa.shape(0)) != rows)
    value_error("sample_weight: expected a 1-d array of length " + std::to_string(rows));
  if (dtype_of(wa, "sample_weight") != want || !(wa.flags() & py::array::c_style))
    type_error("sample_weight: must be a contiguous array of X's dtype");
  return static_cast<const T*>(wa.data());
}

inline std::size_t physical_memory_bytes() {
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

// The same refusal for a result of any shape (the path-kernel outputs are 3-d): its
// element count without overflow, and its bytes against physical memory, before allocating.
// `what` names the result and `hint` says how to ask for less.
// `workspace`: doubles the call allocates beside its result, per entry of the result
// (tangent_kernel's two na x nb buffers: a result of a third of memory passed, then took
// all of it; a review).
inline void check_result_size(std::initializer_list<std::size_t> shape, const char* what,
                              const char* hint, double workspace = 0.0) {
  std::size_t count = 1;
  std::string dims;
  bool overflow = false;
  for (std::size_t extent : shape) {
    if (extent != 0 && count > std::numeric_limits<std::size_t>::max() / sizeof(double) / extent)
      overflow = true;
    else
      count *= extent;
    dims += (dims.empty() ? "" : ", ") + std::to_string(extent);
  }
  if (overflow)
    value_error(std::string(what) + " of shape (" + dims + ") overflows the address space; " +
                hint);
  const double bytes = double(count) * sizeof(double) * (1.0 + workspace);
  if (bytes > double(physical_memory_bytes()))
    value_error(std::string(what) + " of shape (" + dims + ") needs " +
                std::to_string(static_cast<unsigned long long>(bytes) >> 20) + " MiB" +
                (workspace > 0 ? " with its workspace" : "") + ", more than this machine's " +
                std::to_string(physical_memory_bytes() >> 20) + " MiB of memory; " + hint);
}

inline KernelSpec make_spec(const std::string& kind, double gamma, double coef0, int degree,
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

// `stop`: None, or an object whose is_set() says the call should stop (a threading.Event):
// how a call running in a worker thread, where Python delivers no signals, is stopped
// when the main thread is interrupted.
inline Options make_options(int n_threads, const py::object& stop = py::none()) {
  if (n_threads < 0) value_error("n_threads: must be >= 0");
  if (!stop.is_none() && !py::hasattr(stop, "is_set"))
    type_error("stop: must be None or have an is_set() method (threading.Event)");
  Options options;
  options.n_threads = n_threads;
  // Ctrl-C: Python only runs signal handlers when asked, so poll it; the core calls this
  // from the calling thread between tiles, at most every 20 ms.
  // A borrowed pointer, not a py::object: Options may be copied with the GIL released
  // (the replay keeps its own copy), and copying a py::object changes a reference count.
  // The caller's argument keeps `stop` alive for the whole call.
  PyObject* stop_ptr = stop.is_none() ? nullptr : stop.ptr();
  options.interrupt = [stop_ptr]() -> bool {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) return true;
    return stop_ptr != nullptr && py::handle(stop_ptr).attr("is_set")().cast<bool>();
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

}  // namespace gramfree::bindings
