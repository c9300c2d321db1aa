// flow-sample's core: the solvers against a numpy reference, measured
// convergence orders on the single Gaussian (closed-form endpoint), dopri5,
// the mixture's exact velocity and log-likelihood, sharding, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "nnkit/formats/safetensors.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/flow.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

const std::string fixtures = std::string(NNKIT_FIXTURES) + "/flow/";
const std::string shipped = std::string(NNKIT_FIXTURES) + "/../../examples/models/";

safetensors::File read_file(const std::string& path) {
  Input in = Input::open(path);
  return safetensors::read(in);
}

const Tensor& get(const safetensors::File& f, const std::string& name) {
  for (const auto& t : f.tensors)
    if (t.name == name) return t.tensor;
  throw std::runtime_error("no tensor " + name);
}

std::vector<double> as_doubles(const Tensor& t) {
  const Tensor c = t.astype(DType::f8);
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

struct Loaded {
  safetensors::File file;
  std::unique_ptr<models::Model> model;
};

Loaded load(const std::string& path) {
  Loaded l{read_file(path), nullptr};
  l.model = models::from_tensors(l.file.tensors, l.file.metadata, path);
  return l;
}

std::unique_ptr<models::Gmm> gmm3() {
  return std::make_unique<models::Gmm>(std::vector<double>{-1, 0.5, 1.2, -0.3, 0, 1.5},
                                       std::vector<double>{0.3, 0.4, 0.25}, std::vector<double>{0.5, 0.3, 0.2}, 3, 2);
}

Tensor noise(std::int64_t n, std::int64_t d, std::uint64_t seed = 0) {
  Tensor x(DType::f4, {n, d});
  auto z = diffusion::counter_noise(seed, d);
  for (std::int64_t i = 0; i < n; ++i) z(0, i, x.data<float>() + d * i);
  return x;
}

double max_diff(const Tensor& a, const std::vector<double>& b) {
  const Tensor c = a.astype(DType::f8);
  double worst = 0;
  for (std::int64_t i = 0; i < c.numel(); ++i) worst = std::max(worst, std::fabs(c.data<double>()[i] - b[i]));
  return worst;
}

const flow::Solver kFixed[] = {flow::Solver::euler, flow::Solver::midpoint, flow::Solver::heun, flow::Solver::rk4};

}  // namespace

TEST(FlowGrid, ShiftFormulaAndGrid) {
  EXPECT_DOUBLE_EQ(flow::shift_time(0.5, 3), 0.75);
  EXPECT_DOUBLE_EQ(flow::shift_time(0.2, 1), 0.2);
  EXPECT_DOUBLE_EQ(flow::shift_time(1, 7), 1);
  EXPECT_DOUBLE_EQ(flow::shift_time(0, 7), 0);
  EXPECT_NEAR(flow::shift_time(0.25, 0.5), 0.5 * 0.25 / (1 - 0.5 * 0.25), 1e-15);
  const auto g = flow::time_grid(4, 1);
  ASSERT_EQ(g.size(), 5u);
  for (int i = 0; i <= 4; ++i) EXPECT_DOUBLE_EQ(g[i], 1 - i / 4.0);
  const auto s = flow::time_grid(10, 3);
  EXPECT_EQ(s.front(), 1);
  EXPECT_EQ(s.back(), 0);
  for (std::size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i], s[i - 1]);
  EXPECT_NEAR(s[5], 0.75, 1e-15);  // t = 0.5 shifted by 3
  const auto r = flow::time_grid(10, 3, true);
  for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], s[s.size() - 1 - i]);
  EXPECT_THROW(flow::time_grid(0, 1), Error);
  EXPECT_THROW(flow::time_grid(3, 0), Error);
  EXPECT_THROW(flow::time_grid(3, -1), Error);
}

TEST(FlowSolvers, MatchNumpyReferenceGmm) {
  const auto ref = read_file(fixtures + "solvers_gmm.safetensors");
  models::Gmm g(as_doubles(get(ref, "means")), as_doubles(get(ref, "stds")), as_doubles(get(ref, "weights")), 3, 2);
  flow::Field field(g, "gmm3");
  for (flow::Solver s : kFixed)
    for (int shift : {1, 3}) {
      Tensor x = get(ref, "x1").astype(DType::f4);
      flow::Options o;
      o.solver = s;
      o.steps = 5;
      o.shift = shift;
      const auto st = flow::sample(field, o, x);
      const std::string key = std::string(flow::solver_name(s)) + "_s5_shift" + std::to_string(shift);
      EXPECT_LT(max_diff(x, as_doubles(get(ref, key))), 2e-6) << key;
      EXPECT_EQ(st.evaluations, 5 * flow::evaluations_per_step(s));
      EXPECT_EQ(st.steps, 5);
    }
}

TEST(FlowSolvers, MatchNumpyReferenceRectifiedFlowMlp) {
  const auto ref = read_file(fixtures + "solvers_rf.safetensors");
  auto m = load(shipped + "rf_moons.safetensors");
  flow::Field field(*m.model, "rf_moons");
  for (flow::Solver s : kFixed) {
    Tensor x = get(ref, "x1").astype(DType::f4);
    flow::Options o;
    o.solver = s;
    o.steps = 4;
    flow::sample(field, o, x);
    EXPECT_LT(max_diff(x, as_doubles(get(ref, std::string(flow::solver_name(s)) + "_s4"))), 1e-5)
        << flow::solver_name(s);
  }
}

TEST(FlowMlp, VelocityMatchesPytorch) {
  auto m = load(shipped + "rf_moons.safetensors");
  flow::Field field(*m.model, "rf_moons");
  const auto ref = read_file(fixtures + "ref_rf_moons.safetensors");
  const Tensor& x = get(ref, "x");
  const Tensor& t = get(ref, "t");
  const Tensor& want = get(ref, "out");
  const std::int64_t G = x.dim(0), R = x.dim(1);
  std::vector<float> got(static_cast<std::size_t>(R * 2));
  double worst = 0;
  for (std::int64_t g = 0; g < G; ++g) {
    field.velocity(x.data<float>() + g * R * 2, R, t.data<float>()[g], got.data());
    for (std::int64_t i = 0; i < R * 2; ++i) {
      const double w = want.data<float>()[g * R * 2 + i];
      worst = std::max(worst, std::fabs(got[i] - w) / std::max(1.0, std::fabs(w)));
    }
  }
  EXPECT_LT(worst, 1e-5);
}

// A single Gaussian N(mu, diag(s^2)): the flow map is affine and its endpoint
// from x_1 is x_0 = mu + s x_1 exactly. The grid is shifted (3) so that the
// steps are not uniform. Measured: Euler 0.97, midpoint 3.0 (superconvergent:
// on this linear field the h^2 error terms cancel; it is 2 on the mixture
// below), Heun 2.0, RK4 4.05.
TEST(FlowConvergence, MeasuredOrdersOnSingleGaussian) {
  models::Gmm g({0.5, -1.0}, {1.5, 2.0}, {1.0}, 1, 2);
  flow::Field field(g, "gaussian");
  const Tensor x1 = noise(64, 2, 3);
  std::vector<double> exact(128);
  for (int i = 0; i < 64; ++i) {
    exact[2 * i] = 0.5 + 1.5 * x1.data<float>()[2 * i];
    exact[2 * i + 1] = -1.0 + 2.0 * x1.data<float>()[2 * i + 1];
  }
  struct Case {
    flow::Solver s;
    double lo, hi;
    std::int64_t steps;
  };
  for (const Case c : {Case{flow::Solver::euler, 0.9, 1.1, 16}, Case{flow::Solver::midpoint, 1.9, 3.1, 16},
                       Case{flow::Solver::heun, 1.85, 2.15, 16}, Case{flow::Solver::rk4, 3.8, 4.3, 4}}) {
    double err[3];
    for (int k = 0; k < 3; ++k) {
      Tensor x = x1.astype(DType::f4);
      flow::Options o;
      o.solver = c.s;
      o.steps = c.steps << k;
      o.shift = 3;
      flow::sample(field, o, x);
      err[k] = max_diff(x, exact);
    }
    const double p1 = std::log2(err[0] / err[1]), p2 = std::log2(err[1] / err[2]);
    std::printf("[ order    ] %-8s steps %lld/%lld/%lld: errors %.3g %.3g %.3g, measured order %.2f %.2f\n",
                flow::solver_name(c.s), static_cast<long long>(c.steps), static_cast<long long>(c.steps * 2),
                static_cast<long long>(c.steps * 4), err[0], err[1], err[2], p1, p2);
    EXPECT_GE(p2, c.lo) << flow::solver_name(c.s);
    EXPECT_LE(p2, c.hi) << flow::solver_name(c.s);
  }
}

// On the 3-component mixture (a non-linear field) against RK4 with 2000
// steps: Euler 1, midpoint and Heun 2, RK4 4.
TEST(FlowConvergence, MeasuredOrdersOnMixture) {
  models::Gmm g({-1, 0.5, 1.2, -0.3, 0, 1.5}, {0.8, 0.9, 0.7}, {0.5, 0.3, 0.2}, 3, 2);
  flow::Field field(g, "gmm3 wide");
  const Tensor x1 = noise(64, 2, 8);
  const std::int64_t n = 64, d = 2;
  auto solve = [&](flow::Solver s, std::int64_t steps) {
    std::vector<double> y(x1.data<float>(), x1.data<float>() + n * d);
    flow::Options o;
    o.solver = s;
    o.steps = steps;
    const flow::Rhs rhs = [&](double t, const double* in, double* out) {
      std::vector<double> x0(2), eps(2);
      // The exact posterior velocity, widened (no float rounding of the output).
      for (std::int64_t i = 0; i < n; ++i) {
        const float row[2] = {static_cast<float>(in[2 * i]), static_cast<float>(in[2 * i + 1])};
        g.posterior(row, field.model_time(t), -1, x0.data(), eps.data());
        for (int j = 0; j < 2; ++j) out[2 * i + j] = eps[j] - x0[j];
      }
    };
    flow::integrate(o, flow::time_grid(steps, 1), n, d, y, rhs);
    return y;
  };
  const std::vector<double> ref = solve(flow::Solver::rk4, 2000);
  auto err = [&](const std::vector<double>& y) {
    double w = 0;
    for (std::size_t i = 0; i < y.size(); ++i) w = std::max(w, std::fabs(y[i] - ref[i]));
    return w;
  };
  struct Case {
    flow::Solver s;
    double order;
    std::int64_t steps;
  };
  for (const Case c : {Case{flow::Solver::euler, 1, 32}, Case{flow::Solver::midpoint, 2, 16},
                       Case{flow::Solver::heun, 2, 16}, Case{flow::Solver::rk4, 4, 8}}) {
    const double e0 = err(solve(c.s, c.steps)), e1 = err(solve(c.s, 2 * c.steps)), e2 = err(solve(c.s, 4 * c.steps));
    const double p = std::log2(e1 / e2);
    std::printf("[ order    ] mixture %-8s steps %lld/%lld/%lld: errors %.3g %.3g %.3g, measured order %.2f %.2f\n",
                flow::solver_name(c.s), static_cast<long long>(c.steps), static_cast<long long>(2 * c.steps),
                static_cast<long long>(4 * c.steps), e0, e1, e2, std::log2(e0 / e1), p);
    EXPECT_NEAR(p, c.order, 0.3) << flow::solver_name(c.s);
  }
}

TEST(FlowDopri5, WithinToleranceAndCounted) {
  models::Gmm g({0.5, -1.0}, {0.3, 2.0}, {1.0}, 1, 2);
  flow::Field field(g, "gaussian");
  const Tensor x1 = noise(64, 2, 3);
  for (double tol : {1e-3, 1e-5}) {
    Tensor x = x1.astype(DType::f4);
    flow::Options o;
    o.solver = flow::Solver::dopri5;
    o.rtol = o.atol = tol;
    const auto st = flow::sample(field, o, x);
    double worst = 0;
    for (int i = 0; i < 64; ++i) {
      worst = std::max(worst, std::fabs(x.data<float>()[2 * i] - (0.5 + 0.3 * x1.data<float>()[2 * i])));
      worst = std::max(worst, std::fabs(x.data<float>()[2 * i + 1] - (-1.0 + 2.0 * x1.data<float>()[2 * i + 1])));
    }
    EXPECT_LT(worst, 10 * tol) << tol;
    EXPECT_GT(st.steps, 0);
    EXPECT_EQ(st.evaluations, 1 + 6 * (st.steps + st.rejected));
  }
}

TEST(FlowDopri5, StepUnderflowIsAClearError) {
  flow::Options o;
  o.solver = flow::Solver::dopri5;
  std::vector<double> y{1.0};
  // dy/dt = 1/t blows up at t = 0: the step must shrink until it underflows.
  try {
    flow::integrate(o, {1.0, -1.0}, 1, 1, y, [](double t, const double*, double* dy) { dy[0] = 1 / t; });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
    EXPECT_NE(std::string(e.what()).find("underflow"), std::string::npos) << e.what();
  }
  std::vector<double> z{1.0};
  EXPECT_THROW(flow::integrate(o, {1.0, 0.0}, 1, 1, z,
                               [](double, const double*, double* dy) { dy[0] = std::nan(""); }),
               Error);
}

TEST(FlowGmm, VelocityIsMonteCarloConditionalExpectation) {
  auto g = gmm3();
  flow::Field field(*g, "gmm3");
  std::mt19937_64 rng(11);
  std::normal_distribution<double> nd;
  std::discrete_distribution<int> comp({0.5, 0.3, 0.2});
  const double stds[3] = {0.3, 0.4, 0.25};
  for (double t : {0.2, 0.5, 0.8}) {
    const float x[2] = {0.3f, 0.4f};
    float v[2];
    field.velocity(x, 1, t, v);
    // E[eps - x0 | x_t = x] by importance sampling over x0 from the mixture:
    // the weight of x0 is the density of x_t = x given x0, N((1-t) x0, t^2).
    double sw = 0, s0 = 0, s1 = 0;
    for (int i = 0; i < 400000; ++i) {
      const int k = comp(rng);
      const double a0 = g->means()[2 * k] + stds[k] * nd(rng), a1 = g->means()[2 * k + 1] + stds[k] * nd(rng);
      const double e0 = (x[0] - (1 - t) * a0) / t, e1 = (x[1] - (1 - t) * a1) / t;
      const double w = std::exp(-0.5 * (e0 * e0 + e1 * e1));
      sw += w;
      s0 += w * (e0 - a0);
      s1 += w * (e1 - a1);
    }
    EXPECT_NEAR(v[0], s0 / sw, 0.02) << t;
    EXPECT_NEAR(v[1], s1 / sw, 0.02) << t;
  }
}

// 20,000 samples (rk4, 50 steps, seed 0) of the 3-component mixture: each
// sample is assigned to the component of largest responsibility; weights
// within 0.015, means within 0.03, per-coordinate standard deviations within
// 0.03 of the mixture's.
TEST(FlowGmm, ManyStepSamplesMatchTheMixture) {
  auto g = gmm3();
  flow::Field field(*g, "gmm3");
  const std::int64_t n = 20000;
  Tensor x = noise(n, 2);
  flow::Options o;
  o.solver = flow::Solver::rk4;
  o.steps = 50;
  flow::sample(field, o, x);
  const double stds[3] = {0.3, 0.4, 0.25};
  double cnt[3] = {0, 0, 0}, m[3][2] = {}, m2[3][2] = {};
  for (std::int64_t i = 0; i < n; ++i) {
    const float* p = x.data<float>() + 2 * i;
    int best = 0;
    double bl = -1e300;
    for (int k = 0; k < 3; ++k) {
      double l = std::log(g->weights()[k]) - 2 * std::log(stds[k]);
      for (int j = 0; j < 2; ++j) l -= 0.5 * std::pow((p[j] - g->means()[2 * k + j]) / stds[k], 2);
      if (l > bl) bl = l, best = k;
    }
    cnt[best] += 1;
    for (int j = 0; j < 2; ++j) m[best][j] += p[j], m2[best][j] += p[j] * p[j];
  }
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(cnt[k] / n, g->weights()[k], 0.015) << k;
    for (int j = 0; j < 2; ++j) {
      const double mean = m[k][j] / cnt[k], sd = std::sqrt(m2[k][j] / cnt[k] - mean * mean);
      EXPECT_NEAR(mean, g->means()[2 * k + j], 0.03) << k << "," << j;
      EXPECT_NEAR(sd, stds[k], 0.03) << k << "," << j;
    }
  }
}

TEST(FlowReverse, EncodeThenDecodeRoundTrips) {
  auto g = gmm3();
  flow::Field field(*g, "gmm3");
  const Tensor x1 = noise(300, 2, 5);
  Tensor x = x1.astype(DType::f4);
  flow::Options o;
  o.solver = flow::Solver::rk4;
  o.steps = 100;
  flow::sample(field, o, x);
  flow::sample(field, o, x, true);
  std::vector<double> want = as_doubles(x1);
  EXPECT_LT(max_diff(x, want), 2e-3);
}

// log p(x) by the ODE with the closed-form divergence equals the mixture's
// exact log-density within 2e-3 (rk4, 200 steps) and dopri5 at 1e-7.
TEST(FlowLogProb, GmmEqualsExactLogDensity) {
  auto g = gmm3();
  flow::Field field(*g, "gmm3");
  auto div = flow::divergence(field, {});
  Tensor x = noise(200, 2, 9);
  {
    flow::Options o;
    o.solver = flow::Solver::rk4;
    o.steps = 400;
    Tensor data = x.astype(DType::f4);
    flow::sample(field, o, data);  // points where the density is not tiny
    x = data;
  }
  for (flow::Solver s : {flow::Solver::rk4, flow::Solver::dopri5}) {
    flow::Options o;
    o.solver = s;
    o.steps = 200;
    o.rtol = o.atol = 1e-7;
    flow::Stats st;
    const auto lp = flow::log_prob(field, *div, o, x, &st);
    double worst = 0;
    for (std::int64_t i = 0; i < 200; ++i) {
      const double p[2] = {x.data<float>()[2 * i], x.data<float>()[2 * i + 1]};
      worst = std::max(worst, std::fabs(lp[i] - g->log_density(p)));
    }
    EXPECT_LT(worst, 2e-3) << flow::solver_name(s);
    EXPECT_GT(st.evaluations, 0);
  }
}

TEST(FlowLogProb, MlpExactDivergenceMatchesFiniteDifferences) {
  auto m = load(shipped + "rf_moons.safetensors");
  flow::Field field(*m.model, "rf_moons");
  auto div = flow::divergence(field, m.file.tensors);
  auto hut = flow::divergence(field, m.file.tensors, 256, 3);
  const Tensor x = noise(40, 2, 4);
  for (double t : {0.1, 0.5, 0.9}) {
    std::vector<float> v(80), vh(80), v0(80);
    std::vector<double> d(40), dh(40);
    (*div)(x.data<float>(), 40, t, v.data(), d.data(), 0);
    (*hut)(x.data<float>(), 40, t, vh.data(), dh.data(), 0);
    field.velocity(x.data<float>(), 40, t, v0.data());
    for (int i = 0; i < 80; ++i) EXPECT_NEAR(v[i], v0[i], 1e-5);
    // Central differences, one batch per coordinate and sign.
    const double h = 1e-2;
    std::vector<double> fdiv(40, 0.0);
    for (int j = 0; j < 2; ++j) {
      std::vector<float> xp(x.data<float>(), x.data<float>() + 80), xm = xp, vp(80), vm(80);
      for (int i = 0; i < 40; ++i) xp[2 * i + j] += static_cast<float>(h), xm[2 * i + j] -= static_cast<float>(h);
      field.velocity(xp.data(), 40, t, vp.data());
      field.velocity(xm.data(), 40, t, vm.data());
      for (int i = 0; i < 40; ++i) fdiv[i] += (vp[2 * i + j] - vm[2 * i + j]) / (xp[2 * i + j] - xm[2 * i + j]);
    }
    for (int i = 0; i < 40; ++i) {
      const double fd = fdiv[i];
      EXPECT_NEAR(d[i], fd, 0.02 * std::max(1.0, std::fabs(fd))) << i << " t " << t;
      EXPECT_NEAR(dh[i], d[i], 0.25 * std::max(1.0, std::fabs(d[i]))) << i << " t " << t;
    }
  }
}

TEST(FlowShard, RowsBitExactWhateverThreadsAndOffsets) {
  auto m = load(shipped + "rf_moons.safetensors");
  flow::Field field(*m.model, "rf_moons");
  const std::int64_t n = 1000;
  flow::Options o;
  o.solver = flow::Solver::heun;
  o.steps = 6;
  const int saved = thread_count();
  set_threads(1);
  Tensor whole = noise(n, 2);
  flow::sample(field, o, whole);
  set_threads(4);
  for (auto [b, e] : {std::pair<std::int64_t, std::int64_t>{0, 333}, {333, 666}, {666, 1000}, {255, 513}}) {
    Tensor part(DType::f4, {e - b, 2});
    const Tensor x1 = noise(n, 2);
    std::copy(x1.data<float>() + 2 * b, x1.data<float>() + 2 * e, part.data<float>());
    flow::Run run;
    run.first_row = b;
    flow::sample(field, o, part, false, run);
    EXPECT_EQ(0, std::memcmp(part.data<float>(), whole.data<float>() + 2 * b, static_cast<std::size_t>(8 * (e - b))))
        << b << ".." << e;
  }
  // log-prob too.
  auto div = flow::divergence(field, m.file.tensors);
  const Tensor data = noise(600, 2, 2);
  const auto lp = flow::log_prob(field, *div, o, data);
  set_threads(1);
  Tensor tail(DType::f4, {300, 2});
  std::copy(data.data<float>() + 600, data.data<float>() + 1200, tail.data<float>());
  flow::Run run;
  run.first_row = 300;
  const auto lp2 = flow::log_prob(field, *div, o, tail, nullptr, run);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(lp[300 + i], lp2[i]) << i;
  set_threads(saved);
}

TEST(FlowField, ReversedTimeConventionNegatesAndFlipsTime) {
  auto m = load(shipped + "rf_moons.safetensors");
  auto meta = m.file.metadata;
  meta["time_convention"] = "reversed";
  auto r = models::from_tensors(m.file.tensors, meta, "reversed");
  flow::Field plain(*m.model, "plain"), rev(*r, "reversed");
  EXPECT_TRUE(rev.reversed());
  const Tensor x = noise(10, 2);
  std::vector<float> a(20), b(20);
  plain.velocity(x.data<float>(), 10, 0.3, a.data());
  rev.velocity(x.data<float>(), 10, 0.7, b.data());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a[i], -b[i]);
  meta["time_convention"] = "backwards";
  auto bad = models::from_tensors(m.file.tensors, meta, "bad");
  EXPECT_THROW(flow::Field(*bad, "bad"), Error);
}

TEST(FlowBadInput, Refusals) {
  // A diffusion (epsilon) model is not a velocity field.
  auto eps = load(shipped + "moons.safetensors");
  try {
    flow::Field f(*eps.model, "moons");
    ADD_FAILURE() << "accepted an epsilon model";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
    EXPECT_NE(std::string(e.what()).find("velocity"), std::string::npos) << e.what();
  }
  flow::Options o;
  o.steps = 0;
  EXPECT_THROW(flow::validate(o), Error);
  o.steps = 3;
  o.shift = 0;
  EXPECT_THROW(flow::validate(o), Error);
  o.shift = 1;
  o.solver = flow::Solver::dopri5;
  o.rtol = -1;
  EXPECT_THROW(flow::validate(o), Error);
  o.rtol = 0;
  o.atol = 0;
  EXPECT_THROW(flow::validate(o), Error);
  EXPECT_FALSE(flow::parse_solver("rk45"));
  // The exact divergence is refused above kMaxExactDim without probes.
  const std::int64_t D = flow::kMaxExactDim + 1;
  std::vector<NamedTensor> ts;
  auto zeros = [](Shape s) {
    Tensor t(DType::f4, s);
    std::fill(t.data<float>(), t.data<float>() + t.numel(), 0.f);
    return t;
  };
  ts.push_back({"input.weight", zeros({8, D + 4})});
  ts.push_back({"input.bias", zeros({8})});
  ts.push_back({"output.weight", zeros({D, 8})});
  ts.push_back({"output.bias", zeros({D})});
  auto big = models::from_tensors(ts,
                                  {{"kind", "mlp"}, {"dim", std::to_string(D)}, {"hidden", "8"}, {"depth", "0"},
                                   {"time_dim", "4"}, {"prediction", "velocity"}},
                                  "big");
  flow::Field bf(*big, "big");
  try {
    flow::divergence(bf, ts);
    ADD_FAILURE() << "exact divergence accepted at D = " << D;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("--hutchinson"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(flow::divergence(bf, ts, 4));
}

// The coupling flows shipped in examples/models against PyTorch's committed
// forward, log-determinant, log-likelihood and inverse (1e-5), and
// f^-1(f(x)) = x (1e-5).
TEST(FlowCoupling, MatchesPytorchAndInverts) {
  for (const std::string kind : {"nice", "realnvp"}) {
    auto m = load(shipped + kind + "_moons.safetensors");
    const auto* c = dynamic_cast<const flow::Coupling*>(m.model.get());
    ASSERT_NE(c, nullptr) << kind;
    EXPECT_EQ(models::kind_name(c->kind()), kind);
    const auto ref = read_file(fixtures + "ref_" + kind + ".safetensors");
    const Tensor& x = get(ref, "x");
    const std::int64_t n = x.dim(0);
    std::vector<float> z(static_cast<std::size_t>(2 * n)), back(z.size()), xi(z.size());
    std::vector<double> ld(static_cast<std::size_t>(n)), lp(ld.size());
    c->forward(x.data<float>(), n, z.data(), ld.data());
    c->log_prob(x.data<float>(), n, lp.data());
    c->inverse(z.data(), n, back.data());
    c->inverse(get(ref, "z_in").data<float>(), n, xi.data());
    const auto wz = as_doubles(get(ref, "z")), wld = as_doubles(get(ref, "logdet")),
               wlp = as_doubles(get(ref, "log_prob")), wxi = as_doubles(get(ref, "x_inv"));
    double ez = 0, eld = 0, elp = 0, eb = 0, exi = 0;
    for (std::int64_t i = 0; i < 2 * n; ++i) {
      ez = std::max(ez, std::fabs(z[i] - wz[i]) / std::max(1.0, std::fabs(wz[i])));
      eb = std::max(eb, std::fabs(static_cast<double>(back[i]) - x.data<float>()[i]));
      exi = std::max(exi, std::fabs(xi[i] - wxi[i]) / std::max(1.0, std::fabs(wxi[i])));
    }
    for (std::int64_t i = 0; i < n; ++i) {
      eld = std::max(eld, std::fabs(ld[i] - wld[i]) / std::max(1.0, std::fabs(wld[i])));
      elp = std::max(elp, std::fabs(lp[i] - wlp[i]) / std::max(1.0, std::fabs(wlp[i])));
    }
    EXPECT_LT(ez, 1e-5) << kind;
    EXPECT_LT(eld, 1e-5) << kind;
    EXPECT_LT(elp, 1e-5) << kind;
    EXPECT_LT(exi, 1e-5) << kind;
    EXPECT_LT(eb, 1e-5) << kind;
    EXPECT_THROW(c->predict(x.data<float>(), 1, {}, nullptr, z.data()), Error);
  }
}

TEST(FlowCoupling, BadFilesAreDataErrors) {
  auto m = load(shipped + "nice_moons.safetensors");
  auto expect_bad = [&](std::vector<NamedTensor> ts, std::map<std::string, std::string> meta, const std::string& words) {
    try {
      models::from_tensors(ts, meta, "c.safetensors");
      ADD_FAILURE() << "accepted; want " << words;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  auto ts = m.file.tensors;
  auto meta = m.file.metadata;
  auto no_mask = ts;
  no_mask.erase(std::remove_if(no_mask.begin(), no_mask.end(), [](const NamedTensor& t) { return t.name == "layers.1.mask"; }),
                no_mask.end());
  expect_bad(no_mask, meta, "layers.1.mask");
  auto bad_mask = ts;
  for (auto& t : bad_mask)
    if (t.name == "layers.0.mask") {
      t.tensor = t.tensor.astype(DType::f4);
      t.tensor.data<float>()[0] = 0.5f;
    }
  expect_bad(bad_mask, meta, "mask");
  auto m2 = meta;
  m2["layers"] = "7";
  expect_bad(ts, m2, "layers.6");
  m2 = meta;
  m2["prior"] = "cauchy";
  expect_bad(ts, m2, "prior");
  m2 = meta;
  m2["hidden"] = "32";
  expect_bad(ts, m2, "weight");
  m2 = meta;
  m2.erase("dim");
  expect_bad(ts, m2, "dim");
}
