// The option values of ddim-sample and flow-sample, as the core receives
// them: diffusion::timesteps (the timestep lists), betas/alphas_cumprod (the
// schedules), model_schedule (a model's declared schedule), plan and sample
// (eta, clipping, thresholds, guidance over class labels); flow::time_grid
// (steps, shift), validate and sample (solvers, tolerances); parse_part and
// part_range (--shard K/N). The first byte picks the parser; the rest feeds
// its arguments through FuzzedDataProvider, so every int64 and double is
// reachable, extremes included.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/flow.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/shard.hpp"

using namespace nnkit;

namespace {

// An int64 that is often small and sometimes anything.
std::int64_t count(FuzzedDataProvider& fdp, std::int64_t small_max) {
  if (fdp.ConsumeIntegralInRange(0, 7) == 0) return fdp.ConsumeIntegral<std::int64_t>();
  return fdp.ConsumeIntegralInRange<std::int64_t>(-2, small_max);
}

// A double that is often in [lo, hi] and sometimes anything (NaN, infinities).
double real(FuzzedDataProvider& fdp, double lo, double hi) {
  if (fdp.ConsumeIntegralInRange(0, 7) == 0) {
    const double special[] = {std::nan(""), std::numeric_limits<double>::infinity(), -1.0, 0.0, 1e308, 1e-308};
    return fdp.ConsumeBool() ? fdp.PickValueInArray(special) : fdp.ConsumeFloatingPoint<double>();
  }
  return fdp.ConsumeFloatingPointInRange(lo, hi);
}

diffusion::Schedule schedule(FuzzedDataProvider& fdp) {
  diffusion::Schedule s;
  s.train_steps = count(fdp, 3000);
  s.betas = fdp.PickValueInArray({diffusion::BetaSchedule::linear, diffusion::BetaSchedule::scaled_linear,
                                  diffusion::BetaSchedule::squaredcos_cap_v2});
  s.beta_start = real(fdp, 0, 0.1);
  s.beta_end = real(fdp, 0, 0.5);
  s.rescale_zero_snr = fdp.ConsumeBool();
  return s;
}

diffusion::Options ddim_options(FuzzedDataProvider& fdp) {
  diffusion::Options o;
  o.schedule = schedule(fdp);
  o.steps = count(fdp, 40);
  o.spacing = fdp.PickValueInArray({diffusion::Spacing::leading, diffusion::Spacing::linspace, diffusion::Spacing::trailing});
  o.steps_offset = count(fdp, 3);
  o.eta = real(fdp, 0, 1);
  o.final_alpha_one = fdp.ConsumeBool();
  o.diffusers_compat = fdp.ConsumeBool();
  o.clip_sample = fdp.ConsumeBool() ? real(fdp, 0, 3) : 0;
  o.threshold = fdp.ConsumeBool() ? real(fdp, 0, 1) : 0;
  o.threshold_max = real(fdp, 1, 4);
  o.guidance = real(fdp, -2, 8);
  return o;
}

void fuzz_timesteps(FuzzedDataProvider& fdp) {
  const std::int64_t T = count(fdp, 3000), S = count(fdp, 3000), offset = count(fdp, 5);
  const auto spacing = fdp.PickValueInArray({diffusion::Spacing::leading, diffusion::Spacing::linspace, diffusion::Spacing::trailing});
  std::vector<std::int64_t> ts;
  if (!fuzz::expected([&] { ts = diffusion::timesteps(T, S, spacing, offset); })) return;
  fuzz::check(!ts.empty() && static_cast<std::int64_t>(ts.size()) <= S, "timesteps: not 1 to S of them");
  for (std::int64_t t : ts) fuzz::check(t >= 0 && t < T, "timesteps: a timestep outside [0, T)");
}

void fuzz_schedule(FuzzedDataProvider& fdp) {
  const diffusion::Schedule s = schedule(fdp);
  std::vector<double> ac;
  if (!fuzz::expected([&] { ac = diffusion::alphas_cumprod(s); })) return;
  fuzz::check(static_cast<std::int64_t>(ac.size()) == s.train_steps, "alphas_cumprod: not T values");
  for (double a : ac) fuzz::check(a >= 0 && a <= 1, "alphas_cumprod: a value outside [0, 1]");
}

void fuzz_model_schedule(FuzzedDataProvider& fdp) {
  std::map<std::string, std::string> meta;
  for (const char* key : {"train_steps", "beta_schedule", "beta_start", "beta_end", "rescale_zero_snr"})
    if (fdp.ConsumeBool()) meta[key] = fdp.ConsumeRandomLengthString(24);
  std::vector<std::string> overridden;
  if (fdp.ConsumeBool()) overridden.push_back("train_steps");
  diffusion::Schedule s;
  if (!fuzz::expected([&] { s = diffusion::model_schedule(meta, s, "fuzz-model", overridden); })) return;
  fuzz::check(s.train_steps >= 1 && s.train_steps <= diffusion::kMaxTrainSteps, "model_schedule: train_steps out of range");
  fuzz::check(s.beta_start > 0 && s.beta_start < 1 && s.beta_end > 0 && s.beta_end < 1, "model_schedule: a beta outside (0, 1)");
}

// Two rows of the built-in mixture (classes 0 to 7), sampled or inverted.
void fuzz_ddim(FuzzedDataProvider& fdp) {
  const diffusion::Options o = ddim_options(fdp);
  std::vector<diffusion::Step> plan;
  if (!fuzz::expected([&] { plan = diffusion::plan(o); })) return;
  if (plan.size() > 40 || o.schedule.train_steps > 5000) return;  // cost, not correctness
  auto model = models::default_model();
  model->set_output(fdp.PickValueInArray({models::Output::epsilon, models::Output::v_prediction, models::Output::sample}));
  Tensor x(DType::f4, {2, 2});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(real(fdp, -3, 3));
  const std::int64_t labels[2] = {fdp.ConsumeIntegralInRange<std::int64_t>(-1, 7), fdp.ConsumeIntegralInRange<std::int64_t>(-1, 7)};
  diffusion::Run run;
  run.labels = fdp.ConsumeBool() ? labels : nullptr;
  run.first_row = fdp.ConsumeIntegralInRange<std::int64_t>(0, 1 << 20);
  Tensor trajectory;
  run.trajectory = fdp.ConsumeBool() ? &trajectory : nullptr;
  if (fdp.ConsumeBool())
    (void)fuzz::expected([&] { diffusion::sample(*model, o, x, run); });
  else if (o.eta == 0)
    (void)fuzz::expected([&] { diffusion::invert(*model, o, x, run); });
}

void fuzz_time_grid(FuzzedDataProvider& fdp) {
  const std::int64_t steps = count(fdp, 2000);
  const double shift = real(fdp, 0, 10);
  const bool reverse = fdp.ConsumeBool();
  std::vector<double> g;
  if (!fuzz::expected([&] { g = flow::time_grid(steps, shift, reverse); })) return;
  fuzz::check(static_cast<std::int64_t>(g.size()) == steps + 1, "time_grid: not steps + 1 times");
  for (std::size_t i = 0; i < g.size(); ++i) {
    fuzz::check(g[i] >= 0 && g[i] <= 1, "time_grid: a time outside [0, 1]");
    if (i > 0) fuzz::check(reverse ? g[i] >= g[i - 1] : g[i] <= g[i - 1], "time_grid: times not in order");
  }
}

// Two rows of the built-in mixture through every solver.
void fuzz_flow(FuzzedDataProvider& fdp) {
  flow::Options o;
  o.solver = fdp.PickValueInArray({flow::Solver::euler, flow::Solver::midpoint, flow::Solver::heun, flow::Solver::rk4,
                                   flow::Solver::dopri5});
  o.steps = count(fdp, 64);
  o.shift = real(fdp, 0.1, 10);
  o.rtol = real(fdp, 0, 1e-2);
  o.atol = real(fdp, 0, 1e-2);
  o.first_step = real(fdp, 0, 1);
  o.max_steps = fdp.ConsumeIntegralInRange<std::int64_t>(1, 200);
  if (!fuzz::expected([&] { flow::validate(o); })) return;
  if (o.solver != flow::Solver::dopri5 && o.steps > 64) return;  // cost, not correctness
  auto model = models::default_model();
  const flow::Field field(*model, "built-in");
  Tensor x(DType::f4, {2, 2});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(real(fdp, -3, 3));
  flow::Run run;
  run.first_row = fdp.ConsumeIntegralInRange<std::int64_t>(0, 1 << 20);
  (void)fuzz::expected([&] { flow::sample(field, o, x, fdp.ConsumeBool(), run); });
}

void fuzz_shard(FuzzedDataProvider& fdp) {
  const std::string text = fdp.ConsumeRandomLengthString(40);
  Part p{};
  if (!fuzz::expected([&] { p = parse_part(text); })) return;
  fuzz::check(p.index >= 0 && p.index < p.count, "parse_part accepted K outside [0, N)");
  const std::int64_t len = fdp.ConsumeIntegralInRange<std::int64_t>(0, std::numeric_limits<std::int64_t>::max());
  const auto [b, e] = part_range(len, p);
  fuzz::check(0 <= b && b <= e && e <= len, "part_range out of [0, length]");
  // With few parts, they tile [0, length) in order.
  if (p.count <= 64) {
    std::int64_t at = 0;
    for (std::int64_t k = 0; k < p.count; ++k) {
      const auto [kb, ke] = part_range(len, {k, p.count});
      fuzz::check(kb == at && ke >= kb && ke - kb <= len / p.count + 1, "parts do not tile the rows");
      at = ke;
    }
    fuzz::check(at == len, "parts do not cover the rows");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider fdp(data + 1, size - 1);
  switch (data[0] % 8) {
    case 0: fuzz_timesteps(fdp); break;
    case 1: fuzz_schedule(fdp); break;
    case 2: fuzz_model_schedule(fdp); break;
    case 3: fuzz_ddim(fdp); break;
    case 4: fuzz_time_grid(fdp); break;
    case 5: fuzz_flow(fdp); break;
    case 6:
    case 7: fuzz_shard(fdp); break;
  }
  return 0;
}
