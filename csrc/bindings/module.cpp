// gramfree._core: converts and checks arrays, releases the GIL, calls the C++ core.
// Python callers (python/gramfree/operators.py) validate first; this layer checks again so
// that the module is safe on its own.

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "bindings/common.hpp"

namespace py = pybind11;
using namespace gramfree;
using namespace gramfree::bindings;

namespace {

// out = op(X, Z, V) for the three operators whose result is (rows_of(X or Z), V.cols).
enum class Op { matvec, rmatvec, normal, grad };

template <class T>
py::array run_op(Op op, const KernelSpec& spec, const py::array& X, const py::array& Z,
                 const py::array& V, const Options& options, DType dt,
                 const py::object& weights = py::none()) {
  const auto x = view<T>(X, "X", dt), z = view<T>(Z, "Z", dt);
  const T* w = row_weights<T>(weights, x.rows, dt);
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
      case Op::matvec:
        kernel_matvec<T>(spec, x, z, v, o, options);
        break;
      case Op::rmatvec:
        kernel_rmatvec<T>(spec, x, z, v, o, options);
        break;
      case Op::normal:
        kernel_normal_matvec<T>(spec, x, z, v, o, options, w);
        break;
      case Op::grad:
        kernel_grad_matvec<T>(spec, x, z, v, o, options);
        break;
    }
  });
  return std::move(out);
}

// A column-major matrix given as its transpose in row-major order: rows of unit stride
// (any row pitch, so that sub-blocks of an F-ordered array need no copy). Returns the
// leading dimension.
std::size_t leading_dimension(const py::array& a, const char* name, std::size_t rows) {
  if (a.ndim() != 2) value_error(std::string(name) + ": expected a 2-d array");
  const auto item = py::ssize_t(a.itemsize());
  if (a.size() == 0) return std::max<std::size_t>(rows, 1);  // nothing is read or written
  if (a.shape(1) > 1 && a.strides(1) != item)
    value_error(std::string(name) + ": its last axis must have unit stride");
  if (a.shape(0) <= 1 || rows == 0) return std::max<std::size_t>(rows, 1);
  if (a.strides(0) <= 0 || a.strides(0) % item != 0 || std::size_t(a.strides(0) / item) < rows)
    value_error(std::string(name) + ": rows must not overlap (row stride below the row length)");
  return std::size_t(a.strides(0) / item);
}

template <class T>
void trsm_typed(const py::array& LT, py::array& XT, bool trans, int n_threads, DType dt) {
  if (dtype_of(XT, "XT") != dt) type_error("XT: dtype differs from LT's");
  if (LT.ndim() != 2 || LT.shape(0) != LT.shape(1)) value_error("LT: expected a square 2-d array");
  const std::size_t n = std::size_t(LT.shape(0));
  if (XT.ndim() != 2 || std::size_t(XT.shape(1)) != n)
    value_error("XT: expected shape (k, " + std::to_string(n) + ")");
  if (!XT.writeable()) value_error("XT: must be writeable");
  const std::size_t lda = leading_dimension(LT, "LT", n);
  const std::size_t ldx = leading_dimension(XT, "XT", n);
  const std::size_t k = std::size_t(XT.shape(0));
  const char* l0 = static_cast<const char*>(LT.data());
  const char* x0 = static_cast<const char*>(XT.data());
  const std::size_t lbytes = n == 0 ? 0 : ((n - 1) * lda + n) * sizeof(T);
  const std::size_t xbytes = n == 0 || k == 0 ? 0 : ((k - 1) * ldx + n) * sizeof(T);
  if (lbytes != 0 && xbytes != 0 && l0 < x0 + xbytes && x0 < l0 + lbytes)
    value_error("LT, XT: must not share memory");
  const T* L = static_cast<const T*>(LT.data());
  T* X = static_cast<T*>(XT.mutable_data());
  const Options options = make_options(n_threads);
  call_released([&] { triangular_solve_lower<T>(L, lda, n, X, ldx, k, trans, options); });
}

// A 1-d or 2-d float64 argument of the curvature product as a C-ordered array of the
// expected shape (converted where needed: the arithmetic is float64 anyway).
py::array_t<double> curvature_operand(const py::object& obj, const char* name,
                                      std::initializer_list<std::size_t> shape) {
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) type_error(std::string(name) + ": expected numbers convertible to float64");
  bool ok = std::size_t(a.ndim()) == shape.size();
  std::size_t axis = 0;
  for (const std::size_t want : shape) ok = ok && std::size_t(a.shape(py::ssize_t(axis++))) == want;
  if (!ok) {
    std::string expected = "(";
    axis = 0;
    for (const std::size_t want : shape) expected += (axis++ ? ", " : "") + std::to_string(want);
    value_error(std::string(name) + ": expected shape " + expected +
                (shape.size() == 1 ? ",)" : ")"));
  }
  return a;
}

template <class T>
py::array_t<double> curvature_typed(const py::array& K, const py::object& V_obj,
                                    const py::object& w_obj, const py::object& P_obj,
                                    const py::object& z_obj, const py::object& rows_obj,
                                    int n_threads) {
  if (K.ndim() != 2) value_error("K: expected a 2-d array");
  const std::size_t n = std::size_t(K.shape(0)), M = std::size_t(K.shape(1));
  const std::size_t ldk = leading_dimension(K, "K", M);
  auto V = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(V_obj);
  if (!V) type_error("V: expected numbers convertible to float64");
  if (V.ndim() != 2 || std::size_t(V.shape(0)) != M)
    value_error("V: expected a 2-d float64 array of shape (" + std::to_string(M) + ", k)");
  const std::size_t k = std::size_t(V.shape(1));
  // A default-constructed py::array_t is an empty array, not a null one: flags say which
  // optional operands were given.
  const bool has_P = !P_obj.is_none(), has_z = !z_obj.is_none(), has_rows = !rows_obj.is_none();
  // With rows, the product runs over those rows of K, and w and P have one row per index.
  // Copied here, before the GIL is released: the C++ side checks each index once and then
  // reads K through it, so no other thread may change them in between.
  std::vector<std::int64_t> rows;
  if (has_rows) {
    const py::array given = py::module_::import("numpy").attr("asarray")(rows_obj);
    const char kind = given.dtype().kind();
    if (given.ndim() != 1) value_error("rows: expected a 1-d array of row indices");
    if (given.size() > 0 && kind != 'i' && kind != 'u')
      type_error("rows: expected integer row indices");
    const auto as_int64 =
        py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(given);
    rows.assign(as_int64.data(), as_int64.data() + as_int64.size());
  }
  const std::size_t n_used = has_rows ? rows.size() : n;
  const auto w = curvature_operand(w_obj, "w", {n_used});
  if (has_z && !has_P) value_error("z: only with P (the softmax curvature)");
  py::array_t<double> P, z;
  if (has_P) P = curvature_operand(P_obj, "P", {n_used, k});
  if (has_z) z = curvature_operand(z_obj, "z", {k});
  py::array_t<double> out({py::ssize_t(M), py::ssize_t(k)});
  const T* Kp = static_cast<const T*>(K.data());
  const double* Vp = V.data();
  const double* wp = w.data();
  const double* Pp = has_P ? P.data() : nullptr;
  const double* zp = has_z ? z.data() : nullptr;
  double* op = out.mutable_data();
  const Options options = make_options(n_threads);
  const std::int64_t* rp = rows.data();
  call_released([&] {
    if (has_rows)
      curvature_product_rows<T>(Kp, ldk, n, M, rp, n_used, Vp, k, wp, Pp, zp, op, options);
    else
      curvature_product<T>(Kp, ldk, n, M, Vp, k, wp, Pp, zp, op, options);
  });
  return out;
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

// The caller's `out` for kernel_block: (rows, cols), writeable, its rows contiguous (unit
// column stride) and in order, sharing no memory with X or Z; returns its row stride in
// elements. Reusing one buffer spares a pass that streams blocks (the one-pass Nystrom
// solver) a fresh allocation, and its page faults, per block; a row-strided view (a block
// of a larger C-ordered matrix, A[r0:r1, c0:]) lets one triangle of a symmetric matrix be
// written block row by block row (the direct solver's), with nothing copied.
std::size_t check_block_out(const py::array& out, const py::array& X, const py::array& Z,
                            std::size_t rows, std::size_t cols) {
  if (out.ndim() != 2 || std::size_t(out.shape(0)) != rows || std::size_t(out.shape(1)) != cols)
    value_error("out: expected shape (" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
  if (!out.writeable()) value_error("out: must be writeable");
  const auto item = py::ssize_t(out.itemsize());
  const py::ssize_t row_stride = out.strides(0), col_stride = out.strides(1);
  std::size_t ld = cols;
  if (rows > 0 && cols > 0) {
    const bool unit_cols = cols == 1 || col_stride == item;
    const bool rows_apart = rows == 1 || (row_stride > 0 && row_stride % item == 0 &&
                                          std::size_t(row_stride / item) >= cols);
    if (!unit_cols || !rows_apart)
      value_error(
          "out: must be C-contiguous, or a view whose rows are contiguous and in order "
          "(A[r0:r1, c0:] of a C-ordered A)");
    if (rows > 1) ld = std::size_t(row_stride / item);
  }
  const auto* lo = static_cast<const char*>(out.data());
  const auto* hi = lo + (rows == 0 || cols == 0 ? 0 : ((rows - 1) * ld + cols) * item);
  for (const py::array* in : {&X, &Z}) {
    const auto* b = static_cast<const char*>(in->data());
    if (lo < b + in->nbytes() && b < hi) value_error("out: shares memory with X or Z");
  }
  return ld;
}

// K(X, Z) into out: of X's dtype, or float64 for float32 X -- values computed in float32 and
// widened as the engine stores them, for a float64 product (syrk) on float32 kernel values
// without a float32 block in memory.
template <class T>
void block_into(const KernelSpec& spec, const py::array& X, const py::array& Z, py::array& out,
                const Options& options, DType dt) {
  const auto x = view<T>(X, "X", dt), z = view<T>(Z, "Z", dt);
  const std::size_t ld = check_block_out(out, X, Z, x.rows, z.rows);
  if (dtype_of(out, "out") == dt) {
    Matrix<T> o{static_cast<T*>(out.mutable_data()), x.rows, z.rows, ld};
    call_released([&] { kernel_block<T>(spec, x, z, o, options); });
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    Matrix<double> o{static_cast<double*>(out.mutable_data()), x.rows, z.rows, ld};
    call_released([&] { kernel_block_widened(spec, x, z, o, options); });
    return;
  }
  type_error("out: dtype must be X's, or float64 for float32 X");
}

template <class T>
py::array diagonal_typed(const KernelSpec& spec, const py::array& X, DType dt) {
  const auto x = view<T>(X, "X", dt);
  py::array_t<double> out(py::ssize_t(x.rows));
  call_released([&] { kernel_diagonal<T>(spec, x, out.mutable_data()); });
  return std::move(out);
}

const char* name_of(Metric metric) {
  switch (metric) {
    case Metric::dot:
      return "dot";
    case Metric::sqdist:
      return "sqdist";
    case Metric::l1:
      return "l1";
  }
  return "?";
}

const char* name_of(Domain domain) {
  switch (domain) {
    case Domain::unused:
      return "unused";
    case Domain::positive:
      return "positive";
    case Domain::finite:
      return "finite";
    case Domain::power:
      return "power";
  }
  return "?";
}

const char* name_of(Gradient gradient) {
  switch (gradient) {
    case Gradient::none:
      return "none";
    case Gradient::fused:
      return "fused";
    case Gradient::direct:
      return "direct";
    case Gradient::constant:
      return "constant";
  }
  return "?";
}

// gramfree/kernel_table.hpp as Python data, one dict per kernel in KernelKind order.
py::list kernel_table_rows() {
  py::list rows;
  for (const KernelInfo& row : kernel_table) {
    py::dict params;
    const std::pair<const char*, Domain> domains[] = {{"gamma", row.gamma},
                                                      {"coef0", row.coef0},
                                                      {"degree", row.degree},
                                                      {"length_scale", row.length_scale}};
    for (const auto& [name, domain] : domains)
      if (domain != Domain::unused) params[name] = name_of(domain);
    py::dict d;
    d["name"] = row.name;
    d["metric"] = name_of(row.metric);
    d["parameters"] = params;
    d["needs_norms"] = row.needs_norms;
    d["gradient"] = name_of(row.gradient);
    d["has_gradient"] = row.gradient != Gradient::none;
    rows.append(d);
  }
  return rows;
}

}  // namespace

void bind_pathkernel(py::module_& m);  // pathkernel_module.cpp
void bind_cuda(py::module_& m);        // cuda_module.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "gramfree native core: fused Gram-free kernel operators";

  py::register_exception<interrupted>(m, "Interrupted", PyExc_KeyboardInterrupt);

#define GRAMFREE_KERNEL_ARGS                                                              \
  py::arg("kind"), py::arg("gamma") = 1.0, py::arg("coef0") = 1.0, py::arg("degree") = 3, \
                   py::arg("length_scale") = 1.0, py::arg("n_threads") = 0

  m.def(
      "kernel_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads) {
        return op_entry(Op::matvec, X, Z, V, kind, gamma, coef0, degree, length_scale, n_threads);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "K(X, Z) @ V, shape (n, k).");
  m.def(
      "kernel_rmatvec",
      [](const py::array& X, const py::array& Z, const py::array& U, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads) {
        return op_entry(Op::rmatvec, X, Z, U, kind, gamma, coef0, degree, length_scale, n_threads);
      },
      py::arg("X"), py::arg("Z"), py::arg("U"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "K(X, Z).T @ U, shape (m, k).");
  m.def(
      "kernel_normal_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads,
         const py::object& sample_weight) {
        return op_entry(Op::normal, X, Z, V, kind, gamma, coef0, degree, length_scale, n_threads,
                        sample_weight);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      py::arg("sample_weight") = py::none(),
      "K(X, Z).T @ diag(sample_weight) @ (K(X, Z) @ V) in one pass over X, shape (m, k).");
  m.def(
      "kernel_grad_matvec",
      [](const py::array& X, const py::array& Z, const py::array& V, const std::string& kind,
         double gamma, double coef0, int degree, double length_scale, int n_threads) {
        return op_entry(Op::grad, X, Z, V, kind, gamma, coef0, degree, length_scale, n_threads);
      },
      py::arg("X"), py::arg("Z"), py::arg("V"), py::kw_only(), GRAMFREE_KERNEL_ARGS,
      "Gradient of K(X, Z) @ V with respect to X, shape (n, k * d).");
  m.def(
      "kernel_block",
      [](const py::array& X, const py::array& Z, const std::string& kind, double gamma,
         double coef0, int degree, double length_scale, int n_threads,
         const py::object& out) -> py::object {
        const KernelSpec spec = make_spec(kind, gamma, coef0, degree, length_scale);
        const Options options = make_options(n_threads);
        const DType dt = dtype_of(X, "X");
        if (!out.is_none()) {
          if (!py::isinstance<py::array>(out)) type_error("out: must be a numpy array");
          py::array o = out.cast<py::array>();
          if (dt == DType::f32)
            block_into<float>(spec, X, Z, o, options, dt);
          else
            block_into<double>(spec, X, Z, o, options, dt);
          return out;
        }
        return dt == DType::f32 ? block_typed<float>(spec, X, Z, options, dt)
                                : block_typed<double>(spec, X, Z, options, dt);
      },
      py::arg("X"), py::arg("Z"), py::kw_only(), GRAMFREE_KERNEL_ARGS, py::arg("out") = py::none(),
      "K(X, Z) materialised, shape (n, m); into `out` when given (X's dtype, or float64 "
      "for float32 X: computed in float32, stored widened).");
  m.def(
      "kernel_diagonal",
      [](const py::array& X, const std::string& kind, double gamma, double coef0, int degree,
         double length_scale) {
        const KernelSpec spec = make_spec(kind, gamma, coef0, degree, length_scale);
        const DType dt = dtype_of(X, "X");
        return dt == DType::f32 ? diagonal_typed<float>(spec, X, dt)
                                : diagonal_typed<double>(spec, X, dt);
      },
      py::arg("X"), py::kw_only(), py::arg("kind"), py::arg("gamma") = 1.0, py::arg("coef0") = 1.0,
      py::arg("degree") = 3, py::arg("length_scale") = 1.0,
      "K(x, x) for each row of X (float64), shape (n,).");
#undef GRAMFREE_KERNEL_ARGS

  m.def(
      "triangular_solve_lower",
      [](const py::array& LT, const py::object& XT_obj, bool trans, int n_threads) {
        // An ndarray only: anything else would be converted to a temporary, solved and lost.
        if (!py::isinstance<py::array>(XT_obj)) type_error("XT: must be a numpy array");
        py::array XT = XT_obj.cast<py::array>();
        const DType dt = dtype_of(LT, "LT");
        if (dt == DType::f32)
          trsm_typed<float>(LT, XT, trans, n_threads, dt);
        else
          trsm_typed<double>(LT, XT, trans, n_threads, dt);
      },
      py::arg("LT"), py::arg("XT"), py::kw_only(), py::arg("trans") = false,
      py::arg("n_threads") = 0,
      "In place: X := L^-1 X (or L^-T X with trans) for lower-triangular L, both given "
      "transposed (LT = L.T, XT = X.T, each with rows of unit stride: F-ordered L and X); "
      "XT (k, n) is overwritten. For few right-hand sides, near the GEMM rate.");
  m.def(
      "curvature_product",
      [](const py::array& K, const py::object& V, const py::object& w, const py::object& P,
         const py::object& z, const py::object& rows, int n_threads) -> py::array {
        if (dtype_of(K, "K") == DType::f32)
          return curvature_typed<float>(K, V, w, P, z, rows, n_threads);
        return curvature_typed<double>(K, V, w, P, z, rows, n_threads);
      },
      py::arg("K"), py::arg("V"), py::arg("w"), py::arg("P") = py::none(),
      py::arg("z") = py::none(), py::kw_only(), py::arg("rows") = py::none(),
      py::arg("n_threads") = 0,
      "K^T S (K V - 1 z^T) (M, k), float64, in one pass over K (n, M; float32 or float64, "
      "rows of unit stride): S per row i is w_i (diag p_i - p_i p_i^T) with P (n, k), else "
      "w_i (z is then refused). V (M, k), w (n,), P, z (k,) are float64 (converted). With "
      "rows (r,), integer indices into K's rows: the product over those rows of K (K[rows], "
      "without copying them), w (r,) and P (r, k) one row per index. Values are not "
      "checked: NaN or infinity propagates.");
  m.def("kernel_table", &kernel_table_rows,
        "The kernels of the core (csrc/gramfree/kernel_table.hpp): per kernel its name, "
        "metric ('dot', 'sqdist', 'l1'), parameters used with their domains ('positive', "
        "'finite', 'power': an integer in [1, max_degree]), needs_norms, gradient "
        "('none', 'fused', 'direct', 'constant') and has_gradient.");
  m.attr("max_degree") = kMaxDegree;

  bind_pathkernel(m);
  bind_cuda(m);

  // From python/gramfree/_version.py via CMake: a module left from an older build shows
  // a version other than the package's (tests/test_version.py).
  m.attr("__version__") = GRAMFREE_VERSION;
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
