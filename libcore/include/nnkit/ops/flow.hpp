// Flow matching and rectified flow: sampling, encoding and likelihoods with
// ODE solvers over a velocity model of the shared runtime (models.hpp).
//
// Convention (that of SD3 and diffusers' FlowMatchEulerDiscreteScheduler):
//   x_t = (1 - t) x0 + t eps,  t in [0, 1],  t = 1 is noise N(0, I),
//   v(x_t, t) = dx_t/dt = E[eps - x0 | x_t].
// Sampling integrates dx/dt = v from t = 1 to t = 0; --reverse from 0 to 1.
// Models trained the other way round (t = 0 noise, x_s = s x0 + (1 - s) eps,
// predicting x0 - eps) declare time_convention=reversed in their metadata:
// they are called at s = 1 - t and their output negated. The model's own
// time_scale (e.g. 999 or 1000) multiplies its time input as usual.
//
// Time grid for S steps: t_i = 1 - i/S, i = 0..S, then the SD3 shift
//   t' = s t / (1 + (s - 1) t)         (s = 1: unchanged; s > 1: more steps
//                                       near the noise end)
//
// Fixed-step solvers from t to t + h (h < 0 when sampling):
//   euler     x + h k1                                    1 evaluation/step
//   midpoint  k2 = v(x + h/2 k1, t + h/2);  x + h k2       2
//   heun      k2 = v(x + h k1, t + h);  x + h/2 (k1 + k2)  2
//   rk4       classic Runge-Kutta, x + h/6 (k1+2k2+2k3+k4) 4
// with k1 = v(x, t). dopri5 is adaptive Dormand-Prince 5(4) with FSAL and
// the error norm max over rows of the RMS of e_j / (atol + rtol max|x_j|):
// a step is accepted when the norm is at most 1, and h is scaled by
// 0.9 norm^(-1/5) clamped to [0.2, 5]. The step size is shared by the rows
// integrated together (so under sharding dopri5 agrees with the whole run to
// its tolerance, the fixed-step solvers bit for bit).
//
// The state is integrated in double; the model sees it rounded to float.
//
// Log-likelihood (instantaneous change of variables, Chen et al. 2018):
//   log p0(x0) = log N(x1; 0, I) + integral_0^1 div v(x_t, t) dt,
// integrated together with x from t = 0 to 1. div v is exact: for gmm in
// closed form, for the MLP by D forward-mode Jacobian-vector products
// (refused above kMaxExactDim unless Hutchinson's estimator with K Rademacher
// probes, fixed per row, is asked for).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nnkit/ops/models.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::flow {

enum class Solver { euler, midpoint, heun, rk4, dopri5 };
const char* solver_name(Solver s);
std::optional<Solver> parse_solver(const std::string& s);
// Model evaluations per step of a fixed-step solver (dopri5: 6 with FSAL).
int evaluations_per_step(Solver s);

// The most steps a fixed-step solver takes (--steps): far beyond any use,
// and low enough that the grid's size never overflows.
inline constexpr std::int64_t kMaxSteps = 1000000000;

// The SD3 shift of one time (s > 0).
double shift_time(double t, double s);
// The S + 1 times of the grid from t = 1 to 0 (reverse: from 0 to 1),
// shifted; usage errors for S outside 1 to kMaxSteps or a shift that is not
// positive.
std::vector<double> time_grid(std::int64_t steps, double shift, bool reverse = false);

// The largest dimension for which --log-prob computes the exact divergence.
inline constexpr std::int64_t kMaxExactDim = 64;

// A model seen as the velocity field of the flow convention.
class Field {
 public:
  // Data errors when the model does not predict a velocity (gmm models are
  // switched to it) or the metadata key time_convention is not flow or
  // reversed. `where` names the model in messages. The model must outlive it.
  Field(models::Model& model, const std::string& where);
  const models::Model& model() const { return model_; }
  std::int64_t dim() const { return model_.dim(); }
  bool reversed() const { return reversed_; }
  // The model's Time at flow time t.
  models::Time model_time(double t) const;
  // v(x, t) for n rows (first_row: global index of row 0), on the runtime's
  // threads. labels as in Model::predict.
  void velocity(const float* x, std::int64_t n, double t, float* out, std::int64_t first_row = 0,
                const std::int64_t* labels = nullptr) const;

 private:
  models::Model& model_;
  bool reversed_ = false;
};

struct Options {
  Solver solver = Solver::euler;
  std::int64_t steps = 50;  // fixed-step solvers
  double shift = 1;         // SD3 shift of the grid
  double rtol = 1e-5, atol = 1e-5;
  double first_step = 0;        // dopri5 initial |h|; 0: 0.01
  double min_step = 1e-10;      // dopri5: a step below this is an error
  std::int64_t max_steps = 100000;
};
// Usage errors for inconsistent options.
void validate(const Options& o);

struct Stats {
  std::int64_t evaluations = 0;  // model evaluations per sample
  std::int64_t steps = 0;        // accepted steps
  std::int64_t rejected = 0;     // rejected steps (dopri5)
};

struct Run {
  const std::int64_t* labels = nullptr;
  std::int64_t first_row = 0;  // global index of row 0
  Tensor* trajectory = nullptr;  // receives [steps + 1, n, ...] when not null (fixed-step solvers and dopri5)
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

// A right-hand side over a batch: dY for the state Y [n, m] at time t.
using Rhs = std::function<void(double t, const double* y, double* dy)>;
// Integrates Y [n, m] from t0 to t1 (fixed-step solvers on the grid given,
// whose first and last entries are t0 and t1; dopri5 ignores its interior).
// `on_step(k, t)` is called after each accepted step. Returns the stats.
Stats integrate(const Options& o, const std::vector<double>& grid, std::int64_t n, std::int64_t m,
                std::vector<double>& y, const Rhs& rhs, const std::function<void(std::int64_t, double)>& on_step = {});

// Samples in place: x holds x_1 [n, ...] and receives x_0 (reverse: x holds
// data and receives the noise x_1).
Stats sample(const Field& field, const Options& o, Tensor& x, bool reverse = false, const Run& run = {});

// Velocity and exact divergence of a field.
class Divergence {
 public:
  virtual ~Divergence() = default;
  // v [n, D] and div v [n] at flow time t; rows global from first_row.
  virtual void operator()(const float* x, std::int64_t n, double t, float* v, double* div,
                          std::int64_t first_row) const = 0;
};
// gmm: closed form. mlp: forward-mode JVPs through the network whose tensors
// are given (those of the model file); hutchinson > 0 uses that many
// Rademacher probes per row (seeded by (seed, row)) instead of D exact JVPs.
// Usage error for an MLP with dim() > kMaxExactDim and no probes.
std::unique_ptr<Divergence> divergence(const Field& field, const std::vector<NamedTensor>& tensors,
                                       std::int64_t hutchinson = 0, std::uint64_t seed = 0);

// log p0(x) per row of x [n, ...] (data at t = 0): integrates [x, l] from
// t = 0 to 1 with the solver and the reversed grid.
std::vector<double> log_prob(const Field& field, const Divergence& div, const Options& o, const Tensor& x,
                             Stats* stats = nullptr, const Run& run = {});

// ------------------------------------------------------------------ coupling flows
//
// kinds nice and realnvp (nnkit-formats(5)): f maps data x to latent z through
// L coupling layers, each with a mask m (1: the coordinates it changes, 0:
// those it conditions on) and an MLP net of the masked input, then a diagonal
// scaling z = y exp(scale):
//   nice     y = x + m net(x (1 - m))                         log-det 0
//   realnvp  [s, t] = net(x (1 - m)), s <- tanh(s)
//            y = x (1 - m) + m (x exp(s) + t)                  log-det sum m s
// log p(x) = log prior(f(x)) + log|det df/dx|; prior gaussian or logistic
// (log p(z) = -softplus(z) - softplus(-z) per coordinate). Sampling is exact:
// z from the prior, x = f^-1(z). Arithmetic in double.
class Coupling : public models::Model {
 public:
  enum class Prior { gaussian, logistic };
  struct Linear {
    std::int64_t in = 0, out = 0;
    std::vector<double> w, b;  // w [out, in]
  };
  struct Layer {
    std::vector<double> mask;
    std::vector<Linear> net;
  };
  Coupling(models::Kind kind, std::int64_t dim, std::vector<Layer> layers, std::vector<double> scale,
           models::Activation act, Prior prior);
  Prior prior() const { return prior_; }
  std::int64_t layers() const { return static_cast<std::int64_t>(layers_.size()); }
  // z = f(x) and log|det df/dx| (logdet may be null) for n rows, threaded.
  void forward(const float* x, std::int64_t n, float* z, double* logdet) const;
  // x = f^-1(z) for n rows, threaded.
  void inverse(const float* z, std::int64_t n, float* x) const;
  // log p(x) for n rows.
  void log_prob(const float* x, std::int64_t n, double* out) const;
  // z of global row `row` drawn from the prior (counter-based, as x_1 of the ODE models).
  void draw_prior(std::uint64_t seed, std::int64_t row, float* z) const;
  // A coupling flow has no time-dependent prediction: usage error.
  void predict(const float*, std::int64_t, const models::Time&, const std::int64_t*, float*,
               std::int64_t = 0) const override;

 private:
  void net(const Layer& l, const double* in, double* out, std::vector<double>& h1, std::vector<double>& h2) const;
  void forward_row(const float* x, double* z, double* logdet) const;
  void inverse_row(const float* z, double* x) const;
  std::vector<Layer> layers_;
  std::vector<double> scale_;
  models::Activation act_;
  Prior prior_;
};

}  // namespace nnkit::flow
