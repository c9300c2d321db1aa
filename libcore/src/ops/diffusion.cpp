// DDIM: diffusers' schedules and timestep lists, the step, inversion.
#include "nnkit/ops/diffusion.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "nnkit/error.hpp"
#include "nnkit/memory_limit.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

namespace nnkit::diffusion {

namespace {

double f32(double v) { return static_cast<double>(static_cast<float>(v)); }

// numpy's linspace(start, stop, n) in double.
std::vector<double> linspace(double start, double stop, std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  if (n == 1) {
    v[0] = start;
    return v;
  }
  const double step = (stop - start) / static_cast<double>(n - 1);
  for (std::int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) * step + start;
  v[n - 1] = stop;
  return v;
}

std::vector<double> cumprod_f32(const std::vector<double>& betas) {
  // alphas = 1 - betas in float32, accumulated in double, each product
  // rounded to float32 (torch.cumprod on a float32 tensor).
  std::vector<double> out(betas.size());
  double acc = 1;
  for (std::size_t i = 0; i < betas.size(); ++i) {
    acc *= f32(1.0 - betas[i]);
    out[i] = f32(acc);
  }
  return out;
}

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Every row's model output at one time, with classifier-free guidance.
class Evaluator {
 public:
  Evaluator(const models::Model& m, const Options& o, const Run& run, std::int64_t n)
      : m_(m), o_(o), run_(run), n_(n), out_(make_buffer<float>(checked_numel({n, m.dim()}), what(n, m))) {
    if (run.labels && o.guidance != 1) uncond_ = make_buffer<float>(n * m.dim(), what(n, m));
  }
  const float* operator()(const float* x, std::int64_t t, double abar) {
    const models::Time time{static_cast<double>(t), std::sqrt(abar), std::sqrt(1 - abar)};
    models::predict_parallel(m_, x, n_, time, run_.labels, out_.data(), run_.first_row);
    if (!uncond_.empty()) {
      // eps = eps_u + w (eps_c - eps_u), on whatever the model predicts.
      models::predict_parallel(m_, x, n_, time, nullptr, uncond_.data(), run_.first_row);
      const float w = static_cast<float>(o_.guidance);
      for (std::size_t i = 0; i < out_.size(); ++i) out_[i] = uncond_[i] + w * (out_[i] - uncond_[i]);
    }
    return out_.data();
  }

 private:
  const models::Model& m_;
  const Options& o_;
  const Run& run_;
  std::int64_t n_;
  std::vector<float> out_, uncond_;
  static std::string what(std::int64_t n, const models::Model& m) {
    return "the model outputs " + shape_str({n, m.dim()}) + " float32";
  }
};

void check_input(const models::Model& model, const Tensor& x, const char* what) {
  if (x.dtype() != DType::f4) throw_internal(std::string(what) + ": want float32");
  if (x.ndim() < 1) throw_data(std::string(what) + " is a scalar, want [N, ...]");
  const std::int64_t n = x.dim(0);
  const std::int64_t d = n ? x.numel() / n : 0;
  Shape rest(x.shape().begin() + 1, x.shape().end());
  if (n > 0 && d != model.dim())
    throw_data(std::string(what) + " has rows of shape " + shape_str(rest) + ", the model wants " +
               shape_str(model.sample_shape()));
}

void start_trajectory(const Run& run, const Tensor& x, std::int64_t steps) {
  if (!run.trajectory) return;
  Shape shape = x.shape();
  shape.insert(shape.begin(), steps + 1);
  *run.trajectory = Tensor::uninitialized(DType::f4, shape);
  std::copy(x.data<float>(), x.data<float>() + x.numel(), run.trajectory->data<float>());
}

void record(const Run& run, const Tensor& x, std::int64_t slot) {
  if (run.trajectory)
    std::copy(x.data<float>(), x.data<float>() + x.numel(), run.trajectory->data<float>() + slot * x.numel());
}

}  // namespace

std::vector<double> betas(const Schedule& s) {
  const std::int64_t T = s.train_steps;
  if (T < 1 || T > kMaxTrainSteps)
    throw_usage("the number of training steps must be from 1 to " + std::to_string(kMaxTrainSteps) + ", not " +
                std::to_string(T));
  std::vector<double> b;
  switch (s.betas) {
    case BetaSchedule::linear:
      b = linspace(s.beta_start, s.beta_end, T);
      for (double& v : b) v = f32(v);
      break;
    case BetaSchedule::scaled_linear:
      b = linspace(std::sqrt(s.beta_start), std::sqrt(s.beta_end), T);
      for (double& v : b) v = f32(f32(v) * f32(v));
      break;
    case BetaSchedule::squaredcos_cap_v2: {
      auto abar = [](double u) { return std::pow(std::cos((u + 0.008) / 1.008 * M_PI / 2), 2); };
      for (std::int64_t i = 0; i < T; ++i) {
        const double t1 = static_cast<double>(i) / T, t2 = static_cast<double>(i + 1) / T;
        b.push_back(f32(std::min(1 - abar(t2) / abar(t1), 0.999)));
      }
      break;
    }
  }
  for (double v : b)
    if (!(v > 0 && v <= 1)) throw_usage("the beta schedule leaves (0, 1]: check --beta-start and --beta-end");
  if (s.rescale_zero_snr) {
    // Shift sqrt(abar) so its last value is 0, scale so its first is kept.
    const std::vector<double> ac = cumprod_f32(b);
    std::vector<double> r(ac.size());
    for (std::size_t i = 0; i < ac.size(); ++i) r[i] = f32(std::sqrt(ac[i]));
    const double first = r.front(), last = r.back();
    if (!(first > last)) throw_usage("--rescale-zero-snr needs a decreasing schedule");
    const double scale = f32(first / f32(first - last));
    for (double& v : r) v = f32(f32(v - last) * scale);
    std::vector<double> abar2(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) abar2[i] = f32(r[i] * r[i]);
    b[0] = f32(1 - abar2[0]);
    for (std::size_t i = 1; i < r.size(); ++i) b[i] = f32(1 - f32(abar2[i] / abar2[i - 1]));
    // abar that reaches 0 in float32 before the last step gives 0/0 here.
    for (double v : b)
      if (!(v >= 0 && v <= 1))
        throw_usage("--rescale-zero-snr: the schedule reaches zero signal before its last step; lower --beta-end");
  }
  return b;
}

namespace {

// One metadata value of a model's schedule, strictly parsed.
class ScheduleKeys {
 public:
  ScheduleKeys(const std::map<std::string, std::string>& m, const std::string& where,
               const std::vector<std::string>& overridden)
      : m_(m), where_(where), overridden_(overridden) {}
  const std::string* find(const std::string& key) const {
    if (std::find(overridden_.begin(), overridden_.end(), key) != overridden_.end()) return nullptr;
    auto it = m_.find(key);
    return it == m_.end() ? nullptr : &it->second;
  }
  // A finite number from lo to hi (open ends where open).
  double number(const std::string& key, double def, double lo, double hi, bool open, const std::string& want) const {
    const std::string* v = find(key);
    if (!v) return def;
    double x = 0;
    std::size_t used = 0;
    try {
      x = std::stod(*v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const bool inside = open ? (x > lo && x < hi) : (x >= lo && x <= hi);
    if (used == 0 || used != v->size() || !std::isfinite(x) || !inside) bad(key, want);
    return x;
  }
  [[noreturn]] void bad(const std::string& key, const std::string& want) const {
    throw_data("model " + where_ + ": metadata '" + key + "' is " + in_quotes(m_.at(key)) + ", want " + want);
  }

 private:
  const std::map<std::string, std::string>& m_;
  const std::string& where_;
  const std::vector<std::string>& overridden_;
};

}  // namespace

Schedule model_schedule(const std::map<std::string, std::string>& metadata, Schedule s, const std::string& where,
                        const std::vector<std::string>& overridden) {
  const ScheduleKeys keys(metadata, where, overridden);
  const std::string steps_want = "a whole number from 1 to " + std::to_string(kMaxTrainSteps);
  const double t = keys.number("train_steps", static_cast<double>(s.train_steps), 1,
                               static_cast<double>(kMaxTrainSteps), false, steps_want);
  if (t != std::floor(t)) keys.bad("train_steps", steps_want);
  s.train_steps = static_cast<std::int64_t>(t);
  s.beta_start = keys.number("beta_start", s.beta_start, 0, 1, true, "a number in (0, 1)");
  s.beta_end = keys.number("beta_end", s.beta_end, 0, 1, true, "a number in (0, 1)");
  if (const std::string* v = keys.find("beta_schedule")) {
    if (*v == "linear")
      s.betas = BetaSchedule::linear;
    else if (*v == "scaled_linear")
      s.betas = BetaSchedule::scaled_linear;
    else if (*v == "squaredcos_cap_v2")
      s.betas = BetaSchedule::squaredcos_cap_v2;
    else
      keys.bad("beta_schedule", "linear, scaled_linear or squaredcos_cap_v2");
  }
  if (const std::string* v = keys.find("rescale_zero_snr")) {
    if (*v == "true" || *v == "1")
      s.rescale_zero_snr = true;
    else if (*v == "false" || *v == "0")
      s.rescale_zero_snr = false;
    else
      keys.bad("rescale_zero_snr", "true or false");
  }
  return s;
}

std::vector<double> alphas_cumprod(const Schedule& s) { return cumprod_f32(betas(s)); }

std::vector<std::int64_t> timesteps(std::int64_t T, std::int64_t S, Spacing spacing, std::int64_t offset) {
  if (S < 1) throw_usage("--steps must be at least 1");
  if (T > kMaxTrainSteps)
    throw_usage("the number of training steps must be from 1 to " + std::to_string(kMaxTrainSteps) + ", not " +
                std::to_string(T));
  if (S > T)
    throw_usage("--steps " + std::to_string(S) + " is more than the " + std::to_string(T) + " training steps");
  std::vector<std::int64_t> ts;
  switch (spacing) {
    case Spacing::leading:
      // Checked first: a huge offset would overflow the sum below.
      if (offset < 0 || offset >= T)
        throw_usage("--steps-offset " + std::to_string(offset) + " puts timesteps outside [0, " + std::to_string(T) +
                    "): lower --steps-offset");
      for (std::int64_t i = S - 1; i >= 0; --i) ts.push_back(i * (T / S) + offset);
      break;
    case Spacing::linspace: {
      const auto v = linspace(0, static_cast<double>(T - 1), S);
      for (std::int64_t i = S - 1; i >= 0; --i) ts.push_back(static_cast<std::int64_t>(std::nearbyint(v[i])));
      break;
    }
    case Spacing::trailing: {
      // numpy's arange(T, 0, -T/S): its length, and start + i * (second - first).
      const double step = -static_cast<double>(T) / static_cast<double>(S);
      const auto len = static_cast<std::int64_t>(std::ceil((0.0 - static_cast<double>(T)) / step));
      const double first = static_cast<double>(T), delta = (first + step) - first;
      for (std::int64_t i = 0; i < len; ++i)
        ts.push_back(static_cast<std::int64_t>(std::nearbyint(first + static_cast<double>(i) * delta)) - 1);
      break;
    }
  }
  for (std::int64_t t : ts)
    if (t < 0 || t >= T)
      throw_usage("timestep " + std::to_string(t) + " is outside [0, " + std::to_string(T) +
                  "): lower --steps-offset");
  return ts;
}

void validate(const Options& o) {
  const Schedule& s = o.schedule;
  if (!(s.beta_start > 0 && s.beta_end > 0 && s.beta_start < 1 && s.beta_end < 1))
    throw_usage("--beta-start and --beta-end must be in (0, 1)");
  if (!(o.eta >= 0 && o.eta <= 1)) throw_usage("--eta must be from 0 to 1");
  if (!(o.clip_sample >= 0) || !std::isfinite(o.clip_sample)) throw_usage("--clip-sample must be 0 (off) or positive");
  if (!(o.threshold >= 0 && o.threshold <= 1)) throw_usage("--threshold must be from 0 (off) to 1");
  if (!(o.threshold_max >= 1) || !std::isfinite(o.threshold_max)) throw_usage("--threshold-max must be at least 1");
  if (!std::isfinite(o.guidance)) throw_usage("--guidance must be finite");
  if (o.steps_offset < 0) throw_usage("--steps-offset must be at least 0");
}

std::vector<Step> plan(const Options& o) {
  validate(o);
  const auto ac = alphas_cumprod(o.schedule);
  const auto ts = timesteps(o.schedule.train_steps, o.steps, o.spacing, o.steps_offset);
  const double final_abar = o.final_alpha_one ? 1.0 : ac.front();
  std::vector<Step> p;
  for (std::size_t k = 0; k < ts.size(); ++k) {
    Step s;
    s.t = ts[k];
    s.abar = ac[s.t];
    if (o.diffusers_compat)
      s.t_prev = s.t - o.schedule.train_steps / o.steps;
    else
      s.t_prev = k + 1 < ts.size() ? ts[k + 1] : -1;
    s.abar_prev = s.t_prev >= 0 ? ac[s.t_prev] : final_abar;
    p.push_back(s);
  }
  return p;
}

void split_prediction(Output pred, double abar, const float* x, const float* out, std::int64_t d, double* x0,
                      double* eps) {
  const double a = std::sqrt(abar), b = std::sqrt(1 - abar);
  for (std::int64_t j = 0; j < d; ++j) {
    const double xj = x[j], oj = out[j];
    switch (pred) {
      case Output::epsilon:
        x0[j] = (xj - b * oj) / a;
        eps[j] = oj;
        break;
      case Output::sample:
        x0[j] = oj;
        eps[j] = b > 0 ? (xj - a * oj) / b : 0.0;
        break;
      case Output::v_prediction:
        x0[j] = a * xj - b * oj;
        eps[j] = a * oj + b * xj;
        break;
      default:
        throw_usage(std::string("ddim needs an epsilon, v_prediction or sample model, not ") +
                    models::output_name(pred));
    }
  }
}

void dynamic_threshold(double* x0, std::int64_t d, double ratio, double max_value) {
  // s = the ratio-quantile of |x0| (linear interpolation, as torch.quantile),
  // clamped to [1, max_value]; x0 <- clamp(x0, -s, s) / s.
  std::vector<double> a(x0, x0 + d);
  for (double& v : a) v = std::fabs(v);
  std::sort(a.begin(), a.end());
  const double pos = ratio * static_cast<double>(d - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos)), hi = static_cast<std::size_t>(std::ceil(pos));
  double s = a[lo] + (a[hi] - a[lo]) * (pos - static_cast<double>(lo));
  s = std::min(std::max(s, 1.0), max_value);
  for (std::int64_t j = 0; j < d; ++j) x0[j] = std::min(std::max(x0[j], -s), s) / s;
}

void ddim_step(const Options& o, Output pred, const Step& st, const float* x, const float* model_out,
               const float* z, std::int64_t d, float* x_prev) {
  double x0_stack[64], eps_stack[64];
  std::vector<double> heap;
  double *x0 = x0_stack, *eps = eps_stack;
  if (d > 64) {
    heap.resize(static_cast<std::size_t>(2 * d));
    x0 = heap.data();
    eps = x0 + d;
  }
  split_prediction(pred, st.abar, x, model_out, d, x0, eps);
  if (o.threshold > 0)
    dynamic_threshold(x0, d, o.threshold, o.threshold_max);
  else if (o.clip_sample > 0)
    for (std::int64_t j = 0; j < d; ++j) x0[j] = std::min(std::max(x0[j], -o.clip_sample), o.clip_sample);
  const double ap = st.abar_prev;
  const double var = (1 - ap) / (1 - st.abar) * (1 - st.abar / ap);
  const double std_t = o.eta * std::sqrt(std::max(var, 0.0));
  const double c0 = std::sqrt(ap), ce = std::sqrt(std::max(1 - ap - std_t * std_t, 0.0));
  for (std::int64_t j = 0; j < d; ++j) {
    double v = c0 * x0[j] + ce * eps[j];
    if (o.eta > 0) v += std_t * z[j];
    x_prev[j] = static_cast<float>(v);
  }
}

NoiseFn counter_noise(std::uint64_t seed, std::int64_t d) {
  return [seed, d](std::int64_t k, std::int64_t row, float* z) {
    const std::uint64_t s = k == 0 ? seed : splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(k)));
    fill_normal(s, static_cast<std::uint64_t>(row), z, d);
  };
}

void sample(const models::Model& model, const Options& o, Tensor& x, const Run& run) {
  check_input(model, x, "x_T");
  const Output pred = model.output();
  const std::vector<Step> steps = plan(o);
  const std::int64_t n = x.ndim() ? x.dim(0) : 0, d = model.dim();
  for (const Step& s : steps)
    if (pred == Output::epsilon && s.abar == 0)
      throw_usage("timestep " + std::to_string(s.t) +
                  " has no signal left (zero terminal SNR): an epsilon model cannot predict x0 there; "
                  "use a v_prediction model (or --prediction sample)");
  start_trajectory(run, x, static_cast<std::int64_t>(steps.size()));
  const NoiseFn noise = run.noise ? run.noise : counter_noise(0, d);
  Evaluator eval(model, o, run, n);
  float* xs = x.data<float>();
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const float* out = eval(xs, steps[k].t, steps[k].abar);
    parallel_for(n, 256, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> z(o.eta > 0 ? static_cast<std::size_t>(d) : 0);
      for (std::int64_t i = b; i < e; ++i) {
        if (o.eta > 0) noise(static_cast<std::int64_t>(k) + 1, run.first_row + i, z.data());
        ddim_step(o, pred, steps[k], xs + i * d, out + i * d, z.data(), d, xs + i * d);
      }
    });
    record(run, x, static_cast<std::int64_t>(k) + 1);
    if (run.progress) run.progress(static_cast<std::int64_t>(k) + 1, static_cast<std::int64_t>(steps.size()));
  }
}

void invert(const models::Model& model, const Options& o, Tensor& x, const Run& run) {
  check_input(model, x, "the data to invert");
  const Output pred = model.output();
  const std::vector<Step> steps = plan(o);
  const std::int64_t n = x.ndim() ? x.dim(0) : 0, d = model.dim();
  start_trajectory(run, x, static_cast<std::int64_t>(steps.size()));
  Evaluator eval(model, o, run, n);
  float* xs = x.data<float>();
  const std::int64_t S = static_cast<std::int64_t>(steps.size());
  for (std::int64_t j = 0; j < S; ++j) {
    // From the level of steps[k].abar_prev up to steps[k].abar, the model
    // evaluated at the noisier timestep; its output read as noise there.
    const Step& st = steps[S - 1 - j];
    const float* out = eval(xs, st.t, st.abar);
    parallel_for(n, 256, [&](std::int64_t b, std::int64_t e) {
      std::vector<double> x0(static_cast<std::size_t>(d)), eps(static_cast<std::size_t>(d));
      const double as = std::sqrt(st.abar_prev), bs = std::sqrt(1 - st.abar_prev);
      const double at = std::sqrt(st.abar), bt = std::sqrt(1 - st.abar);
      for (std::int64_t i = b; i < e; ++i) {
        float* xi = xs + i * d;
        split_prediction(pred, st.abar, xi, out + i * d, d, x0.data(), eps.data());
        for (std::int64_t c = 0; c < d; ++c) {
          const double x0c = (xi[c] - bs * eps[c]) / as;
          xi[c] = static_cast<float>(at * x0c + bt * eps[c]);
        }
      }
    });
    record(run, x, j + 1);
    if (run.progress) run.progress(j + 1, S);
  }
}

}  // namespace nnkit::diffusion
