// The exact decomposition of a trained network's outputs over its training examples, and the
// tangent and path kernels, all by replaying the deterministic training from w_0.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>

#include "pathkernel/replay.hpp"
#include "pathkernel/segments.hpp"

namespace gramfree::pathkernel {

namespace {

using detail::ForwardCache;
using detail::gemm_nt;
using detail::TransposedWeights;

using Pieces = std::vector<std::pair<double, double>>;

// Query gradients at points of one step's segment, in factored form: row r is query
// query[r] at s[r] with quadrature weight weight[r]; A[l] (rows x fan_in) its layer inputs,
// D[l] (rows * k x fan_out) the factor of each output's gradient.
struct Rows {
  std::vector<std::size_t> query;
  std::vector<double> s, weight;
  ForwardCache cache;
  std::vector<std::vector<double>> D;
  std::vector<double> E;   // rows x k: grad f_o . Delta_t (the self-check's estimate)
  std::vector<double> Rg;  // rows x k: sum_l a^T W_l d (weight decay's share, per unit coefficient)
  std::vector<char> active;

  std::size_t size() const { return query.size(); }
  void add(std::size_t q, const Pieces& pieces, const std::vector<double>& nodes,
           const std::vector<double>& weights) {
    for (const auto& [lo, hi] : pieces)
      for (std::size_t j = 0; j < nodes.size(); ++j) {
        query.push_back(q);
        s.push_back(lo + (hi - lo) * nodes[j]);
        weight.push_back((hi - lo) * weights[j]);
      }
  }
};

double dot(const double* a, const double* b, std::size_t n) {
  double v = 0;
  for (std::size_t i = 0; i < n; ++i) v += a[i] * b[i];
  return v;
}

class Decomposer {
 public:
  Decomposer(const Architecture& arch, const Dataset& data, ConstMatrix<double> queries,
             const DecomposeConfig& dc, const Options& options)
      : arch_(arch),
        data_(data),
        queries_(queries),
        dc_(dc),
        options_(options),
        k_(arch.n_outputs()),
        L_(arch.n_layers()) {
    if (dc.n_nodes == 1) {  // the start of the step only: TracIn's first-order term
      nodes_ = {0.0};
      weights_ = {1.0};
    } else {
      detail::gauss_legendre_01(dc.n_nodes, nodes_, weights_);
    }
    identity_.assign(k_ * k_, 0.0);
    for (std::size_t o = 0; o < k_; ++o) identity_[o * k_ + o] = 1.0;
  }

  // The query set of this step: its inputs (nq x d) and f at both ends of the segment.
  void set_queries(const double* X, std::size_t nq) {
    Xq_ = X;
    nq_ = nq;
  }

  // Evaluates rows along the segment w + s Delta (w = replay.params()).
  void evaluate(const detail::Replay& replay, const TransposedWeights& dwt, Rows& rows) const {
    const std::size_t R = rows.size(), d = arch_.n_inputs();
    std::vector<double> X(R * d);
    for (std::size_t r = 0; r < R; ++r) std::copy_n(Xq_ + rows.query[r] * d, d, X.data() + r * d);
    const double* w = replay.params().data();
    const double* delta = replay.delta().data();
    detail::forward(arch_, w, replay.transposed(), X.data(), R, rows.cache, options_, delta, &dwt,
                    rows.s.data());
    std::vector<double> top(R * k_ * k_);
    for (std::size_t r = 0; r < R; ++r)
      std::copy(identity_.begin(), identity_.end(), top.begin() + r * k_ * k_);
    detail::backward(arch_, w, rows.cache, top.data(), k_, rows.D, options_, delta, rows.s.data());
    rows.E.assign(R * k_, 0.0);
    rows.Rg.assign(R * k_, 0.0);
    std::vector<double> T;
    for (std::size_t l = 0; l < L_; ++l) {
      const std::size_t fi = arch_.sizes[l], fo = arch_.sizes[l + 1];
      const double* db = delta + arch_.bias_offset(l);
      const std::vector<double>& A = rows.cache.A[l];
      const std::vector<double>& D = rows.D[l];
      T.resize(R * fo);
      gemm_nt(A.data(), R, dwt.Wt[l].data(), fo, fi, T.data(), options_);
      for (std::size_t r = 0; r < R; ++r)
        for (std::size_t o = 0; o < k_; ++o) {
          const double* Dro = D.data() + (r * k_ + o) * fo;
          rows.E[r * k_ + o] += dot(T.data() + r * fo, Dro, fo) + dot(db, Dro, fo);
        }
      if (replay.alpha() > 0) {
        gemm_nt(A.data(), R, replay.transposed().Wt[l].data(), fo, fi, T.data(), options_);
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t o = 0; o < k_; ++o)
            rows.Rg[r * k_ + o] += dot(T.data() + r * fo, D.data() + (r * k_ + o) * fo, fo);
      }
    }
    rows.active.assign(R, 1);
  }

  // Pieces of [0, 1] for query q at this step (split at ReLU switches).
  Pieces initial_pieces(const detail::Replay& replay, std::size_t q) {
    Pieces pieces;
    double lo = 0;
    if (arch_.activation == Activation::relu && dc_.n_nodes > 1) {
      for (double p : detail::relu_switch_points(
               arch_, replay.params().data(), replay.delta().data(), Xq_ + q * arch_.n_inputs())) {
        pieces.emplace_back(lo, p);
        lo = p;
        ++relu_pieces_;
      }
    }
    pieces.emplace_back(lo, 1.0);
    return pieces;
  }

  // Builds and evaluates this step's rows: every query's pieces, then, for the queries whose
  // quadrature misses the network's actual change by more than the tolerance, the pieces
  // halved, up to max_refine times. Returns the blocks; a row is active in exactly one.
  std::vector<Rows> sample_step(const detail::Replay& replay, const TransposedWeights& dwt,
                                const std::vector<double>& f0, const std::vector<double>& f1,
                                double scale) {
    std::vector<Pieces> pieces(nq_);
    last_worst_.assign(nq_, 0.0);
    std::vector<Rows> blocks(1);
    for (std::size_t q = 0; q < nq_; ++q) {
      pieces[q] = initial_pieces(replay, q);
      blocks[0].add(q, pieces[q], nodes_, weights_);
    }
    evaluate(replay, dwt, blocks[0]);
    std::vector<std::size_t> failing = misses(blocks[0], f0, f1, scale, true);
    const int max_refine = dc_.n_nodes == 1 ? 0 : dc_.max_refine;
    for (int level = 0; level < max_refine && !failing.empty(); ++level) {
      Rows next;
      for (std::size_t q : failing) {
        Pieces halves;
        for (const auto& [lo, hi] : pieces[q]) {
          const double mid = 0.5 * (lo + hi);
          halves.emplace_back(lo, mid);
          halves.emplace_back(mid, hi);
        }
        pieces[q].swap(halves);
        next.add(q, pieces[q], nodes_, weights_);
        ++refined_;
      }
      evaluate(replay, dwt, next);
      // The older rows of these queries are superseded.
      std::vector<char> redone(nq_, 0);
      for (std::size_t q : failing) redone[q] = 1;
      for (Rows& b : blocks)
        for (std::size_t r = 0; r < b.size(); ++r)
          if (redone[b.query[r]]) b.active[r] = 0;
      blocks.push_back(std::move(next));
      failing = misses(blocks.back(), f0, f1, scale, false);
    }
    for (double w : last_worst_) after_refine_ = std::max(after_refine_, w);
    return blocks;
  }

  // Queries whose active rows' quadrature of grad f . Delta misses f1 - f0 by more than tol.
  std::vector<std::size_t> misses(const Rows& rows, const std::vector<double>& f0,
                                  const std::vector<double>& f1, double scale, bool first) {
    std::vector<double> est(nq_ * k_, 0.0);
    std::vector<char> present(nq_, 0);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (!rows.active[r]) continue;
      present[rows.query[r]] = 1;
      for (std::size_t o = 0; o < k_; ++o)
        est[rows.query[r] * k_ + o] += rows.weight[r] * rows.E[r * k_ + o];
    }
    std::vector<std::size_t> out;
    for (std::size_t q = 0; q < nq_; ++q) {
      if (!present[q]) continue;
      double worst = 0;
      for (std::size_t o = 0; o < k_; ++o) {
        const std::size_t e = q * k_ + o;
        worst = std::max(worst, std::abs(f1[e] - f0[e] - est[e]) / scale);
      }
      if (first) before_refine_ = std::max(before_refine_, worst);
      last_worst_[q] = worst;
      if (worst > dc_.tol) out.push_back(q);
    }
    return out;
  }

  const Architecture& arch_;
  const Dataset& data_;
  ConstMatrix<double> queries_;
  DecomposeConfig dc_;
  const Options& options_;
  const std::size_t k_, L_;
  std::vector<double> nodes_, weights_, identity_;
  const double* Xq_ = nullptr;
  std::size_t nq_ = 0;
  std::size_t refined_ = 0, relu_pieces_ = 0;
  double before_refine_ = 0;
  // The self-check residual after refinement: per query of this step, at its last level
  // (last_worst_), and its maximum over every step so far (after_refine_).
  std::vector<double> last_worst_;
  double after_refine_ = 0;
};

void forward_out(const Architecture& arch, const std::vector<double>& w, const double* X,
                 std::size_t rows, std::vector<double>& out, const Options& options) {
  TransposedWeights wt;
  wt.assign(arch, w.data());
  ForwardCache cache;
  detail::forward(arch, w.data(), wt, X, rows, cache, options);
  out = cache.Z.back();
}

}  // namespace

Decomposition decompose(const Architecture& arch, const TrainConfig& config, const Dataset& data,
                        const std::vector<double>& initial, ConstMatrix<double> queries,
                        const DecomposeConfig& dc, const Options& options) {
  if (dc.n_nodes < 1 || dc.n_nodes > 64)
    throw std::invalid_argument("quadrature: number of nodes must be in 1..64");
  if (!(dc.tol > 0) || !std::isfinite(dc.tol))
    throw std::invalid_argument("tol: must be a finite number > 0");
  if (dc.max_refine < 0 || dc.max_refine > 30)
    throw std::invalid_argument("max_refine: must be in 0..30");
  const std::size_t last = dc.last_step == 0 ? config.n_steps : dc.last_step;
  if (dc.first_step >= last || last > config.n_steps)
    throw std::invalid_argument("steps: need first_step < last_step <= n_steps");
  detail::Replay replay(arch, config, data, initial, options, dc.first_step);
  const std::size_t n = data.X.rows, k = arch.n_outputs(), d = arch.n_inputs(), L = arch.n_layers();
  if (!dc.self_only && queries.cols != d)
    throw std::invalid_argument("X: " + std::to_string(queries.cols) +
                                " features, the network expects " + std::to_string(d));
  if (!dc.self_only && queries.data == nullptr && queries.rows > 0)
    throw std::invalid_argument("X: null data");
  for (std::size_t e = 0; !dc.self_only && e < queries.rows * queries.cols; ++e)
    if (!std::isfinite(queries.data[e])) throw std::invalid_argument("X: contains NaN or inf");
  const std::size_t nq = dc.self_only ? n : queries.rows;
  const double* Xall = dc.self_only ? data.X.data : queries.data;

  Decomposition out;
  out.n_queries = nq;
  out.n_train = n;
  out.n_outputs = k;
  out.contributions.assign(dc.self_only ? n * k : nq * n * k, 0.0);
  out.reg.assign(nq * k, 0.0);
  out.path_norm.assign(n, 0.0);
  forward_out(arch, initial, Xall, nq, out.initial, options);

  Decomposer dec(arch, data, queries, dc, options);
  detail::StepPoller poller(options);
  TransposedWeights dwt;
  std::vector<double> f0 = out.initial, f1, Xb, step_sum, GA, GD, S;
  std::vector<double> f0b, f1b;
  while (replay.step() < last) {
    poller.poll();
    replay.compute();
    const std::vector<std::size_t>& batch = replay.batch();
    const std::size_t B = batch.size();
    // The factors BD already carry each example's sample weight (Replay scales its loss
    // derivative), so its share is coef * (its gradient factors) as without weights.
    const double coef = -replay.step_scale();
    dwt.assign(arch, replay.delta().data());
    const ForwardCache& bc = replay.cache();
    const std::vector<std::vector<double>>& BD = replay.factors();

    for (std::size_t p = 0; p < B; ++p) {
      double g2 = 0;
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
        const double* a = bc.A[l].data() + p * fi;
        const double* dl = BD[l].data() + p * fo;
        g2 += (dot(a, a, fi) + 1) * dot(dl, dl, fo);
      }
      out.path_norm[batch[p]] += -coef * g2;
    }

    // This step's query set and f at both ends of its segment.
    const double* Xq = Xall;
    std::size_t nqs = nq;
    const std::vector<double>* pf0 = &f0;
    if (dc.self_only) {
      Xq = bc.A[0].data();
      nqs = B;
      f0b.assign(bc.Z[L - 1].begin(), bc.Z[L - 1].end());
      forward_out(arch, replay.next(), Xq, B, f1b, options);
      pf0 = &f0b;
    } else {
      forward_out(arch, replay.next(), Xq, nq, f1, options);
    }
    const std::vector<double>& a0 = *pf0;
    const std::vector<double>& a1 = dc.self_only ? f1b : f1;
    double scale = 0;
    for (std::size_t e = 0; e < nqs * k; ++e)
      scale = std::max({scale, std::abs(a0[e]), std::abs(a1[e])});
    scale = std::max(scale, 1e-300);

    dec.set_queries(Xq, nqs);
    std::vector<Rows> blocks = dec.sample_step(replay, dwt, a0, a1, scale);

    step_sum.assign(nqs * k, 0.0);
    for (Rows& rows : blocks) {
      const std::size_t R = rows.size();
      // No query rows (zero queries): nothing to add, and the chunk below divides by R
      // (SIGFPE from the C++ API; a review).
      if (R == 0) continue;
      for (std::size_t r = 0; r < R; ++r) {
        if (!rows.active[r] || replay.alpha() == 0) continue;
        for (std::size_t o = 0; o < k; ++o) {
          const double v = coef * replay.alpha() * rows.weight[r] * rows.Rg[r * k + o];
          const std::size_t slot = dc.self_only ? batch[rows.query[r]] : rows.query[r];
          out.reg[slot * k + o] += v;
          step_sum[rows.query[r] * k + o] += v;
        }
      }
      if (dc.self_only) {
        // Row r belongs to batch position query[r]: only its own column.
        for (std::size_t r = 0; r < R; ++r) {
          if (!rows.active[r]) continue;
          const std::size_t p = rows.query[r];
          for (std::size_t o = 0; o < k; ++o) {
            double v = 0;
            for (std::size_t l = 0; l < L; ++l) {
              const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
              const double ga = dot(rows.cache.A[l].data() + r * fi, bc.A[l].data() + p * fi, fi);
              const double gd = dot(rows.D[l].data() + (r * k + o) * fo, BD[l].data() + p * fo, fo);
              v += (ga + 1) * gd;
            }
            v *= coef * rows.weight[r];
            out.contributions[batch[p] * k + o] += v;
            step_sum[p * k + o] += v;
          }
        }
        continue;
      }
      // Columns of the batch in chunks, so the scratch stays ~64 MiB whatever B.
      const std::size_t chunk =
          std::max<std::size_t>(1, std::min<std::size_t>(B, (std::size_t(8) << 20) / (R * k + R)));
      for (std::size_t c0 = 0; c0 < B; c0 += chunk) {
        const std::size_t nc = std::min(chunk, B - c0);
        S.assign(R * k * nc, 0.0);
        for (std::size_t l = 0; l < L; ++l) {
          const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
          GA.resize(R * nc);
          GD.resize(R * k * nc);
          gemm_nt(rows.cache.A[l].data(), R, bc.A[l].data() + c0 * fi, nc, fi, GA.data(), options);
          gemm_nt(rows.D[l].data(), R * k, BD[l].data() + c0 * fo, nc, fo, GD.data(), options);
          for (std::size_t r = 0; r < R; ++r)
            for (std::size_t o = 0; o < k; ++o) {
              double* Sro = S.data() + (r * k + o) * nc;
              const double* GDro = GD.data() + (r * k + o) * nc;
              const double* GAr = GA.data() + r * nc;
              for (std::size_t c = 0; c < nc; ++c) Sro[c] += (GAr[c] + 1) * GDro[c];
            }
        }
        for (std::size_t r = 0; r < R; ++r) {
          if (!rows.active[r]) continue;
          const std::size_t q = rows.query[r];
          const double cw = coef * rows.weight[r];
          double* Cq = out.contributions.data() + q * n * k;
          for (std::size_t o = 0; o < k; ++o) {
            const double* Sro = S.data() + (r * k + o) * nc;
            double sum = 0;
            for (std::size_t c = 0; c < nc; ++c) {
              const double v = cw * Sro[c];
              Cq[batch[c0 + c] * k + o] += v;
              sum += v;
            }
            step_sum[q * k + o] += sum;
          }
        }
      }
    }
    for (std::size_t e = 0; e < nqs * k; ++e)
      out.worst_step_residual =
          std::max(out.worst_step_residual, std::abs(a1[e] - a0[e] - step_sum[e]) / scale);

    if (!dc.self_only) f0.swap(f1);
    replay.commit();
  }
  forward_out(arch, replay.params(), Xall, nq, out.final, options);
  out.final_params = replay.params();
  for (double& v : out.path_norm) v = std::sqrt(v);
  // Self influences sum only each query's own contribution, not the step's whole change:
  // their residual is the quadrature's own self-check, as refined (the sums' residual was
  // about 0.2 whatever the quadrature).
  if (dc.self_only) out.worst_step_residual = dec.after_refine_;
  out.worst_step_residual_before_refine = dec.before_refine_;
  out.refined_segments = dec.refined_;
  out.relu_pieces = dec.relu_pieces_;
  return out;
}

void tangent_kernel(const Architecture& arch, const TrainConfig& config, const Dataset& data,
                    const std::vector<double>& params, std::size_t first_step,
                    ConstMatrix<double> A, ConstMatrix<double> B, std::size_t step, bool path,
                    double* out, const Options& options, std::vector<double>* replayed) {
  detail::Replay replay(arch, config, data, params, options, first_step);
  if (!path && step < first_step)
    throw std::invalid_argument("step: before the checkpoint the replay starts from");
  const std::size_t d = arch.n_inputs(), k = arch.n_outputs(), L = arch.n_layers();
  if (A.cols != d || B.cols != d)
    throw std::invalid_argument("X, Y: the network expects " + std::to_string(d) + " features");
  if ((A.data == nullptr && A.rows > 0) || (B.data == nullptr && B.rows > 0))
    throw std::invalid_argument("X, Y: null data");
  if (out == nullptr && A.rows * B.rows > 0) throw std::invalid_argument("out: null data");
  for (const auto& M : {A, B})
    for (std::size_t e = 0; e < M.rows * M.cols; ++e)
      if (!std::isfinite(M.data[e])) throw std::invalid_argument("X, Y: contain NaN or inf");
  if (!path && step > config.n_steps)
    throw std::invalid_argument("step: must be in 0.." + std::to_string(config.n_steps));
  const std::size_t na = A.rows, nb = B.rows;
  std::fill(out, out + na * nb * k, 0.0);
  std::vector<double> identity(k * k, 0.0);
  for (std::size_t o = 0; o < k; ++o) identity[o * k + o] = 1.0;

  ForwardCache ca, cb;
  std::vector<std::vector<double>> Da, Db;
  std::vector<double> GA, GD, Pa, Pb;
  auto add = [&](double factor) {
    const std::vector<double>& w = replay.params();
    for (auto [M, cache, D] : {std::tuple{&A, &ca, &Da}, std::tuple{&B, &cb, &Db}}) {
      detail::forward(arch, w.data(), replay.transposed(), M->data, M->rows, *cache, options);
      std::vector<double> top(M->rows * k * k);
      for (std::size_t r = 0; r < M->rows; ++r)
        std::copy(identity.begin(), identity.end(), top.begin() + r * k * k);
      detail::backward(arch, w.data(), *cache, top.data(), k, *D, options);
    }
    for (std::size_t l = 0; l < L; ++l) {
      const std::size_t fi = arch.sizes[l], fo = arch.sizes[l + 1];
      GA.resize(na * nb);
      gemm_nt(ca.A[l].data(), na, cb.A[l].data(), nb, fi, GA.data(), options);
      for (std::size_t o = 0; o < k; ++o) {
        Pa.resize(na * fo);
        Pb.resize(nb * fo);
        for (std::size_t r = 0; r < na; ++r)
          std::copy_n(Da[l].data() + (r * k + o) * fo, fo, Pa.data() + r * fo);
        for (std::size_t r = 0; r < nb; ++r)
          std::copy_n(Db[l].data() + (r * k + o) * fo, fo, Pb.data() + r * fo);
        GD.resize(na * nb);
        gemm_nt(Pa.data(), na, Pb.data(), nb, fo, GD.data(), options);
        for (std::size_t i = 0; i < na * nb; ++i) out[i * k + o] += factor * (GA[i] + 1) * GD[i];
      }
    }
  };
  detail::StepPoller poller(options);
  if (path) {
    while (!replay.done()) {
      poller.poll();
      add(config.learning_rate);
      replay.compute();
      replay.commit();
    }
  } else {
    while (replay.step() < step) {
      poller.poll();
      replay.compute();
      replay.commit();
    }
    add(1.0);
  }
  if (replayed != nullptr) *replayed = replay.params();
}

}  // namespace gramfree::pathkernel
