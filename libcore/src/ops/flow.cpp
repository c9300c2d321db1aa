// Flow-matching ODE solvers, the velocity adapter, exact divergences and the
// change-of-variables log-likelihood (see nnkit/ops/flow.hpp).
#include "nnkit/ops/flow.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "nnkit/error.hpp"
#include "nnkit/memory_limit.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace nnkit::flow {

namespace {

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// Runs fn(r0, r1) over row ranges whose interior boundaries are global
// multiples of kRowBlock, on the pool's threads, with BLAS single-threaded.
void for_blocks(std::int64_t n, std::int64_t first_row,
                const std::function<void(std::int64_t, std::int64_t)>& fn) {
  const std::int64_t B = models::kRowBlock;
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  struct Restore {
    ~Restore() {
      if (openblas_set_num_threads) openblas_set_num_threads(thread_count());
    }
  } restore;
  const std::int64_t head = std::min(n, (B - first_row % B) % B);
  const std::int64_t chunks = (head > 0) + (n - head + B - 1) / B;
  auto start = [&](std::int64_t c) {
    if (head == 0) return std::min(n, c * B);
    return c == 0 ? 0 : std::min(n, head + (c - 1) * B);
  };
  parallel_for(chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) fn(start(c), start(c + 1));
  });
}

// y = x + a * k over the whole state.
inline void axpy_into(std::vector<double>& out, const std::vector<double>& x, double a, const std::vector<double>& k) {
  const std::size_t n = x.size();
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] + a * k[i];
}

// Dormand-Prince 5(4) tableau.
constexpr double c2 = 1. / 5, c3 = 3. / 10, c4 = 4. / 5, c5 = 8. / 9;
constexpr double a21 = 1. / 5;
constexpr double a31 = 3. / 40, a32 = 9. / 40;
constexpr double a41 = 44. / 45, a42 = -56. / 15, a43 = 32. / 9;
constexpr double a51 = 19372. / 6561, a52 = -25360. / 2187, a53 = 64448. / 6561, a54 = -212. / 729;
constexpr double a61 = 9017. / 3168, a62 = -355. / 33, a63 = 46732. / 5247, a64 = 49. / 176, a65 = -5103. / 18656;
constexpr double b1 = 35. / 384, b3 = 500. / 1113, b4 = 125. / 192, b5 = -2187. / 6784, b6 = 11. / 84;
constexpr double e1 = 71. / 57600, e3 = -71. / 16695, e4 = 71. / 1920, e5 = -17253. / 339200, e6 = 22. / 525,
                 e7 = -1. / 40;

}  // namespace

const char* solver_name(Solver s) {
  switch (s) {
    case Solver::euler: return "euler";
    case Solver::midpoint: return "midpoint";
    case Solver::heun: return "heun";
    case Solver::rk4: return "rk4";
    case Solver::dopri5: return "dopri5";
  }
  return "?";
}

std::optional<Solver> parse_solver(const std::string& s) {
  for (Solver v : {Solver::euler, Solver::midpoint, Solver::heun, Solver::rk4, Solver::dopri5})
    if (s == solver_name(v)) return v;
  return std::nullopt;
}

int evaluations_per_step(Solver s) {
  switch (s) {
    case Solver::euler: return 1;
    case Solver::midpoint:
    case Solver::heun: return 2;
    case Solver::rk4: return 4;
    case Solver::dopri5: return 6;
  }
  return 0;
}

double shift_time(double t, double s) { return s * t / (1 + (s - 1) * t); }

std::vector<double> time_grid(std::int64_t steps, double shift, bool reverse) {
  if (steps < 1 || steps > kMaxSteps)
    throw_usage("the number of steps must be from 1 to " + std::to_string(kMaxSteps) + ", not " + std::to_string(steps));
  if (!(shift > 0) || !std::isfinite(shift)) throw_usage("the shift must be a positive number");
  std::vector<double> g = make_buffer<double>(steps + 1, "the time grid of " + std::to_string(steps) + " steps");
  for (std::int64_t i = 0; i <= steps; ++i) {
    const double t = 1.0 - static_cast<double>(i) / static_cast<double>(steps);
    g[static_cast<std::size_t>(i)] = shift_time(t, shift);
  }
  g.front() = 1;
  g.back() = 0;
  if (reverse) std::reverse(g.begin(), g.end());
  return g;
}

void validate(const Options& o) {
  if (o.solver != Solver::dopri5 && (o.steps < 1 || o.steps > kMaxSteps))
    throw_usage("--steps must be from 1 to " + std::to_string(kMaxSteps) + ", not " + std::to_string(o.steps));
  if (!(o.shift > 0) || !std::isfinite(o.shift)) throw_usage("--shift must be a positive number");
  if (o.solver == Solver::dopri5) {
    if (!(o.rtol >= 0) || !(o.atol >= 0) || !std::isfinite(o.rtol) || !std::isfinite(o.atol) ||
        (o.rtol == 0 && o.atol == 0))
      throw_usage("--rtol and --atol must be non-negative and not both 0");
    if (!(o.first_step >= 0 && o.first_step <= 1)) throw_usage("the first dopri5 step must be from 0 to 1");
  }
}

// ------------------------------------------------------------------ field

Field::Field(models::Model& model, const std::string& where) : model_(model) {
  const auto& meta = model.metadata();
  auto it = meta.find("time_convention");
  if (it != meta.end()) {
    if (it->second == "reversed")
      reversed_ = true;
    else if (it->second != "flow")
      throw_data("model " + where + ": metadata 'time_convention' is " + in_quotes(it->second) +
                 ", want flow or reversed");
  }
  if (model.kind() == models::Kind::gmm) {
    model.set_output(models::Output::velocity);
  } else if (model.output() != models::Output::velocity) {
    throw_data("model " + where + " predicts " + models::output_name(model.output()) +
               ", not a velocity: sample it with ddim-sample (a flow model declares prediction=velocity)");
  }
}

models::Time Field::model_time(double t) const {
  models::Time time;
  time.t = reversed_ ? 1 - t : t;
  time.alpha = 1 - t;
  time.sigma = t;
  return time;
}

void Field::velocity(const float* x, std::int64_t n, double t, float* out, std::int64_t first_row,
                     const std::int64_t* labels) const {
  models::predict_parallel(model_, x, n, model_time(t), labels, out, first_row);
  if (reversed_ && model_.kind() != models::Kind::gmm)
    for (std::int64_t i = 0; i < n * dim(); ++i) out[i] = -out[i];
}

// ------------------------------------------------------------------ solvers

Stats integrate(const Options& o, const std::vector<double>& grid, std::int64_t n, std::int64_t m,
                std::vector<double>& y, const Rhs& rhs, const std::function<void(std::int64_t, double)>& on_step) {
  validate(o);
  if (grid.size() < 2) throw_internal("flow::integrate: a grid needs two times");
  Stats st;
  const std::size_t size = static_cast<std::size_t>(n * m);
  if (y.size() != size) throw_internal("flow::integrate: state size");
  // Each stage's state is as large as the whole batch in double: bound each.
  const std::string stage = "a solver stage of " + shape_str({n, m}) + " float64";
  auto state = [&] { return make_buffer<double>(n * m, stage); };
  std::vector<double> k1 = state(), k2 = state(), k3 = state(), k4 = state(), tmp = state();
  auto f = [&](double t, const std::vector<double>& in, std::vector<double>& out) {
    rhs(t, in.data(), out.data());
    ++st.evaluations;
  };
  if (o.solver != Solver::dopri5) {
    const std::int64_t S = static_cast<std::int64_t>(grid.size()) - 1;
    for (std::int64_t s = 0; s < S; ++s) {
      const double t = grid[s], h = grid[s + 1] - grid[s];
      f(t, y, k1);
      switch (o.solver) {
        case Solver::euler:
          for (std::size_t i = 0; i < size; ++i) y[i] += h * k1[i];
          break;
        case Solver::midpoint:
          axpy_into(tmp, y, h / 2, k1);
          f(t + h / 2, tmp, k2);
          for (std::size_t i = 0; i < size; ++i) y[i] += h * k2[i];
          break;
        case Solver::heun:
          axpy_into(tmp, y, h, k1);
          f(t + h, tmp, k2);
          for (std::size_t i = 0; i < size; ++i) y[i] += h / 2 * (k1[i] + k2[i]);
          break;
        case Solver::rk4:
          axpy_into(tmp, y, h / 2, k1);
          f(t + h / 2, tmp, k2);
          axpy_into(tmp, y, h / 2, k2);
          f(t + h / 2, tmp, k3);
          axpy_into(tmp, y, h, k3);
          f(t + h, tmp, k4);
          for (std::size_t i = 0; i < size; ++i) y[i] += h / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
          break;
        case Solver::dopri5: break;
      }
      ++st.steps;
      if (on_step) on_step(s + 1, grid[s + 1]);
    }
    return st;
  }

  // dopri5: adaptive, FSAL, one step size for all rows.
  const double t0 = grid.front(), t1 = grid.back();
  const double dir = t1 >= t0 ? 1.0 : -1.0;
  std::vector<double> k5 = state(), k6 = state(), k7 = state(), y5 = state();
  double t = t0;
  double h = dir * std::min(o.first_step > 0 ? o.first_step : 0.01, std::abs(t1 - t0));
  if (t0 == t1) return st;
  f(t, y, k1);
  std::int64_t tries = 0;
  while (dir * (t1 - t) > 0) {
    if (++tries > o.max_steps)
      throw_data("dopri5: more than " + std::to_string(o.max_steps) + " steps without reaching t = " + fmt(t1) +
                 " (stopped at t = " + fmt(t) + "); loosen --rtol/--atol or use a fixed-step solver");
    bool last = false;
    if (dir * (t + h - t1) >= 0) {
      h = t1 - t;
      last = true;
    }
    for (std::size_t i = 0; i < size; ++i) tmp[i] = y[i] + h * a21 * k1[i];
    f(t + c2 * h, tmp, k2);
    for (std::size_t i = 0; i < size; ++i) tmp[i] = y[i] + h * (a31 * k1[i] + a32 * k2[i]);
    f(t + c3 * h, tmp, k3);
    for (std::size_t i = 0; i < size; ++i) tmp[i] = y[i] + h * (a41 * k1[i] + a42 * k2[i] + a43 * k3[i]);
    f(t + c4 * h, tmp, k4);
    for (std::size_t i = 0; i < size; ++i)
      tmp[i] = y[i] + h * (a51 * k1[i] + a52 * k2[i] + a53 * k3[i] + a54 * k4[i]);
    f(t + c5 * h, tmp, k5);
    for (std::size_t i = 0; i < size; ++i)
      tmp[i] = y[i] + h * (a61 * k1[i] + a62 * k2[i] + a63 * k3[i] + a64 * k4[i] + a65 * k5[i]);
    f(t + h, tmp, k6);
    for (std::size_t i = 0; i < size; ++i)
      y5[i] = y[i] + h * (b1 * k1[i] + b3 * k3[i] + b4 * k4[i] + b5 * k5[i] + b6 * k6[i]);
    f(t + h, y5, k7);
    // Error norm: the worst row's RMS of the scaled error.
    double norm = 0;
    for (std::int64_t r = 0; r < n; ++r) {
      double sum = 0;
      for (std::int64_t j = 0; j < m; ++j) {
        const std::size_t i = static_cast<std::size_t>(r * m + j);
        const double err = h * (e1 * k1[i] + e3 * k3[i] + e4 * k4[i] + e5 * k5[i] + e6 * k6[i] + e7 * k7[i]);
        const double scale = o.atol + o.rtol * std::max(std::abs(y[i]), std::abs(y5[i]));
        sum += (err / scale) * (err / scale);
      }
      norm = std::max(norm, std::sqrt(sum / static_cast<double>(m)));
      if (std::isnan(sum)) norm = std::numeric_limits<double>::infinity();
    }
    const bool ok = norm <= 1;
    if (ok) {
      t = last ? t1 : t + h;
      y.swap(y5);
      k1.swap(k7);
      ++st.steps;
      if (on_step) on_step(st.steps, t);
    } else {
      ++st.rejected;
    }
    const double factor =
        norm == 0 ? 5.0 : std::isfinite(norm) ? std::clamp(0.9 * std::pow(norm, -0.2), 0.2, 5.0) : 0.2;
    h *= ok ? factor : std::min(factor, 1.0);
    if (dir * (t1 - t) > 0 && std::abs(h) < o.min_step)
      throw_data("dopri5: the step size underflowed (|h| < " + fmt(o.min_step) + " at t = " + fmt(t) +
                 "): the velocity is not finite or too stiff for --rtol " + fmt(o.rtol) + " --atol " + fmt(o.atol));
  }
  return st;
}

namespace {

void start_trajectory(const Run& run, const Tensor& x, std::int64_t frames) {
  if (!run.trajectory) return;
  Shape shape = x.shape();
  shape.insert(shape.begin(), frames);
  *run.trajectory = Tensor(DType::f4, shape);
}

}  // namespace

Stats sample(const Field& field, const Options& o, Tensor& x, bool reverse, const Run& run) {
  validate(o);
  const std::int64_t d = field.dim();
  if (x.dtype() != DType::f4) throw_internal("flow::sample wants float32 rows");
  const std::int64_t n = x.ndim() ? x.dim(0) : 0;
  if (n > 0 && x.numel() != n * d) throw_internal("flow::sample: rows do not match the model");
  const std::vector<double> grid = o.solver == Solver::dopri5 ? std::vector<double>{reverse ? 0.0 : 1.0, reverse ? 1.0 : 0.0}
                                                              : time_grid(o.steps, o.shift, reverse);
  float* xs = x.data<float>();
  std::vector<double> y = make_buffer<double>(n * d, "the state " + shape_str({n, d}) + " float64");
  std::copy(xs, xs + n * d, y.begin());
  std::vector<float> xf = make_buffer<float>(n * d, "the model input " + shape_str({n, d}) + " float32"),
                     vf = make_buffer<float>(n * d, "the velocities " + shape_str({n, d}) + " float32");
  const Rhs rhs = [&](double t, const double* in, double* out) {
    for (std::size_t i = 0; i < xf.size(); ++i) xf[i] = static_cast<float>(in[i]);
    field.velocity(xf.data(), n, t, vf.data(), run.first_row, run.labels);
    for (std::size_t i = 0; i < vf.size(); ++i) out[i] = vf[i];
  };
  std::vector<std::vector<float>> frames;
  auto snapshot = [&]() {
    if (run.trajectory) {
      frames.emplace_back(y.size());
      std::transform(y.begin(), y.end(), frames.back().begin(), [](double v) { return static_cast<float>(v); });
    }
  };
  snapshot();
  const std::int64_t total = o.solver == Solver::dopri5 ? 0 : o.steps;
  const Stats st = integrate(o, grid, n, d, y, rhs, [&](std::int64_t k, double) {
    snapshot();
    if (run.progress) run.progress(k, total);
  });
  for (std::size_t i = 0; i < y.size(); ++i) xs[i] = static_cast<float>(y[i]);
  if (run.trajectory) {
    start_trajectory(run, x, static_cast<std::int64_t>(frames.size()));
    float* p = run.trajectory->data<float>();
    for (const auto& f : frames) p = std::copy(f.begin(), f.end(), p);
  }
  return st;
}

// ------------------------------------------------------------------ divergence

namespace {

class GmmDivergence : public Divergence {
 public:
  explicit GmmDivergence(const Field& field) : g_(dynamic_cast<const models::Gmm&>(field.model())) {}
  void operator()(const float* x, std::int64_t n, double t, float* v, double* div, std::int64_t) const override {
    const std::int64_t K = g_.components(), D = g_.dim();
    const double a = 1 - t, s = t;
    parallel_for(n, 256, [&](std::int64_t r0, std::int64_t r1) {
      std::vector<double> logr(static_cast<std::size_t>(K)), gbar(static_cast<std::size_t>(D)),
          vv(static_cast<std::size_t>(D));
      for (std::int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * D;
        double best = -std::numeric_limits<double>::infinity();
        for (std::int64_t k = 0; k < K; ++k) {
          double l = g_.weights()[k] > 0 ? std::log(g_.weights()[k]) : -std::numeric_limits<double>::infinity();
          for (std::int64_t j = 0; j < D; ++j) {
            const double sd = g_.stddev(k, j);
            const double var = std::max(a * a * sd * sd + s * s, 1e-300);
            const double e = xr[j] - a * g_.means()[k * D + j];
            l -= 0.5 * (e * e / var + std::log(var));
          }
          logr[k] = l;
          best = std::max(best, l);
        }
        double total = 0;
        for (auto& l : logr) total += (l = std::exp(l - best));
        for (auto& l : logr) l /= total;
        std::fill(gbar.begin(), gbar.end(), 0.0);
        std::fill(vv.begin(), vv.end(), 0.0);
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t j = 0; j < D; ++j) {
            const double sd = g_.stddev(k, j), var = std::max(a * a * sd * sd + s * s, 1e-300);
            const double e = xr[j] - a * g_.means()[k * D + j];
            gbar[j] += logr[k] * (-e / var);
            vv[j] += logr[k] * (-g_.means()[k * D + j] + (s - a * sd * sd) * e / var);
          }
        // div v = sum_k r_k [sum_j (s - a sd^2)/var + sum_j (g_kj - gbar_j) v_kj].
        double dv = 0;
        for (std::int64_t k = 0; k < K; ++k) {
          if (logr[k] == 0) continue;
          double part = 0;
          for (std::int64_t j = 0; j < D; ++j) {
            const double sd = g_.stddev(k, j), var = std::max(a * a * sd * sd + s * s, 1e-300);
            const double e = xr[j] - a * g_.means()[k * D + j];
            const double vk = -g_.means()[k * D + j] + (s - a * sd * sd) * e / var;
            part += (s - a * sd * sd) / var + (-e / var - gbar[j]) * vk;
          }
          dv += logr[k] * part;
        }
        div[r] = dv;
        for (std::int64_t j = 0; j < D; ++j) v[r * D + j] = static_cast<float>(vv[j]);
      }
    });
  }

 private:
  const models::Gmm& g_;
};

// The MLP of the runtime with forward-mode tangents: P tangent rows per row.
class MlpDivergence : public Divergence {
 public:
  MlpDivergence(const Field& field, const std::vector<NamedTensor>& tensors, std::int64_t probes, std::uint64_t seed)
      : field_(field), arch_(dynamic_cast<const models::Mlp&>(field.model()).arch()), probes_(probes), seed_(seed) {
    auto get = [&](const std::string& name) {
      for (const auto& t : tensors)
        if (t.name == name) {
          const Tensor c = t.tensor.astype(DType::f4);
          return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
        }
      throw_internal("flow: tensor " + name + " missing");
    };
    auto lin = [&](const std::string& name, std::int64_t in, std::int64_t out) {
      return Linear{in, out, get(name + ".weight"), get(name + ".bias")};
    };
    const std::int64_t xf = arch_.input_dim > 0 ? arch_.dim * arch_.input_dim : arch_.dim;
    features_ = xf + arch_.time_dim + (arch_.num_classes > 0 ? arch_.class_dim : 0);
    input_ = lin("input", features_, arch_.hidden);
    for (std::int64_t i = 0; i < arch_.depth; ++i)
      blocks_.push_back(lin("blocks." + std::to_string(i), arch_.hidden, arch_.hidden));
    output_ = lin("output", arch_.hidden, arch_.dim);
    if (arch_.num_classes > 0) class_emb_ = get("class_emb.weight");
    time_freq_ = models::sinusoid_frequencies(arch_.time_dim);
    if (arch_.input_dim > 0) input_freq_ = models::sinusoid_frequencies(arch_.input_dim);
  }

  void operator()(const float* x, std::int64_t n, double t, float* v, double* div,
                  std::int64_t first_row) const override {
    const std::int64_t D = arch_.dim, B = models::kRowBlock;
    const double tm = field_.model_time(t).t;
    const double sign = field_.reversed() ? -1.0 : 1.0;
    for_blocks(n, first_row, [&](std::int64_t r0, std::int64_t r1) {
      const std::int64_t g0 = first_row + r0, pos = g0 % B, m = r1 - r0;
      std::vector<float> xin(static_cast<std::size_t>(B * D), 0.f), vout(xin.size());
      std::vector<double> dout(static_cast<std::size_t>(B));
      std::copy(x + r0 * D, x + r1 * D, xin.begin() + pos * D);
      block(xin.data(), g0 - pos, static_cast<float>(tm), vout.data(), dout.data());
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < D; ++j) v[(r0 + i) * D + j] = static_cast<float>(sign * vout[(pos + i) * D + j]);
        div[r0 + i] = sign * dout[pos + i];
      }
    });
  }

 private:
  struct Linear {
    std::int64_t in = 0, out = 0;
    std::vector<float> w, b;
  };
  std::int64_t P() const { return probes_ > 0 ? probes_ : arch_.dim; }

  // The P probes of global row g, [P, D]: e_p (exact) or Rademacher vectors
  // drawn from (seed, g), the same at every time.
  void probes(std::int64_t g, float* z) const {
    const std::int64_t D = arch_.dim;
    if (probes_ == 0) {
      std::fill(z, z + D * D, 0.f);
      for (std::int64_t p = 0; p < D; ++p) z[p * D + p] = 1.f;
      return;
    }
    fill_uniform(seed_ ^ 0x48757463ULL, static_cast<std::uint64_t>(g), z, probes_ * D);
    for (std::int64_t j = 0; j < probes_ * D; ++j) z[j] = z[j] < 0.5f ? -1.f : 1.f;
  }

  static void act(models::Activation a, float* h, float* dh, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      const float z = h[i];
      switch (a) {
        case models::Activation::gelu: {
          const float cdf = 0.5f * (1.f + std::erf(z * 0.70710678118654752f));
          h[i] = z * cdf;
          dh[i] = cdf + z * 0.39894228040143268f * std::exp(-0.5f * z * z);
          break;
        }
        case models::Activation::silu: {
          const float sg = 1.f / (1.f + std::exp(-z));
          h[i] = z * sg;
          dh[i] = sg * (1.f + z * (1.f - sg));
          break;
        }
        case models::Activation::relu:
          h[i] = std::max(z, 0.f);
          dh[i] = z > 0 ? 1.f : 0.f;
          break;
      }
    }
  }

  static void gemm(const Linear& l, std::int64_t rows, const float* a, float* y, bool bias) {
    for (std::int64_t i = 0; i < rows; ++i) {
      if (bias)
        std::copy(l.b.begin(), l.b.end(), y + i * l.out);
      else
        std::fill(y + i * l.out, y + (i + 1) * l.out, 0.f);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(l.out),
                static_cast<int>(l.in), 1.f, a, static_cast<int>(l.in), l.w.data(), static_cast<int>(l.in), 1.f, y,
                static_cast<int>(l.out));
  }

  // One block of kRowBlock rows starting at global row g0.
  void block(const float* x, std::int64_t g0, float t, float* v, double* div) const {
    const std::int64_t n = models::kRowBlock, D = arch_.dim, H = arch_.hidden, F = features_, p = P();
    std::vector<float> feat(static_cast<std::size_t>(n * F), 0.f), dfeat(static_cast<std::size_t>(n * p * F), 0.f);
    std::vector<float> temb(static_cast<std::size_t>(arch_.time_dim)), zs(static_cast<std::size_t>(n * p * D));
    for (std::int64_t i = 0; i < n; ++i) probes(g0 + i, zs.data() + i * p * D);
    const float tt = t * static_cast<float>(arch_.time_scale);
    const std::size_t half_t = time_freq_.size();
    for (std::size_t j = 0; j < half_t; ++j) {
      const float u = tt * time_freq_[j];
      temb[j] = static_cast<float>(std::sin(static_cast<double>(u)));
      temb[half_t + j] = static_cast<float>(std::cos(static_cast<double>(u)));
    }
    const std::int64_t xfeat = arch_.input_dim > 0 ? D * arch_.input_dim : D;
    const std::size_t half_x = input_freq_.size();
    const float sc = static_cast<float>(arch_.input_scale);
    for (std::int64_t i = 0; i < n; ++i) {
      float* f = feat.data() + i * F;
      const float* xi = x + i * D;
      // d feature / d x_j, per coordinate j (only its own embedding block).
      std::vector<float> dx(static_cast<std::size_t>(xfeat), 0.f);
      if (arch_.input_dim > 0) {
        for (std::int64_t j = 0; j < D; ++j)
          for (std::size_t q = 0; q < half_x; ++q) {
            const float u = xi[j] * sc * input_freq_[q];
            f[j * arch_.input_dim + q] = static_cast<float>(std::sin(static_cast<double>(u)));
            f[j * arch_.input_dim + half_x + q] = static_cast<float>(std::cos(static_cast<double>(u)));
            dx[j * arch_.input_dim + q] = static_cast<float>(std::cos(static_cast<double>(u))) * sc * input_freq_[q];
            dx[j * arch_.input_dim + half_x + q] =
                -static_cast<float>(std::sin(static_cast<double>(u))) * sc * input_freq_[q];
          }
      } else {
        std::copy(xi, xi + D, f);
      }
      std::copy(temb.begin(), temb.end(), f + xfeat);
      if (arch_.num_classes > 0) {
        const float* e = class_emb_.data() + arch_.num_classes * arch_.class_dim;
        std::copy(e, e + arch_.class_dim, f + xfeat + arch_.time_dim);
      }
      for (std::int64_t q = 0; q < p; ++q) {
        const float* z = zs.data() + (i * p + q) * D;
        float* df = dfeat.data() + (i * p + q) * F;
        for (std::int64_t j = 0; j < D; ++j) {
          if (z[j] == 0) continue;
          if (arch_.input_dim > 0)
            for (std::int64_t c = 0; c < arch_.input_dim; ++c)
              df[j * arch_.input_dim + c] = z[j] * dx[j * arch_.input_dim + c];
          else
            df[j] = z[j];
        }
      }
    }
    std::vector<float> h(static_cast<std::size_t>(n * H)), dh(h.size()), tmp(h.size()), dact(h.size()),
        th(static_cast<std::size_t>(n * p * H)), tt2(th.size());
    auto scale_rows = [&](float* tan, const float* deriv) {
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t q = 0; q < p; ++q)
          for (std::int64_t c = 0; c < H; ++c) tan[(i * p + q) * H + c] *= deriv[i * H + c];
    };
    gemm(input_, n, feat.data(), h.data(), true);
    gemm(input_, n * p, dfeat.data(), th.data(), false);
    act(arch_.act, h.data(), dact.data(), n * H);
    scale_rows(th.data(), dact.data());
    for (const Linear& l : blocks_) {
      gemm(l, n, h.data(), tmp.data(), true);
      gemm(l, n * p, th.data(), tt2.data(), false);
      act(arch_.act, tmp.data(), dact.data(), n * H);
      scale_rows(tt2.data(), dact.data());
      if (arch_.residual) {
        for (std::size_t i = 0; i < h.size(); ++i) h[i] += tmp[i];
        for (std::size_t i = 0; i < th.size(); ++i) th[i] += tt2[i];
      } else {
        h.swap(tmp);
        th.swap(tt2);
      }
    }
    std::vector<float> dv(static_cast<std::size_t>(n * p * D));
    gemm(output_, n, h.data(), v, true);
    gemm(output_, n * p, th.data(), dv.data(), false);
    for (std::int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::int64_t q = 0; q < p; ++q) {
        const float* z = zs.data() + (i * p + q) * D;
        for (std::int64_t j = 0; j < D; ++j) s += static_cast<double>(z[j]) * dv[(i * p + q) * D + j];
      }
      div[i] = probes_ > 0 ? s / static_cast<double>(probes_) : s;
    }
  }

  const Field& field_;
  models::Mlp::Arch arch_;
  std::int64_t probes_;
  std::uint64_t seed_;
  std::int64_t features_ = 0;
  Linear input_, output_;
  std::vector<Linear> blocks_;
  std::vector<float> class_emb_, time_freq_, input_freq_;
};

}  // namespace

std::unique_ptr<Divergence> divergence(const Field& field, const std::vector<NamedTensor>& tensors,
                                       std::int64_t hutchinson, std::uint64_t seed) {
  if (hutchinson < 0) throw_usage("--hutchinson must be at least 1");
  if (field.model().kind() == models::Kind::gmm) return std::make_unique<GmmDivergence>(field);
  if (field.model().kind() != models::Kind::mlp)
    throw_usage(std::string("--log-prob is not available for ") + models::kind_name(field.model().kind()) + " models");
  if (hutchinson == 0 && field.dim() > kMaxExactDim)
    throw_usage("--log-prob: the exact divergence of a " + std::to_string(field.dim()) +
                "-dimensional model needs " + std::to_string(field.dim()) +
                " Jacobian-vector products per evaluation (at most " + std::to_string(kMaxExactDim) +
                "); use Hutchinson's estimator with --hutchinson K");
  return std::make_unique<MlpDivergence>(field, tensors, hutchinson, seed);
}

std::vector<double> log_prob(const Field& field, const Divergence& div, const Options& o, const Tensor& x,
                             Stats* stats, const Run& run) {
  validate(o);
  const std::int64_t d = field.dim(), m = d + 1;
  const std::int64_t n = x.ndim() ? x.dim(0) : 0;
  const Tensor xf32 = x.astype(DType::f4);
  const float* xs = xf32.data<float>();
  std::vector<double> y = make_buffer<double>(checked_numel({n, m}), "the state " + shape_str({n, m}) + " float64");
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) y[i * m + j] = xs[i * d + j];
  const std::vector<double> grid =
      o.solver == Solver::dopri5 ? std::vector<double>{0.0, 1.0} : time_grid(o.steps, o.shift, true);
  std::vector<float> in = make_buffer<float>(n * d, "the model input " + shape_str({n, d}) + " float32"),
                     v = make_buffer<float>(n * d, "the velocities " + shape_str({n, d}) + " float32");
  std::vector<double> dv(static_cast<std::size_t>(n));
  const Rhs rhs = [&](double t, const double* yy, double* dy) {
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j) in[i * d + j] = static_cast<float>(yy[i * m + j]);
    div(in.data(), n, t, v.data(), dv.data(), run.first_row);
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t j = 0; j < d; ++j) dy[i * m + j] = v[i * d + j];
      dy[i * m + d] = dv[i];
    }
  };
  const std::int64_t total = o.solver == Solver::dopri5 ? 0 : o.steps;
  const Stats st = integrate(o, grid, n, m, y, rhs, [&](std::int64_t k, double) {
    if (run.progress) run.progress(k, total);
  });
  if (stats) *stats = st;
  std::vector<double> out(static_cast<std::size_t>(n));
  const double c = -0.5 * static_cast<double>(d) * std::log(2 * M_PI);
  for (std::int64_t i = 0; i < n; ++i) {
    double q = 0;
    for (std::int64_t j = 0; j < d; ++j) q += y[i * m + j] * y[i * m + j];
    out[i] = c - 0.5 * q + y[i * m + d];
  }
  return out;
}

// ------------------------------------------------------------------ coupling flows

Coupling::Coupling(models::Kind kind, std::int64_t dim, std::vector<Layer> layers, std::vector<double> scale,
                   models::Activation act, Prior prior)
    : layers_(std::move(layers)), scale_(std::move(scale)), act_(act), prior_(prior) {
  kind_ = kind;
  dim_ = dim;
  sample_shape_ = {dim};
  output_ = models::Output::velocity;  // so that ddim-sample sends it here
}

void Coupling::predict(const float*, std::int64_t, const models::Time&, const std::int64_t*, float*,
                       std::int64_t) const {
  throw_usage(std::string("a ") + models::kind_name(kind_) +
              " model is a coupling flow, not a denoiser or velocity model: use flow-sample");
}

void Coupling::net(const Layer& l, const double* in, double* out, std::vector<double>& h1,
                   std::vector<double>& h2) const {
  const double* a = in;
  for (std::size_t k = 0; k < l.net.size(); ++k) {
    const Linear& lin = l.net[k];
    const bool last = k + 1 == l.net.size();
    double* y = last ? out : (k % 2 == 0 ? h1.data() : h2.data());
    for (std::int64_t o = 0; o < lin.out; ++o) {
      double s = lin.b[o];
      const double* w = lin.w.data() + o * lin.in;
      for (std::int64_t i = 0; i < lin.in; ++i) s += w[i] * a[i];
      if (!last) {
        switch (act_) {
          case models::Activation::relu: s = std::max(s, 0.0); break;
          case models::Activation::gelu: s = 0.5 * s * (1 + std::erf(s / std::sqrt(2.0))); break;
          case models::Activation::silu: s = s / (1 + std::exp(-s)); break;
        }
      }
      y[o] = s;
    }
    a = y;
  }
}

void Coupling::forward_row(const float* x, double* z, double* logdet) const {
  const std::int64_t D = dim_;
  std::size_t width = 0;
  for (const Layer& l : layers_)
    for (const Linear& lin : l.net) width = std::max(width, static_cast<std::size_t>(lin.out));
  std::vector<double> y(x, x + D), in(static_cast<std::size_t>(D)), out(width), h1(width), h2(width);
  double ld = 0;
  for (const Layer& l : layers_) {
    for (std::int64_t j = 0; j < D; ++j) in[j] = y[j] * (1 - l.mask[j]);
    net(l, in.data(), out.data(), h1, h2);
    for (std::int64_t j = 0; j < D; ++j) {
      if (l.mask[j] == 0) continue;
      if (kind_ == models::Kind::nice) {
        y[j] += out[j];
      } else {
        const double s = std::tanh(out[j]);
        y[j] = y[j] * std::exp(s) + out[D + j];
        ld += s;
      }
    }
  }
  for (std::int64_t j = 0; j < D; ++j) {
    z[j] = y[j] * std::exp(scale_[j]);
    ld += scale_[j];
  }
  if (logdet) *logdet = ld;
}

void Coupling::inverse_row(const float* z, double* x) const {
  const std::int64_t D = dim_;
  std::size_t width = 0;
  for (const Layer& l : layers_)
    for (const Linear& lin : l.net) width = std::max(width, static_cast<std::size_t>(lin.out));
  std::vector<double> in(static_cast<std::size_t>(D)), out(width), h1(width), h2(width);
  for (std::int64_t j = 0; j < D; ++j) x[j] = z[j] * std::exp(-scale_[j]);
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    const Layer& l = *it;
    for (std::int64_t j = 0; j < D; ++j) in[j] = x[j] * (1 - l.mask[j]);
    net(l, in.data(), out.data(), h1, h2);
    for (std::int64_t j = 0; j < D; ++j) {
      if (l.mask[j] == 0) continue;
      if (kind_ == models::Kind::nice)
        x[j] -= out[j];
      else
        x[j] = (x[j] - out[D + j]) * std::exp(-std::tanh(out[j]));
    }
  }
}

void Coupling::forward(const float* x, std::int64_t n, float* z, double* logdet) const {
  const std::int64_t D = dim_;
  parallel_for(n, 64, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> zz(static_cast<std::size_t>(D));
    for (std::int64_t r = r0; r < r1; ++r) {
      forward_row(x + r * D, zz.data(), logdet ? logdet + r : nullptr);
      for (std::int64_t j = 0; j < D; ++j) z[r * D + j] = static_cast<float>(zz[j]);
    }
  });
}

void Coupling::inverse(const float* z, std::int64_t n, float* x) const {
  const std::int64_t D = dim_;
  parallel_for(n, 64, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> xx(static_cast<std::size_t>(D));
    for (std::int64_t r = r0; r < r1; ++r) {
      inverse_row(z + r * D, xx.data());
      for (std::int64_t j = 0; j < D; ++j) x[r * D + j] = static_cast<float>(xx[j]);
    }
  });
}

void Coupling::log_prob(const float* x, std::int64_t n, double* out) const {
  const std::int64_t D = dim_;
  parallel_for(n, 64, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<double> z(static_cast<std::size_t>(D));
    for (std::int64_t r = r0; r < r1; ++r) {
      double ld = 0;
      forward_row(x + r * D, z.data(), &ld);
      double lp = 0;
      for (double v : z) {
        if (prior_ == Prior::gaussian) {
          lp += -0.5 * v * v - 0.5 * std::log(2 * M_PI);
        } else {
          const double a = std::abs(v);  // softplus(v) + softplus(-v) = |v| + 2 log1p(exp(-|v|))
          lp -= a + 2 * std::log1p(std::exp(-a));
        }
      }
      out[r] = lp + ld;
    }
  });
}

void Coupling::draw_prior(std::uint64_t seed, std::int64_t row, float* z) const {
  if (prior_ == Prior::gaussian) {
    fill_normal(seed, static_cast<std::uint64_t>(row), z, dim_);
    return;
  }
  std::vector<double> u(static_cast<std::size_t>(dim_));
  SampleRng rng(seed, static_cast<std::uint64_t>(row));
  for (std::int64_t j = 0; j < dim_; ++j) {
    const double p = rng.uniform_f64();
    z[j] = static_cast<float>(std::log(p) - std::log1p(-p));
  }
}

}  // namespace nnkit::flow

namespace nnkit::models {

std::unique_ptr<Model> coupling_from_tensors(const std::vector<NamedTensor>& tensors,
                                             const std::map<std::string, std::string>& metadata,
                                             const std::string& where) {
  const std::string kind = metadata.at("kind");
  auto meta_int = [&](const std::string& key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
    auto it = metadata.find(key);
    if (it == metadata.end()) {
      if (def >= lo) return def;
      throw_data("model " + where + ": metadata '" + key + "' is missing, want " +
                 (key == "dim" ? "the data dimension" : "the number of coupling layers") + " (a " + kind +
                 " coupling flow for flow-sample)");
    }
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(it->second, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != it->second.size() || v < lo || v > hi)
      throw_data("model " + where + ": metadata '" + key + "' is " + in_quotes(it->second) + ", want an integer from " +
                 std::to_string(lo) + " to " + std::to_string(hi));
    return static_cast<std::int64_t>(v);
  };
  auto meta_choice = [&](const std::string& key, const std::string& def, const std::vector<std::string>& allowed) {
    auto it = metadata.find(key);
    const std::string v = it == metadata.end() ? def : it->second;
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw_data("model " + where + ": metadata '" + key + "' is " + in_quotes(v) + ", want one of " + list);
    }
    return v;
  };
  const std::int64_t D = meta_int("dim", -1, 1, 1 << 16);
  const std::int64_t L = meta_int("layers", -1, 1, 1024);
  const std::int64_t H = meta_int("hidden", 64, 1, 1 << 16);
  const std::int64_t depth = meta_int("depth", 2, 1, 64);
  const std::string act = meta_choice("activation", "relu", {"relu", "gelu", "silu"});
  const std::string prior = meta_choice("prior", "gaussian", {"gaussian", "logistic"});
  const bool nice = kind == "nice";
  std::map<std::string, const Tensor*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t.tensor;
  std::map<std::string, bool> used;
  auto get = [&](const std::string& name, const Shape& shape) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw_data("model " + where + ": missing tensor '" + name + "'");
    if (!is_float(it->second->dtype()))
      throw_data("model " + where + ": tensor '" + name + "' is " + std::string(dtype_name(it->second->dtype())) +
                 ", want a float dtype");
    if (it->second->shape() != shape)
      throw_data("model " + where + ": tensor '" + name + "' has shape " + shape_str(it->second->shape()) + ", want " +
                 shape_str(shape));
    used[name] = true;
    const Tensor c = it->second->astype(DType::f8);
    std::vector<double> v(c.data<double>(), c.data<double>() + c.numel());
    for (double x : v)
      if (!std::isfinite(x)) throw_data("model " + where + ": tensor '" + name + "' has a non-finite value");
    return v;
  };
  std::vector<flow::Coupling::Layer> layers(static_cast<std::size_t>(L));
  for (std::int64_t i = 0; i < L; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    layers[i].mask = get(p + "mask", {D});
    for (double m : layers[i].mask)
      if (m != 0 && m != 1) throw_data("model " + where + ": tensor '" + p + "mask' has a value other than 0 and 1");
    for (std::int64_t k = 0; k <= depth; ++k) {
      const std::int64_t in = k == 0 ? D : H, out = k < depth ? H : (nice ? D : 2 * D);
      const std::string q = p + "net." + std::to_string(2 * k);
      flow::Coupling::Linear lin;
      lin.in = in;
      lin.out = out;
      lin.w = get(q + ".weight", {out, in});
      lin.b = get(q + ".bias", {out});
      layers[i].net.push_back(std::move(lin));
    }
  }
  std::vector<double> scale = get("scale", {D});
  for (const auto& t : tensors)
    if (!used.count(t.name))
      throw_data("model " + where + ": tensor '" + t.name + "' is not part of the architecture in the metadata");
  return std::make_unique<flow::Coupling>(nice ? Kind::nice : Kind::realnvp, D, std::move(layers), std::move(scale),
                                          act == "relu"   ? Activation::relu
                                          : act == "gelu" ? Activation::gelu
                                                          : Activation::silu,
                                          prior == "gaussian" ? flow::Coupling::Prior::gaussian
                                                              : flow::Coupling::Prior::logistic);
}

}  // namespace nnkit::models
