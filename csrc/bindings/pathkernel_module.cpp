// gramfree._core's path-kernel functions: networks trained by gradient descent and their
// decomposition over the training examples. The network and its training run are passed as
// one dict (`spec`), built by python/gramfree/pathkernel/network.py.
#include "bindings/common.hpp"
#include "gramfree/pathkernel.hpp"

namespace py = pybind11;
using namespace gramfree;
using namespace gramfree::bindings;
namespace pk = gramfree::pathkernel;

namespace {

struct Run {
  pk::Architecture arch;
  pk::TrainConfig config;
};

template <class T>
T get(const py::dict& d, const char* key) {
  if (!d.contains(key)) value_error(std::string("spec: missing '") + key + "'");
  return d[key].cast<T>();
}

Run parse_spec(const py::dict& spec) {
  Run run;
  run.arch.sizes = get<std::vector<std::size_t>>(spec, "sizes");
  run.arch.activation = pk::activation_from_string(get<std::string>(spec, "activation"));
  run.arch.loss = pk::loss_from_string(get<std::string>(spec, "loss"));
  run.config.learning_rate = get<double>(spec, "learning_rate");
  const long long steps = get<long long>(spec, "n_steps");
  if (steps < 1) value_error("n_steps: must be >= 1");
  run.config.n_steps = std::size_t(steps);
  const long long batch = get<long long>(spec, "batch_size");
  if (batch < 0) value_error("batch_size: must be >= 0");
  run.config.batch_size = std::size_t(batch);
  run.config.alpha = get<double>(spec, "alpha");
  run.config.seed = get<std::uint64_t>(spec, "seed");
  run.config.shuffle = get<bool>(spec, "shuffle");
  pk::validate(run.arch);
  return run;
}

ConstMatrix<double> f64(const py::array& a, const char* name) {
  return view<double>(a, name, DType::f64);
}

std::vector<double> params_of(const py::array& a, const char* name) {
  if (dtype_of(a, name) != DType::f64 || a.ndim() != 1 || !(a.flags() & py::array::c_style))
    value_error(std::string(name) + ": expected a contiguous 1-d float64 array");
  const double* p = static_cast<const double*>(a.data());
  return std::vector<double>(p, p + a.shape(0));
}

// The training set of a replay, its sample weights (None: unweighted) checked against X.
pk::Dataset dataset(const py::array& X, const py::array& Y, const py::object& sample_weight) {
  pk::Dataset data{f64(X, "X"), f64(Y, "y")};
  data.weights = row_weights<double>(sample_weight, data.X.rows, DType::f64);
  return data;
}

py::array_t<double> to_array(const std::vector<double>& v, std::vector<py::ssize_t> shape) {
  py::array_t<double> out(shape);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

}  // namespace

void bind_pathkernel(py::module_& m) {
  m.def(
      "mlp_train",
      [](const py::dict& spec, const py::array& X, const py::array& Y, const py::array& initial,
         int n_threads, const py::object& callback, long long checkpoint_every,
         const py::object& sample_weight) {
        const Run run = parse_spec(spec);
        const pk::Dataset data = dataset(X, Y, sample_weight);
        const std::vector<double> w0 = params_of(initial, "initial parameters");
        const Options options = make_options(n_threads);
        pk::StepCallback cb;
        if (!callback.is_none())
          cb = [&callback](std::size_t step, double loss) {
            py::gil_scoped_acquire gil;
            callback(step, loss);
          };
        pk::TrainResult result;
        try {
          if (checkpoint_every < 0) value_error("checkpoint_every: must be >= 0");
          call_released([&] {
            result = pk::train(run.arch, run.config, data, w0, options, cb,
                               std::size_t(checkpoint_every));
          });
        } catch (const std::runtime_error& e) {
          if (dynamic_cast<const py::error_already_set*>(&e)) throw;
          throw py::value_error(e.what());
        }
        const auto P = py::ssize_t(result.params.size());
        auto checkpoints = py::array_t<double>({py::ssize_t(result.checkpoints.size()), P});
        for (std::size_t c = 0; c < result.checkpoints.size(); ++c)
          std::copy(result.checkpoints[c].begin(), result.checkpoints[c].end(),
                    checkpoints.mutable_data() + c * P);
        return py::make_tuple(to_array(result.params, {P}),
                              to_array(result.loss_curve, {py::ssize_t(result.loss_curve.size())}),
                              checkpoints);
      },
      py::arg("spec"), py::arg("X"), py::arg("Y"), py::arg("initial"), py::kw_only(),
      py::arg("n_threads") = 0, py::arg("callback") = py::none(), py::arg("checkpoint_every") = 0,
      py::arg("sample_weight") = py::none(),
      "Train by plain gradient descent; returns (final parameters, loss per step, "
      "checkpoints every checkpoint_every steps as rows). sample_weight: None or n float64 "
      "weights (every replay of the run must pass the same).");

  m.def(
      "mlp_predict",
      [](const py::dict& spec, const py::array& params, const py::array& X, int n_threads) {
        const Run run = parse_spec(spec);
        const std::vector<double> w = params_of(params, "parameters");
        const auto x = f64(X, "X");
        check_result_size({x.rows, run.arch.n_outputs()}, "predictions",
                          "predict fewer rows at a time");
        auto out = py::array_t<double>({py::ssize_t(x.rows), py::ssize_t(run.arch.n_outputs())});
        Matrix<double> o{out.mutable_data(), x.rows, run.arch.n_outputs()};
        const Options options = make_options(n_threads);
        call_released([&] { pk::predict(run.arch, w, x, o, options); });
        return out;
      },
      py::arg("spec"), py::arg("params"), py::arg("X"), py::kw_only(), py::arg("n_threads") = 0,
      "The network's outputs f(X), shape (n, k).");

  m.def(
      "mlp_decompose",
      [](const py::dict& spec, const py::array& X, const py::array& Y, const py::array& initial,
         const py::object& queries, int n_nodes, double tol, int max_refine, long long first_step,
         long long last_step, int n_threads, const py::object& stop,
         const py::object& sample_weight) {
        const Run run = parse_spec(spec);
        const pk::Dataset data = dataset(X, Y, sample_weight);
        const std::vector<double> w0 = params_of(initial, "initial parameters");
        pk::DecomposeConfig dc;
        dc.n_nodes = n_nodes;
        dc.tol = tol;
        dc.max_refine = max_refine;
        dc.self_only = queries.is_none();
        if (first_step < 0 || last_step < 0) value_error("first_step, last_step: must be >= 0");
        dc.first_step = std::size_t(first_step);
        dc.last_step = std::size_t(last_step);
        ConstMatrix<double> q{};
        py::array qa;
        if (!dc.self_only) {
          qa = queries.cast<py::array>();
          q = f64(qa, "X");
          // The replay divides by the query count (its per-thread split): refuse, not SIGFPE.
          if (q.rows == 0) value_error("X: no queries (0 rows); pass at least one");
        }
        const std::size_t n = data.X.rows, k = run.arch.n_outputs();
        const std::size_t nq = dc.self_only ? n : q.rows;
        if (!dc.self_only && k != 0 && nq != 0 &&
            n > std::numeric_limits<std::size_t>::max() / nq / k / 8)
          value_error("contributions: shape overflows the address space");
        if (!dc.self_only && nq * n * k * sizeof(double) > physical_memory_bytes())
          value_error("contributions of shape (" + std::to_string(nq) + ", " + std::to_string(n) +
                      ", " + std::to_string(k) +
                      ") need more memory than this machine has: "
                      "decompose fewer queries at a time");
        const Options options = make_options(n_threads, stop);
        pk::Decomposition r;
        try {
          call_released([&] { r = pk::decompose(run.arch, run.config, data, w0, q, dc, options); });
        } catch (const std::runtime_error& e) {
          if (dynamic_cast<const py::error_already_set*>(&e)) throw;
          throw py::value_error(e.what());
        }
        const auto Q = py::ssize_t(nq), N = py::ssize_t(n), K = py::ssize_t(k);
        py::dict out;
        out["initial"] = to_array(r.initial, {Q, K});
        out["final"] = to_array(r.final, {Q, K});
        out["contributions"] =
            dc.self_only ? to_array(r.contributions, {N, K}) : to_array(r.contributions, {Q, N, K});
        out["reg"] = to_array(r.reg, {Q, K});
        out["final_params"] = to_array(r.final_params, {py::ssize_t(r.final_params.size())});
        out["path_norm"] = to_array(r.path_norm, {N});
        out["worst_step_residual"] = r.worst_step_residual;
        out["worst_step_residual_before_refine"] = r.worst_step_residual_before_refine;
        out["refined_segments"] = r.refined_segments;
        out["relu_pieces"] = r.relu_pieces;
        return out;
      },
      py::arg("spec"), py::arg("X"), py::arg("Y"), py::arg("initial"), py::arg("queries"),
      py::kw_only(), py::arg("n_nodes") = 4, py::arg("tol") = 1e-12, py::arg("max_refine") = 8,
      py::arg("first_step") = 0, py::arg("last_step") = 0, py::arg("n_threads") = 0,
      py::arg("stop") = py::none(), py::arg("sample_weight") = py::none(),
      "Replay the training and split each query's output over the training examples; "
      "queries=None gives each training example's contribution to itself.");

  m.def(
      "mlp_tangent_kernel",
      [](const py::dict& spec, const py::array& X, const py::array& Y, const py::array& initial,
         const py::array& A, const py::array& B, long long step, bool path, long long first_step,
         int n_threads, const py::object& sample_weight, bool return_params) -> py::object {
        const Run run = parse_spec(spec);
        const pk::Dataset data = dataset(X, Y, sample_weight);
        const std::vector<double> w0 = params_of(initial, "initial parameters");
        const auto a = f64(A, "X"), b = f64(B, "Y");
        if (step < 0) value_error("step: must be >= 0");
        if (first_step < 0) value_error("first_step: must be >= 0");
        const std::size_t k = run.arch.n_outputs();
        // pk::tangent_kernel's two na x nb buffers beside the (na, nb, k) result.
        check_result_size({a.rows, b.rows, k}, "kernel",
                          "pass fewer rows of X or Y at a time (Y=None means the whole "
                          "training set)",
                          2.0 / double(k));
        auto out = py::array_t<double>({py::ssize_t(a.rows), py::ssize_t(b.rows), py::ssize_t(k)});
        double* o = out.mutable_data();
        const Options options = make_options(n_threads);
        std::vector<double> replayed;
        call_released([&] {
          pk::tangent_kernel(run.arch, run.config, data, w0, std::size_t(first_step), a, b,
                             std::size_t(step), path, o, options, &replayed);
        });
        if (!return_params) return std::move(out);
        return py::make_tuple(out, to_array(replayed, {py::ssize_t(replayed.size())}));
      },
      py::arg("spec"), py::arg("X"), py::arg("Y"), py::arg("initial"), py::arg("A"), py::arg("B"),
      py::kw_only(), py::arg("step") = 0, py::arg("path") = false, py::arg("first_step") = 0,
      py::arg("n_threads") = 0, py::arg("sample_weight") = py::none(),
      py::arg("return_params") = false,
      "Tangent kernel at a step (or, path=True, the path kernel), shape (len(A), len(B), k); "
      "with return_params, (kernel, the parameters the replay reached: w_step, or w_T).");
}
