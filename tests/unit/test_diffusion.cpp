// DDIM: diffusers' timestep lists and schedules, the numpy reference of the
// equations, exactness with the Gaussian-mixture model, DDPM equivalence,
// inversion, and row independence (sharding, threads).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "nnkit/formats/safetensors.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

using namespace nnkit;
using diffusion::BetaSchedule;
using diffusion::Spacing;

namespace {

const std::string dir = std::string(NNKIT_FIXTURES) + "/diffusion/";

safetensors::File read_file(const std::string& path) {
  Input in = Input::open(path);
  return safetensors::read(in);
}

const Tensor& get(const safetensors::File& f, const std::string& name) {
  for (const auto& t : f.tensors)
    if (t.name == name) return t.tensor;
  throw std::runtime_error("no tensor " + name);
}

std::vector<double> doubles(const Tensor& t) {
  const Tensor d = t.astype(DType::f8);
  return std::vector<double>(d.data<double>(), d.data<double>() + d.numel());
}

Spacing spacing_of(const std::string& s) {
  return s == "leading" ? Spacing::leading : s == "linspace" ? Spacing::linspace : Spacing::trailing;
}

BetaSchedule schedule_of(const std::string& s) {
  return s == "linear" ? BetaSchedule::linear
         : s == "scaled_linear" ? BetaSchedule::scaled_linear
                                : BetaSchedule::squaredcos_cap_v2;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) out.push_back(part);
  return out;
}

Tensor rows(const std::vector<float>& v, std::int64_t d) {
  return Tensor::from_vector<float>({static_cast<std::int64_t>(v.size()) / d, d}, v);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(a.get(i) - b.get(i)));
  return m;
}

}  // namespace

TEST(DiffusionTimesteps, EqualDiffusersGoldenLists) {
  std::ifstream f(dir + "timesteps.txt");
  ASSERT_TRUE(f) << "missing timesteps.txt";
  std::string line;
  int cases = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto colon = line.find(':');
    const auto head = split(line.substr(0, colon), ' ');
    std::vector<std::int64_t> want;
    for (const auto& w : split(line.substr(colon + 1), ' '))
      if (!w.empty()) want.push_back(std::stoll(w));
    const auto got = diffusion::timesteps(1000, std::stoll(head[2]), spacing_of(head[0]), std::stoll(head[1]));
    EXPECT_EQ(got, want) << line.substr(0, colon);
    ++cases;
  }
  EXPECT_EQ(cases, 20);
}

TEST(DiffusionTimesteps, PreviousIsTheNextEntryOrDiffusersStride) {
  diffusion::Options o;
  o.steps = 7;
  o.spacing = Spacing::trailing;
  auto p = diffusion::plan(o);
  ASSERT_EQ(p.size(), 7u);
  for (std::size_t k = 0; k + 1 < p.size(); ++k) EXPECT_EQ(p[k].t_prev, p[k + 1].t);
  EXPECT_EQ(p.back().t_prev, -1);
  EXPECT_EQ(p.back().abar_prev, 1.0);
  o.diffusers_compat = true;
  p = diffusion::plan(o);
  EXPECT_EQ(p[0].t_prev, 999 - 142);
  EXPECT_EQ(p.back().t_prev, 142 - 142);  // trailing's last step goes to t = 0, not the final alpha
  // Leading with S dividing T: both agree.
  o.spacing = Spacing::leading;
  o.steps = 10;
  auto a = diffusion::plan(o);
  o.diffusers_compat = false;
  auto b = diffusion::plan(o);
  for (std::size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k].abar_prev, b[k].abar_prev);
  o.final_alpha_one = false;
  EXPECT_EQ(diffusion::plan(o).back().abar_prev, diffusion::alphas_cumprod(o.schedule)[0]);
}

TEST(DiffusionTimesteps, RefusesImpossibleLists) {
  EXPECT_THROW(diffusion::timesteps(1000, 0, Spacing::leading, 0), Error);
  EXPECT_THROW(diffusion::timesteps(1000, 1001, Spacing::linspace, 0), Error);
  EXPECT_THROW(diffusion::timesteps(1000, 10, Spacing::leading, 100), Error);  // 900 + 100 = T
}

TEST(DiffusionSchedule, AlphasCumprodEqualDiffusers) {
  const auto f = read_file(dir + "schedules.safetensors");
  for (const auto& nt : f.tensors) {
    diffusion::Schedule s;
    std::string name = nt.name;
    if (name.size() > 5 && name.substr(name.size() - 5) == "_zsnr") {
      s.rescale_zero_snr = true;
      name = name.substr(0, name.size() - 5);
    }
    s.betas = schedule_of(name);
    if (name == "scaled_linear") {
      s.beta_start = 0.00085;
      s.beta_end = 0.012;
    }
    const auto got = diffusion::alphas_cumprod(s);
    const auto want = doubles(nt.tensor);
    ASSERT_EQ(got.size(), want.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LT(worst, 2e-7) << nt.name;
    if (s.rescale_zero_snr) {
      EXPECT_EQ(got.back(), 0.0) << nt.name;  // zero terminal SNR
      EXPECT_NEAR(got.front(), diffusion::alphas_cumprod({1000, s.betas, s.beta_start, s.beta_end, false})[0], 1e-6);
    }
  }
}

TEST(DiffusionReference, NumpyDdimEquations) {
  // Every case of ddim_reference: schedules x spacings x predictions x final
  // alphas x eta in {0, 0.5, 1} (the noise given), clipping, thresholding.
  const auto f = read_file(dir + "ddim_reference.safetensors");
  const Tensor& xT = get(f, "x_T");
  const Tensor& noise = get(f, "noise");
  const std::int64_t N = xT.dim(0), D = xT.dim(1);
  models::Gmm gmm(doubles(get(f, "means")), doubles(get(f, "stds")), doubles(get(f, "weights")), 3, 2);
  int cases = 0;
  for (const auto& nt : f.tensors) {
    if (nt.name.rfind("out/", 0) != 0) continue;
    const auto p = split(nt.name, '/');  // out/SCHEDULE/SPACING/PRED/FINAL/ETA/CLIP/THRESHOLD
    diffusion::Options o;
    std::string sched = p[1];
    if (sched == "linear_zsnr") {
      sched = "linear";
      o.schedule.rescale_zero_snr = true;
    }
    o.schedule.betas = schedule_of(sched);
    if (sched == "scaled_linear") {
      o.schedule.beta_start = 0.00085;
      o.schedule.beta_end = 0.012;
    }
    o.steps = 10;
    o.spacing = spacing_of(p[2]);
    gmm.set_output(*models::parse_output(p[3]));
    o.final_alpha_one = p[4] == "one";
    o.eta = std::stod(p[5]);
    o.clip_sample = std::stod(p[6]);
    o.threshold = std::stod(p[7]);
    o.threshold_max = 1.5;
    Tensor x = xT;
    diffusion::Run run;
    run.noise = [&](std::int64_t k, std::int64_t row, float* z) {
      const float* src = noise.data<float>() + ((k - 1) * N + row) * D;
      std::copy(src, src + D, z);
    };
    diffusion::sample(gmm, o, x, run);
    EXPECT_LT(max_abs_diff(x, nt.tensor), 1e-4) << nt.name;
    ++cases;
  }
  EXPECT_EQ(cases, 3 * 3 * 3 * 2 * 3 + 3 + 1);
}

TEST(DiffusionExact, PointMassIsReturnedExactly) {
  // A point-mass "mixture": with eta = 0 every trajectory ends on the point.
  for (auto pred : {models::Output::epsilon, models::Output::v_prediction, models::Output::sample}) {
    models::Gmm g({0.7, -1.3}, {0.0}, {1.0}, 1, 2);
    g.set_output(pred);
    diffusion::Options o;
    o.steps = 10;
    Tensor x(DType::f4, {100, 2});
    fill_normal(3, 0, x.data<float>(), x.numel());
    diffusion::sample(g, o, x);
    for (std::int64_t i = 0; i < 100; ++i) {
      EXPECT_NEAR(x.data<float>()[2 * i], 0.7, 1e-5);
      EXPECT_NEAR(x.data<float>()[2 * i + 1], -1.3, 1e-5);
    }
  }
}

TEST(DiffusionExact, MixtureStatisticsMatch) {
  // Seed 7, 40,000 samples, 100 steps: the weights within 0.015, component
  // means within 0.03 and covariances within 0.03 (about 4 standard errors
  // plus the discretisation error of 100 steps, measured to be below 0.01).
  const std::vector<double> means{-1.5, 0.0, 1.0, 1.0, 1.0, -1.5};
  const std::vector<double> stds{0.5, 0.3, 0.3, 0.2, 0.4, 0.3};
  const std::vector<double> weights{0.5, 0.3, 0.2};
  models::Gmm g(means, stds, weights, 3, 2);
  for (double eta : {0.0, 1.0}) {
    diffusion::Options o;
    o.steps = 100;
    o.eta = eta;
    const std::int64_t n = 40000;
    Tensor x(DType::f4, {n, 2});
    auto noise = diffusion::counter_noise(7, 2);
    for (std::int64_t i = 0; i < n; ++i) noise(0, i, x.data<float>() + 2 * i);
    diffusion::Run run;
    run.noise = noise;
    diffusion::sample(g, o, x, run);
    // Assign each sample to its most likely component (the components are
    // well separated), then compare the statistics of each group.
    double cnt[3] = {0, 0, 0}, m[3][2] = {}, c[3][3] = {};
    for (std::int64_t i = 0; i < n; ++i) {
      const float* p = x.data<float>() + 2 * i;
      int best = 0;
      double bl = -1e300;
      for (int k = 0; k < 3; ++k) {
        double l = std::log(weights[k]);
        for (int j = 0; j < 2; ++j) {
          const double s = stds[k * 2 + j], r = p[j] - means[k * 2 + j];
          l -= 0.5 * r * r / (s * s) + std::log(s);
        }
        if (l > bl) bl = l, best = k;
      }
      cnt[best] += 1;
      m[best][0] += p[0];
      m[best][1] += p[1];
      c[best][0] += p[0] * p[0];
      c[best][1] += p[0] * p[1];
      c[best][2] += p[1] * p[1];
    }
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(cnt[k] / n, weights[k], 0.015) << "eta " << eta << " component " << k;
      const double mx = m[k][0] / cnt[k], my = m[k][1] / cnt[k];
      EXPECT_NEAR(mx, means[k * 2], 0.03) << k;
      EXPECT_NEAR(my, means[k * 2 + 1], 0.03) << k;
      EXPECT_NEAR(c[k][0] / cnt[k] - mx * mx, stds[k * 2] * stds[k * 2], 0.03) << k;
      EXPECT_NEAR(c[k][1] / cnt[k] - mx * my, 0.0, 0.03) << k;
      EXPECT_NEAR(c[k][2] / cnt[k] - my * my, stds[k * 2 + 1] * stds[k * 2 + 1], 0.03) << k;
    }
  }
}

TEST(DiffusionDdpm, EtaOneIsTheAncestralStep) {
  // DDPMScheduler.step with variance_type fixed_small, on the same x_t, model
  // output and noise, for every step of a 20-step leading list.
  diffusion::Options o;
  o.steps = 20;
  o.eta = 1;
  for (const auto& st : diffusion::plan(o)) {
    const float x[3] = {0.3f, -1.2f, 2.0f}, eps[3] = {0.5f, 0.1f, -0.9f}, z[3] = {-0.4f, 1.3f, 0.2f};
    float got[3];
    diffusion::ddim_step(o, models::Output::epsilon, st, x, eps, z, 3, got);
    const double at = st.abar, ap = st.abar_prev, bt = 1 - at, bp = 1 - ap;
    const double cur_alpha = at / ap, cur_beta = 1 - cur_alpha;
    const double var = std::max(bp / bt * cur_beta, 1e-20);
    for (int j = 0; j < 3; ++j) {
      const double x0 = (x[j] - std::sqrt(bt) * eps[j]) / std::sqrt(at);
      const double mean = std::sqrt(ap) * cur_beta / bt * x0 + std::sqrt(cur_alpha) * bp / bt * x[j];
      EXPECT_NEAR(got[j], mean + std::sqrt(var) * z[j], 2e-5 * std::max(1.0, std::fabs(x0))) << "t " << st.t;
    }
  }
}

TEST(DiffusionInvert, ReconstructsTheData) {
  // Points of the mixture, inverted with 200 steps and sampled back: within
  // 0.05 of the data (measured: 0.025; inversion evaluates the model one step
  // early, a first-order error).
  models::Gmm g({-1.0, 0.5, 1.2, -0.3}, {0.4, 0.5}, {0.6, 0.4}, 2, 2);
  std::vector<float> data;
  for (int i = 0; i < 200; ++i) {
    float z[2];
    fill_normal(9, i, z, 2);
    const int k = i % 5 < 3 ? 0 : 1;
    const double s = k == 0 ? 0.4 : 0.5;
    data.push_back(static_cast<float>(g.means()[2 * k] + s * z[0]));
    data.push_back(static_cast<float>(g.means()[2 * k + 1] + s * z[1]));
  }
  diffusion::Options o;
  o.steps = 200;
  Tensor x = rows(data, 2);
  diffusion::invert(g, o, x);
  // The noise is standard-normal-like.
  double ss = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) ss += x.get(i) * x.get(i);
  EXPECT_NEAR(ss / x.numel(), 1.0, 0.25);
  diffusion::sample(g, o, x);
  EXPECT_LT(max_abs_diff(x, rows(data, 2)), 0.05);
}

TEST(DiffusionRows, ShardsAndThreadsAreBitExact) {
  // Rows [100, 700) of a 1000-row run with eta = 0.7, sampled alone with
  // first_row = 100, on 1 and on all threads: the same bits.
  auto g = models::default_model();
  diffusion::Options o;
  o.steps = 12;
  o.eta = 0.7;
  auto initial = [&](std::int64_t first, std::int64_t n) {
    Tensor x(DType::f4, {n, 2});
    auto noise = diffusion::counter_noise(5, 2);
    for (std::int64_t i = 0; i < n; ++i) noise(0, first + i, x.data<float>() + 2 * i);
    return x;
  };
  diffusion::Run run;
  run.noise = diffusion::counter_noise(5, 2);
  const int threads = thread_count();
  Tensor all = initial(0, 1000);
  diffusion::sample(*g, o, all, run);
  for (int th : {1, 2, 3}) {
    set_threads(th);
    Tensor part = initial(100, 600);
    run.first_row = 100;
    diffusion::sample(*g, o, part, run);
    EXPECT_EQ(0, std::memcmp(part.data<float>(), all.data<float>() + 200, 600 * 2 * sizeof(float))) << th;
  }
  set_threads(threads);
}

TEST(DiffusionGuidance, ClassAndGuidanceOnTheMixture) {
  // Class c of the gmm is component c: guidance scale 1 samples it alone.
  auto g = models::default_model();
  diffusion::Options o;
  o.steps = 30;
  Tensor x(DType::f4, {200, 2});
  fill_normal(1, 0, x.data<float>(), x.numel());
  std::vector<std::int64_t> labels(200, 2);  // the component at angle pi/2: (0, 2)
  diffusion::Run run;
  run.labels = labels.data();
  diffusion::sample(*g, o, x, run);
  for (std::int64_t i = 0; i < 200; ++i) {
    EXPECT_NEAR(x.data<float>()[2 * i], 0.0, 0.5);
    EXPECT_NEAR(x.data<float>()[2 * i + 1], 2.0, 0.5);
  }
  // With W > 1 the samples are pushed further from the other classes: still class 2.
  o.guidance = 3;
  fill_normal(1, 0, x.data<float>(), x.numel());
  diffusion::sample(*g, o, x, run);
  for (std::int64_t i = 0; i < 200; ++i) EXPECT_GT(x.data<float>()[2 * i + 1], 1.0);
}

TEST(DiffusionTrajectory, RecordsEveryStep) {
  auto g = models::default_model();
  diffusion::Options o;
  o.steps = 5;
  Tensor x(DType::f4, {3, 2});
  fill_normal(1, 0, x.data<float>(), 6);
  const Tensor x0 = x;
  Tensor traj;
  diffusion::Run run;
  run.trajectory = &traj;
  diffusion::sample(*g, o, x, run);
  ASSERT_EQ(traj.shape(), (Shape{6, 3, 2}));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(traj.data<float>()[i], x0.data<float>()[i]);
    EXPECT_EQ(traj.data<float>()[30 + i], x.data<float>()[i]);
  }
}

TEST(DiffusionThreshold, MatchesDiffusersRule) {
  double x0[4] = {0.5, -3.0, 2.0, 0.1};
  // |x0| sorted: 0.1 0.5 2 3; the 0.5-quantile is 1.25; clamp and divide.
  diffusion::dynamic_threshold(x0, 4, 0.5, 2.0);
  EXPECT_DOUBLE_EQ(x0[0], 0.5 / 1.25);
  EXPECT_DOUBLE_EQ(x0[1], -1.0);
  EXPECT_DOUBLE_EQ(x0[2], 1.0);
  double y[2] = {0.2, -0.4};  // quantile below 1: s = 1, nothing changes
  diffusion::dynamic_threshold(y, 2, 0.9, 2.0);
  EXPECT_DOUBLE_EQ(y[1], -0.4);
}

TEST(DiffusionZeroSnr, EpsilonModelsAreRefused) {
  auto g = models::default_model();
  diffusion::Options o;
  o.schedule.rescale_zero_snr = true;
  o.spacing = Spacing::trailing;
  o.steps = 10;
  Tensor x(DType::f4, {4, 2});
  EXPECT_THROW(diffusion::sample(*g, o, x), Error);
  g->set_output(models::Output::v_prediction);
  diffusion::sample(*g, o, x);
  for (std::int64_t i = 0; i < 8; ++i) EXPECT_TRUE(std::isfinite(x.data<float>()[i]));
}
