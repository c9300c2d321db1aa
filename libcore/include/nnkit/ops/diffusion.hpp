// DDIM sampling (Song, Meng and Ermon, "Denoising Diffusion Implicit Models",
// 2021) with the noise schedules and timestep lists of diffusers'
// DDIMScheduler, so that a model trained with diffusers samples the same here.
//
// Schedule (T training steps, float32 as diffusers stores them):
//   linear             beta_i = linspace(beta_start, beta_end, T)
//   scaled_linear      beta_i = linspace(sqrt(beta_start), sqrt(beta_end), T)^2
//   squaredcos_cap_v2  beta_i = min(1 - abar(i+1)/abar(i), 0.999),
//                      abar(u) = cos^2((u/T + 0.008)/1.008 * pi/2)
//   abar_t = prod_{i<=t} (1 - beta_i).  rescale_zero_snr (Lin et al. 2023):
//   sqrt(abar) is shifted and scaled so that its last value is 0 and its first
//   is unchanged, and the betas recomputed from it.
// Timesteps for S steps (descending):
//   leading   (arange(S) * (T // S))[::-1] + steps_offset
//   linspace  round(linspace(0, T - 1, S))[::-1]   (round half to even)
//   trailing  round(arange(T, 0, -T / S)) - 1
// The step from t to the previous timestep t' (the next entry of the list; the
// last step goes to the "final" alpha: 1, or abar_0 with final_alpha = first;
// with diffusers_compat t' = t - T // S as diffusers computes it):
//   x0^  and eps^  from the model output (epsilon, v_prediction or sample)
//   x0^ <- clip(x0^, -R, R) (clip_sample) or dynamic thresholding
//   sigma_t = eta * sqrt((1 - abar_t') / (1 - abar_t) * (1 - abar_t / abar_t'))
//   x_t' = sqrt(abar_t') x0^ + sqrt(1 - abar_t' - sigma_t^2) eps^ + sigma_t z
// Inversion runs the list backwards with eta = 0, the model evaluated at the
// noisier timestep (as diffusers' DDIMInverseScheduler).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nnkit/ops/models.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::diffusion {

enum class BetaSchedule { linear, scaled_linear, squaredcos_cap_v2 };
enum class Spacing { leading, linspace, trailing };
using models::Output;  // epsilon, v_prediction or sample

struct Schedule {
  std::int64_t train_steps = 1000;
  BetaSchedule betas = BetaSchedule::linear;
  double beta_start = 0.0001, beta_end = 0.02;
  bool rescale_zero_snr = false;
};

// The most training steps a schedule may have (ddim-sample --train-steps).
inline constexpr std::int64_t kMaxTrainSteps = 1000000;

// The training schedule a model declares in its metadata (train_steps,
// beta_schedule, beta_start, beta_end, rescale_zero_snr) over s; keys named in
// `overridden` (given as options) are neither read nor checked. A malformed
// value is a data error naming the model (where) and the key.
Schedule model_schedule(const std::map<std::string, std::string>& metadata, Schedule s, const std::string& where,
                        const std::vector<std::string>& overridden = {});

// The betas and abar_t, each value rounded to float32 as diffusers holds them.
std::vector<double> betas(const Schedule& s);
std::vector<double> alphas_cumprod(const Schedule& s);
// The descending timestep list (usage errors for S < 1, S > T, T > kMaxTrainSteps).
std::vector<std::int64_t> timesteps(std::int64_t train_steps, std::int64_t steps, Spacing spacing,
                                    std::int64_t steps_offset);

struct Options {
  Schedule schedule;
  std::int64_t steps = 50;
  Spacing spacing = Spacing::leading;
  std::int64_t steps_offset = 0;
  double eta = 0;
  bool final_alpha_one = true;    // set_alpha_to_one
  bool diffusers_compat = false;  // previous timestep t - T // S
  double clip_sample = 0;         // 0: off
  double threshold = 0;           // dynamic thresholding ratio, 0: off
  double threshold_max = 1;       // sample_max_value
  double guidance = 1;            // classifier-free guidance scale
};

// Usage errors for options out of their ranges (those of ddim-sample's
// options: eta and threshold in [0, 1], clip_sample >= 0, threshold_max >= 1,
// a finite guidance, betas in (0, 1)); plan() checks them first.
void validate(const Options& o);

// One step of the plan: from timestep t (abar_t) to abar_prev.
struct Step {
  std::int64_t t = 0, t_prev = -1;  // t_prev < 0: the final alpha
  double abar = 0, abar_prev = 1;
};
std::vector<Step> plan(const Options& o);

// x0^ and eps^ of one row from a model output of type `pred` at abar.
void split_prediction(Output pred, double abar, const float* x, const float* out, std::int64_t d, double* x0,
                      double* eps);
// diffusers' dynamic thresholding of one row's x0^ (in place).
void dynamic_threshold(double* x0, std::int64_t d, double ratio, double max_value);

// The update of one row: x (at step.t) to x_prev, given the model output, the
// noise z (read only when eta > 0; may be null otherwise).
void ddim_step(const Options& o, Output pred, const Step& step, const float* x, const float* model_out,
               const float* z, std::int64_t d, float* x_prev);

// Noise z of row `row` at step k (k = 0 is x_T itself), d values.
using NoiseFn = std::function<void(std::int64_t k, std::int64_t row, float* z)>;
// The counter-based noise: x_T of row i is fill_normal(seed, i); step k > 0
// draws from a seed derived from (seed, k), so every number depends only on
// (seed, row, step).
NoiseFn counter_noise(std::uint64_t seed, std::int64_t d);

struct Run {
  const std::int64_t* labels = nullptr;  // per row, -1 unconditional; null: all unconditional
  std::int64_t first_row = 0;            // global index of row 0 (sharding)
  NoiseFn noise;                         // eta > 0 only; default counter_noise
  Tensor* trajectory = nullptr;          // receives [S + 1, n, ...] when not null
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

// Samples in place: x holds x_T [n, ...] and receives x_0. The model's output
// type is the prediction type. Uses thread_count() threads.
void sample(const models::Model& model, const Options& o, Tensor& x, const Run& run = {});
// DDIM inversion in place: x holds data [n, ...] and receives x_T.
void invert(const models::Model& model, const Options& o, Tensor& x, const Run& run = {});

}  // namespace nnkit::diffusion
