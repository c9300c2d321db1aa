// Model files (ops/models, ops/flow, ops/diffusion): models::from_tensors
// over fuzzed __metadata__ and small tensors and, when the model loads, one
// evaluation of what the samplers call: predict in every output type (a
// batch must give each row what that row alone gives), the flow Field
// (time_convention), the declared training schedule, and the coupling flows'
// forward, inverse and log-density.
//
// The first byte picks how the rest becomes a model. Even: the rest is a
// whole safetensors file, as ddim-sample -m reads it. Odd: "key=value"
// metadata lines, an empty line, then bytes for the values of tensors that
// this target shapes as the metadata's architecture asks (so the fuzzer
// reaches the networks, not only the shape checks); the first byte may also
// drop, add, reshape or retype one tensor.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/formats/safetensors.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/flow.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

// Tensors this target makes stay below this many elements in all.
constexpr std::int64_t kBudget = 1 << 15;

using Meta = std::map<std::string, std::string>;

// "key=value" lines up to an empty line; what follows is left in *rest.
Meta parse_metadata(const std::string& text, std::string* rest) {
  Meta meta;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty()) break;
    const std::size_t eq = line.find('=');
    if (eq != std::string::npos) meta[line.substr(0, eq)] = line.substr(eq + 1);
  }
  *rest = at < text.size() ? text.substr(at) : std::string();
  return meta;
}

// A metadata integer as the model reads it, or def; -1 when it is not one.
std::int64_t meta_int(const Meta& m, const std::string& key, std::int64_t def) {
  auto it = m.find(key);
  if (it == m.end()) return def;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  return *end == '\0' && !it->second.empty() ? v : -1;
}

// The tensors (name, shape) an architecture needs; empty when its sizes are
// unreadable or over the budget.
std::vector<std::pair<std::string, Shape>> architecture(const Meta& m, FuzzedDataProvider& fdp) {
  std::vector<std::pair<std::string, Shape>> t;
  const std::string kind = m.count("kind") ? m.at("kind") : "";
  if (kind == "gmm") {
    const std::int64_t k = fdp.ConsumeIntegralInRange<std::int64_t>(1, 6), d = fdp.ConsumeIntegralInRange<std::int64_t>(1, 4);
    t = {{"means", {k, d}}, {"stds", fdp.ConsumeBool() ? Shape{k} : Shape{k, d}}, {"weights", {k}}};
  } else if (kind == "mlp") {
    const std::int64_t dim = meta_int(m, "dim", 2), hidden = meta_int(m, "hidden", 128), depth = meta_int(m, "depth", 3),
                       time_dim = meta_int(m, "time_dim", 64), input_dim = meta_int(m, "input_dim", 0),
                       classes = meta_int(m, "num_classes", 0), class_dim = meta_int(m, "class_dim", classes > 0 ? 16 : 0);
    for (std::int64_t v : {dim, hidden, depth, time_dim, input_dim, classes, class_dim})
      if (v < 0 || v > 4096) return {};
    const std::int64_t features = (input_dim > 0 ? dim * input_dim : dim) + time_dim + (classes > 0 ? class_dim : 0);
    t = {{"input.weight", {hidden, features}}, {"input.bias", {hidden}}};
    for (std::int64_t i = 0; i < depth && i < 8; ++i) {
      t.push_back({"blocks." + std::to_string(i) + ".weight", {hidden, hidden}});
      t.push_back({"blocks." + std::to_string(i) + ".bias", {hidden}});
    }
    t.push_back({"output.weight", {dim, hidden}});
    t.push_back({"output.bias", {dim}});
    if (classes > 0) t.push_back({"class_emb.weight", {classes + 1, class_dim}});
  } else if (kind == "nice" || kind == "realnvp") {
    const std::int64_t d = meta_int(m, "dim", -1), layers = meta_int(m, "layers", -1), h = meta_int(m, "hidden", 64),
                       depth = meta_int(m, "depth", 2);
    for (std::int64_t v : {d, layers, h, depth})
      if (v < 0 || v > 256) return {};
    for (std::int64_t i = 0; i < layers && i < 8; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      t.push_back({p + "mask", {d}});
      for (std::int64_t k = 0; k <= depth && k < 8; ++k) {
        const std::int64_t in = k == 0 ? d : h, out = k < depth ? h : (kind == "nice" ? d : 2 * d);
        t.push_back({p + "net." + std::to_string(2 * k) + ".weight", {out, in}});
        t.push_back({p + "net." + std::to_string(2 * k) + ".bias", {out}});
      }
    }
    t.push_back({"scale", {d}});
  }
  std::int64_t total = 0;
  for (const auto& [name, shape] : t) {
    std::int64_t n = 1;
    for (std::int64_t e : shape) n *= e;
    total += n;
    if (total > kBudget) return {};
  }
  return t;
}

// A value from the fuzzer: mostly small, sometimes any float (NaN, inf).
float value(FuzzedDataProvider& fdp) {
  const std::uint8_t b = fdp.ConsumeIntegral<std::uint8_t>();
  if (b == 255) {
    const std::uint32_t bits = fdp.ConsumeIntegral<std::uint32_t>();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return static_cast<float>(b) / 32.0f - 4.0f;
}

std::vector<NamedTensor> make_tensors(std::vector<std::pair<std::string, Shape>> arch, FuzzedDataProvider& fdp) {
  // One change that a real file might have: a tensor missing, extra, reshaped or another dtype.
  const int change = fdp.ConsumeIntegralInRange(0, 7);
  const std::size_t which = arch.empty() ? 0 : fdp.ConsumeIntegralInRange<std::size_t>(0, arch.size() - 1);
  if (change == 1 && !arch.empty()) arch.erase(arch.begin() + static_cast<std::ptrdiff_t>(which));
  if (change == 2) arch.push_back({"extra", {2}});
  if (change == 3 && !arch.empty() && !arch[which].second.empty()) arch[which].second.back() += 1;
  std::vector<NamedTensor> out;
  for (std::size_t i = 0; i < arch.size(); ++i) {
    Tensor t(DType::f4, arch[i].second);
    float* p = t.data<float>();
    const bool mask = arch[i].first.find("mask") != std::string::npos;
    for (std::int64_t j = 0; j < t.numel(); ++j) p[j] = mask ? static_cast<float>(fdp.ConsumeBool()) : value(fdp);
    if (change == 4 && i == which) t = t.astype(fdp.PickValueInArray({DType::f2, DType::f8, DType::i4}), false);
    out.push_back({arch[i].first, std::move(t)});
  }
  return out;
}

// predict over n rows at once must equal predict row by row (global row
// indices kept): what makes --shard bit-exact.
void check_rows_independent(const models::Model& m, const std::vector<float>& x, std::int64_t n,
                            const models::Time& time, const std::int64_t* labels, std::int64_t first) {
  const std::int64_t d = m.dim();
  std::vector<float> all(static_cast<std::size_t>(n * d)), one(static_cast<std::size_t>(d));
  m.predict(x.data(), n, time, labels, all.data(), first);
  for (std::int64_t i = 0; i < n; ++i) {
    m.predict(x.data() + i * d, 1, time, labels ? labels + i : nullptr, one.data(), first + i);
    fuzz::check(std::memcmp(one.data(), all.data() + i * d, static_cast<std::size_t>(d) * sizeof(float)) == 0,
                "a row's prediction depends on the rows evaluated with it");
  }
}

void evaluate_coupling(const flow::Coupling& c, const std::vector<float>& x, std::int64_t n) {
  const std::int64_t d = c.dim();
  std::vector<float> z(x.size()), back(x.size());
  std::vector<double> logdet(static_cast<std::size_t>(n)), lp(static_cast<std::size_t>(n));
  c.forward(x.data(), n, z.data(), logdet.data());
  c.inverse(z.data(), n, back.data());
  c.log_prob(x.data(), n, lp.data());
  std::vector<float> prior(static_cast<std::size_t>(d));
  c.draw_prior(7, 0, prior.data());
}

void evaluate(models::Model& m, const Meta& meta, FuzzedDataProvider& fdp) {
  const std::int64_t d = m.dim(), n = fdp.ConsumeIntegralInRange<std::int64_t>(1, 3);
  fuzz::check(d >= 1 && d <= (1 << 16), "a model's dimension is out of range");
  if (d * n > kBudget) return;
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (float& v : x) v = value(fdp);
  if (const auto* c = dynamic_cast<const flow::Coupling*>(&m)) {
    evaluate_coupling(*c, x, n);
    return;
  }
  models::Time time;
  time.alpha = fdp.ConsumeFloatingPointInRange(0.0, 1.0);
  time.sigma = fdp.ConsumeFloatingPointInRange(0.0, 1.0);
  time.t = fdp.ConsumeFloatingPointInRange(0.0, 1000.0);
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i) labels.push_back(fdp.ConsumeIntegralInRange<std::int64_t>(-1, m.num_classes() - 1));
  const std::int64_t first = fdp.ConsumeIntegralInRange<std::int64_t>(0, 1000);
  const models::Output declared = m.output();
  for (models::Output o : {models::Output::epsilon, models::Output::v_prediction, models::Output::sample,
                           models::Output::velocity, models::Output::score}) {
    m.set_output(o);
    check_rows_independent(m, x, n, time, m.num_classes() > 0 ? labels.data() : nullptr, first);
  }
  m.set_output(declared);
  std::vector<float> out(x.size());
  models::predict_parallel(m, x.data(), n, time, nullptr, out.data(), first);
  // What flow-sample and ddim-sample read from the metadata.
  (void)fuzz::expected([&] {
    const flow::Field field(m, "fuzz-model");
    field.velocity(x.data(), n, fdp.ConsumeFloatingPointInRange(0.0, 1.0), out.data(), first);
  });
  (void)fuzz::expected([&] {
    diffusion::Options o;
    o.schedule = diffusion::model_schedule(meta, o.schedule, "fuzz-model");
    o.steps = fdp.ConsumeIntegralInRange<std::int64_t>(1, 4);
    if (o.schedule.train_steps > 5000) return;  // the plan's cost, not a bug
    diffusion::plan(o);
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::vector<NamedTensor> tensors;
  Meta meta;
  std::string rest;
  if (data[0] % 2 == 0) {
    Input in = fuzz::memory_input(fuzz::bytes(data + 1, size - 1));
    safetensors::File f;
    if (!fuzz::expected([&] { f = safetensors::read(in); })) return 0;
    tensors = std::move(f.tensors);
    meta = std::move(f.metadata);
  } else {
    meta = parse_metadata(fuzz::bytes(data + 1, size - 1), &rest);
  }
  FuzzedDataProvider fdp(reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size());
  if (data[0] % 2 == 1) tensors = make_tensors(architecture(meta, fdp), fdp);
  std::unique_ptr<models::Model> model;
  if (!fuzz::expected([&] { model = models::from_tensors(tensors, meta, "fuzz-model"); })) return 0;
  fuzz::check(model != nullptr, "from_tensors returned no model");
  (void)fuzz::expected([&] { evaluate(*model, meta, fdp); });
  return 0;
}
