// The model runtime: the MLP against PyTorch's committed outputs, the
// Gaussian mixture's closed forms, and refusals of inconsistent model files.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "nnkit/formats/safetensors.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/models.hpp"

using namespace nnkit;

namespace {

const std::string fixtures = NNKIT_FIXTURES;
const std::string shipped = std::string(NNKIT_FIXTURES) + "/../../examples/models/";

safetensors::File read_file(const std::string& path) {
  Input in = Input::open(path);
  return safetensors::read(in);
}

std::unique_ptr<models::Model> load(const std::string& path) {
  auto f = read_file(path);
  return models::from_tensors(f.tensors, f.metadata, path);
}

const Tensor& get(const safetensors::File& f, const std::string& name) {
  for (const auto& t : f.tensors)
    if (t.name == name) return t.tensor;
  throw std::runtime_error("no tensor " + name);
}

// The model's outputs for the reference inputs x [G, R, 2] at times t [G]
// with labels [G, R] equal PyTorch's to 1e-5.
void expect_matches_pytorch(const std::string& model_path, const std::string& ref_path) {
  auto model = load(model_path);
  const auto ref = read_file(ref_path);
  const Tensor& x = get(ref, "x");
  const Tensor& t = get(ref, "t");
  const Tensor& labels = get(ref, "labels");
  const Tensor& want = get(ref, "out");
  const std::int64_t G = x.dim(0), R = x.dim(1), D = x.dim(2);
  ASSERT_EQ(D, model->dim());
  std::vector<float> got(static_cast<std::size_t>(R * D));
  double worst = 0;
  for (std::int64_t g = 0; g < G; ++g) {
    models::Time time{t.data<float>()[g], 0, 0};
    const std::int64_t* lab = model->num_classes() ? labels.data<std::int64_t>() + g * R : nullptr;
    model->predict(x.data<float>() + g * R * D, R, time, lab, got.data());
    for (std::int64_t i = 0; i < R * D; ++i) {
      const double w = want.data<float>()[g * R * D + i];
      worst = std::max(worst, std::fabs(got[i] - w) / std::max(1.0, std::fabs(w)));
    }
  }
  EXPECT_LT(worst, 1e-5) << model_path;
}

std::vector<NamedTensor> gmm_tensors(Shape means, Shape stds, Shape weights) {
  std::vector<NamedTensor> ts;
  ts.push_back({"means", Tensor(DType::f4, means)});
  ts.push_back({"stds", Tensor(DType::f4, stds)});
  Tensor w(DType::f4, weights);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = 1;
  ts.push_back({"weights", w});
  return ts;
}

void expect_data_error(const std::vector<NamedTensor>& ts, const std::map<std::string, std::string>& meta,
                       const std::string& words) {
  try {
    models::from_tensors(ts, meta, "m.safetensors");
    ADD_FAILURE() << "accepted; want a data error mentioning " << words;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(ModelsMlp, MatchesPyTorchOnShippedModels) {
  for (const char* name : {"moons", "rings", "classes"})
    expect_matches_pytorch(shipped + name + ".safetensors", fixtures + "/diffusion/ref_" + name + ".safetensors");
}

TEST(ModelsMlp, MatchesPyTorchOnArchitectureVariants) {
  // SiLU without residual blocks or input embedding, with classes; ReLU with
  // residual blocks and an input embedding.
  for (const char* name : {"silu_plain", "relu_res"})
    expect_matches_pytorch(fixtures + "/diffusion/" + name + ".safetensors",
                           fixtures + "/diffusion/ref_" + name + ".safetensors");
}

TEST(ModelsMlp, DeclaresItsArchitecture) {
  auto m = load(shipped + "classes.safetensors");
  EXPECT_EQ(m->kind(), models::Kind::mlp);
  EXPECT_EQ(m->num_classes(), 4);
  EXPECT_EQ(m->output(), models::Output::epsilon);
  EXPECT_EQ(load(shipped + "rings.safetensors")->output(), models::Output::v_prediction);
}

TEST(ModelsMlp, RowsDoNotDependOnTheirBatch) {
  // The same row alone, in a short batch or in a long one, given its global
  // index: bit-identical.
  auto m = load(shipped + "moons.safetensors");
  std::vector<float> x(2 * 600);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.37 * i) * 2);
  std::vector<float> all(x.size()), one(2), part(2 * 37);
  const models::Time time{420, 0, 0};
  m->predict(x.data(), 600, time, nullptr, all.data());
  for (std::int64_t i : {0, 1, 255, 256, 300, 599}) {
    m->predict(x.data() + 2 * i, 1, time, nullptr, one.data(), i);
    EXPECT_EQ(one[0], all[2 * i]);
    EXPECT_EQ(one[1], all[2 * i + 1]);
  }
  m->predict(x.data() + 2 * 250, 37, time, nullptr, part.data(), 250);
  for (std::int64_t i = 0; i < 37 * 2; ++i) EXPECT_EQ(part[i], all[2 * 250 + i]);
}

TEST(ModelsGmm, SingleGaussianPosteriorIsClosedForm) {
  // One Gaussian N(m, c^2): E[x0 | x_t] = m + a c^2 (x - a m) / (a^2 c^2 + s^2).
  models::Gmm g({0.5, -1.0}, {0.7, 0.2}, {1.0}, 1, 2);
  const float x[2] = {0.3f, 0.9f};
  const models::Time time{0, 0.8, 0.6};
  double x0[2], eps[2];
  g.posterior(x, time, -1, x0, eps);
  const double m[2] = {0.5, -1.0}, c[2] = {0.7, 0.2};
  for (int j = 0; j < 2; ++j) {
    const double var = 0.64 * c[j] * c[j] + 0.36;
    EXPECT_NEAR(x0[j], m[j] + 0.8 * c[j] * c[j] * (x[j] - 0.8 * m[j]) / var, 1e-12);
    // x_t = a x0 + s eps holds for the posterior means too.
    EXPECT_NEAR(0.8 * x0[j] + 0.6 * eps[j], x[j], 1e-6);
  }
}

TEST(ModelsGmm, OutputsAreConsistent) {
  auto m = models::default_model();
  const float x[4] = {1.1f, 0.2f, -0.4f, 1.7f};
  const models::Time time{0, 0.6, 0.8};
  float eps[4], x0[4], v[4], vel[4], score[4];
  auto run = [&](models::Output o, float* out) {
    m->set_output(o);
    m->predict(x, 2, time, nullptr, out);
  };
  run(models::Output::epsilon, eps);
  run(models::Output::sample, x0);
  run(models::Output::v_prediction, v);
  run(models::Output::velocity, vel);
  run(models::Output::score, score);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(0.6 * x0[i] + 0.8 * eps[i], x[i], 1e-6);
    EXPECT_NEAR(v[i], 0.6 * eps[i] - 0.8 * x0[i], 1e-6);
    EXPECT_NEAR(vel[i], eps[i] - x0[i], 1e-6);
    EXPECT_NEAR(score[i], -eps[i] / 0.8, 1e-6);
  }
}

TEST(ModelsGmm, MonteCarloMatchesTheClosedForm) {
  // E[eps | x_t near x*] estimated from joint draws (x0, eps): a fixed seed
  // and 4 standard errors of tolerance.
  models::Gmm g({-1.0, 0.0, 1.5, 0.5}, {0.4, 0.3}, {0.6, 0.4}, 2, 2);
  const double a = 0.7, s = std::sqrt(1 - 0.49);
  const float target[2] = {0.2f, 0.3f};
  std::mt19937_64 rng(11);
  std::normal_distribution<double> z;
  std::uniform_real_distribution<double> u;
  double sum[2] = {0, 0}, sum2[2] = {0, 0}, wsum = 0;
  for (int i = 0; i < 2000000; ++i) {
    const int k = u(rng) < 0.6 ? 0 : 1;
    const double sd = k == 0 ? 0.4 : 0.3;
    double xt[2], e[2];
    for (int j = 0; j < 2; ++j) {
      e[j] = z(rng);
      xt[j] = a * (g.means()[k * 2 + j] + sd * z(rng)) + s * e[j];
    }
    // A narrow Gaussian kernel around the target point.
    const double h = 0.05;
    const double w = std::exp(-((xt[0] - target[0]) * (xt[0] - target[0]) + (xt[1] - target[1]) * (xt[1] - target[1])) /
                              (2 * h * h));
    if (w < 1e-6) continue;
    wsum += w;
    for (int j = 0; j < 2; ++j) {
      sum[j] += w * e[j];
      sum2[j] += w * e[j] * e[j];
    }
  }
  double x0[2], eps[2];
  g.posterior(target, {0, a, s}, -1, x0, eps);
  for (int j = 0; j < 2; ++j) {
    const double mean = sum[j] / wsum, var = sum2[j] / wsum - mean * mean;
    // Kernel smoothing biases by O(h^2); a tolerance of 0.03 covers it and
    // the sampling error.
    EXPECT_NEAR(mean, eps[j], 0.03 + 4 * std::sqrt(var / (wsum / 3))) << j;
  }
}

TEST(ModelsGmm, DefaultModelIsTheDocumentedMixture) {
  auto m = models::default_model();
  auto* g = dynamic_cast<models::Gmm*>(m.get());
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->components(), 8);
  EXPECT_EQ(m->dim(), 2);
  EXPECT_NEAR(g->means()[0], 2.0, 1e-12);
  EXPECT_NEAR(g->stddev(3, 1), 0.1, 1e-12);
}

TEST(ModelsLoad, GmmFromTensors) {
  auto ts = gmm_tensors({3, 2}, {3}, {3});
  auto m = models::from_tensors(ts, {{"kind", "gmm"}, {"prediction", "v_prediction"}}, "m");
  EXPECT_EQ(m->kind(), models::Kind::gmm);
  EXPECT_EQ(m->output(), models::Output::v_prediction);
  EXPECT_EQ(m->num_classes(), 3);
  auto img = models::from_tensors(gmm_tensors({1, 12}, {1, 12}, {1}), {{"kind", "gmm"}, {"sample_shape", "2,2,3"}}, "m");
  EXPECT_EQ(img->sample_shape(), (Shape{2, 2, 3}));
}

TEST(ModelsLoad, BadModelsAreDataErrorsNamingTheTensor) {
  const std::map<std::string, std::string> gmm{{"kind", "gmm"}};
  auto ts = gmm_tensors({3, 2}, {3}, {3});
  expect_data_error(ts, {}, "kind");
  expect_data_error(ts, {{"kind", "unet"}}, "unet");
  expect_data_error(ts, {{"kind", "nice"}}, "flow-sample");
  expect_data_error({ts[0], ts[1]}, gmm, "'weights'");
  expect_data_error(gmm_tensors({3, 2}, {4}, {3}), gmm, "'stds'");
  expect_data_error(gmm_tensors({3, 2}, {3, 3}, {3}), gmm, "'stds'");
  expect_data_error(gmm_tensors({3, 2}, {3}, {2}), gmm, "'weights'");
  expect_data_error(gmm_tensors({6}, {3}, {3}), gmm, "'means'");
  auto extra = ts;
  extra.push_back({"bias", Tensor(DType::f4, {2})});
  expect_data_error(extra, gmm, "'bias'");
  auto neg = ts;
  neg[1].tensor.data<float>()[0] = -1;
  expect_data_error(neg, gmm, "'stds'");
  auto nan = ts;
  nan[0].tensor.data<float>()[3] = std::nanf("");
  expect_data_error(nan, gmm, "'means'");
  expect_data_error(ts, {{"kind", "gmm"}, {"prediction", "noise"}}, "prediction");
  expect_data_error(ts, {{"kind", "gmm"}, {"sample_shape", "2,2"}}, "sample_shape");

  // The MLP: every tensor of the architecture, with its shape.
  auto f = read_file(shipped + "moons.safetensors");
  auto drop = [&](const std::string& name) {
    std::vector<NamedTensor> out;
    for (const auto& t : f.tensors)
      if (t.name != name) out.push_back(t);
    return out;
  };
  expect_data_error(drop("blocks.1.weight"), f.metadata, "'blocks.1.weight'");
  expect_data_error(drop("output.bias"), f.metadata, "'output.bias'");
  auto meta = f.metadata;
  meta["hidden"] = "64";
  expect_data_error(f.tensors, meta, "'input.weight'");
  meta = f.metadata;
  meta["depth"] = "2";
  expect_data_error(f.tensors, meta, "'blocks.2.weight'");
  meta = f.metadata;
  meta["input_dim"] = "16";
  expect_data_error(f.tensors, meta, "'input.weight'");
  meta = f.metadata;
  meta["activation"] = "tanh";
  expect_data_error(f.tensors, meta, "activation");
  meta = f.metadata;
  meta["hidden"] = "12x";
  expect_data_error(f.tensors, meta, "hidden");
  meta = f.metadata;
  meta.erase("dim");
  expect_data_error(f.tensors, meta, "dim");
  meta = f.metadata;
  meta["num_classes"] = "3";
  meta["class_dim"] = "16";
  expect_data_error(f.tensors, meta, "'class_emb.weight'");
  auto wrong = f.tensors;
  for (auto& t : wrong)
    if (t.name == "blocks.0.bias") t.tensor = Tensor(DType::f4, {127});
  expect_data_error(wrong, f.metadata, "'blocks.0.bias'");
  auto ints = f.tensors;
  for (auto& t : ints)
    if (t.name == "output.bias") t.tensor = Tensor(DType::i8, {2});
  expect_data_error(ints, f.metadata, "'output.bias'");
}
