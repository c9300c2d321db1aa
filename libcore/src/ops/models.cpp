// Models for the samplers: the exact Gaussian mixture and the MLP (SGEMM).
#include "nnkit/ops/models.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "nnkit/parallel.hpp"

// OpenBLAS's thread control (weak, as in parallel.cpp).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace nnkit::models {

namespace {


const NamedTensor* find(const std::vector<NamedTensor>& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

const Tensor& need(const std::vector<NamedTensor>& ts, const std::string& name, const std::string& where) {
  const NamedTensor* t = find(ts, name);
  if (!t) throw_data("model " + where + ": missing tensor '" + name + "'");
  if (!is_float(t->tensor.dtype()))
    throw_data("model " + where + ": tensor '" + name + "' is " + std::string(dtype_name(t->tensor.dtype())) +
               ", want a float dtype");
  return t->tensor;
}

template <class T>
std::vector<T> values(const Tensor& t, const std::string& name, const std::string& where) {
  const Tensor c = t.astype(dtype_of_v<T>);
  const T* p = c.data<T>();
  std::vector<T> v(p, p + c.numel());
  for (T x : v)
    if (!std::isfinite(x)) throw_data("model " + where + ": tensor '" + name + "' has a non-finite value");
  return v;
}

void expect_shape(const Tensor& t, const Shape& want, const std::string& name, const std::string& where) {
  if (t.shape() != want)
    throw_data("model " + where + ": tensor '" + name + "' has shape " + shape_str(t.shape()) + ", want " +
               shape_str(want));
}

// Metadata values, strictly parsed.
class Meta {
 public:
  Meta(const std::map<std::string, std::string>& m, const std::string& where) : m_(m), where_(where) {}
  bool has(const std::string& key) const { return m_.count(key) != 0; }
  std::string str(const std::string& key, const std::string& def) const {
    auto it = m_.find(key);
    return it == m_.end() ? def : it->second;
  }
  std::int64_t integer(const std::string& key, std::int64_t def, std::int64_t lo, std::int64_t hi) const {
    auto it = m_.find(key);
    if (it == m_.end()) return def;
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(it->second, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != it->second.size() || v < lo || v > hi)
      bad(key, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
  }
  double real(const std::string& key, double def) const {
    auto it = m_.find(key);
    if (it == m_.end()) return def;
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(it->second, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != it->second.size() || !std::isfinite(v)) bad(key, "a finite number");
    return v;
  }
  bool boolean(const std::string& key, bool def) const {
    auto it = m_.find(key);
    if (it == m_.end()) return def;
    if (it->second == "true" || it->second == "1") return true;
    if (it->second == "false" || it->second == "0") return false;
    bad(key, "true or false");
  }
  std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& allowed) const {
    const std::string v = str(key, def);
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      bad(key, "one of " + list);
    }
    return v;
  }
  [[noreturn]] void bad(const std::string& key, const std::string& want) const {
    throw_data("model " + where_ + ": metadata '" + key + "' is " + in_quotes(str(key, "")) + ", want " + want);
  }

 private:
  const std::map<std::string, std::string>& m_;
  std::string where_;
};

// "8,8,1" -> {8, 8, 1}; its size must be dim.
Shape sample_shape_of(const Meta& meta, std::int64_t dim) {
  if (!meta.has("sample_shape")) return {dim};
  const std::string s = meta.str("sample_shape", "");
  Shape shape;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    const std::string part = s.substr(pos, comma - pos);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 9)
      meta.bad("sample_shape", "positive extents like 8,8,1");
    shape.push_back(std::stoll(part));
    pos = comma + 1;
  }
  std::int64_t n = 1;
  bool overflow = false;  // up to 9 digits each: the product may pass 64 bits
  for (auto e : shape) overflow = overflow || __builtin_mul_overflow(n, e, &n);
  if (overflow || n != dim) meta.bad("sample_shape", "extents whose product is the dimension " + std::to_string(dim));
  return shape;
}

Output output_of(const Meta& meta, const std::string& def) {
  const std::string p = meta.choice("prediction", def, {"epsilon", "v_prediction", "sample", "velocity"});
  return *parse_output(p);
}

// One sinusoidal embedding: [sin(u f_0..), cos(u f_0..)] with the product
// rounded to float first, as PyTorch computes it in float32.
inline void embed(float u, const std::vector<float>& freq, float* out) {
  const std::size_t half = freq.size();
  for (std::size_t j = 0; j < half; ++j) {
    const float a = u * freq[j];
    out[j] = static_cast<float>(std::sin(static_cast<double>(a)));
    out[half + j] = static_cast<float>(std::cos(static_cast<double>(a)));
  }
}

void activate(Activation act, float* h, std::int64_t n) {
  switch (act) {
    case Activation::gelu:
      for (std::int64_t i = 0; i < n; ++i) h[i] = 0.5f * h[i] * (1.f + std::erf(h[i] * 0.70710678118654752f));
      break;
    case Activation::silu:
      for (std::int64_t i = 0; i < n; ++i) h[i] = h[i] / (1.f + std::exp(-h[i]));
      break;
    case Activation::relu:
      for (std::int64_t i = 0; i < n; ++i) h[i] = std::max(h[i], 0.f);
      break;
  }
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::gmm: return "gmm";
    case Kind::mlp: return "mlp";
    case Kind::nice: return "nice";
    case Kind::realnvp: return "realnvp";
  }
  return "?";
}

const char* output_name(Output o) {
  switch (o) {
    case Output::epsilon: return "epsilon";
    case Output::v_prediction: return "v_prediction";
    case Output::sample: return "sample";
    case Output::velocity: return "velocity";
    case Output::score: return "score";
  }
  return "?";
}

std::optional<Output> parse_output(const std::string& s) {
  for (Output o : {Output::epsilon, Output::v_prediction, Output::sample, Output::velocity, Output::score})
    if (s == output_name(o)) return o;
  return std::nullopt;
}

std::vector<float> sinusoid_frequencies(std::int64_t size) {
  const std::int64_t half = size / 2;
  std::vector<float> f(static_cast<std::size_t>(half));
  for (std::int64_t j = 0; j < half; ++j)
    f[j] = static_cast<float>(std::exp(-std::log(10000.0) * static_cast<double>(j) / static_cast<double>(half - 1)));
  return f;
}

// ------------------------------------------------------------------ gmm

Gmm::Gmm(std::vector<double> means, std::vector<double> stds, std::vector<double> weights, std::int64_t k,
         std::int64_t d)
    : k_(k), d_(d), means_(std::move(means)), weights_(std::move(weights)) {
  kind_ = Kind::gmm;
  dim_ = d;
  sample_shape_ = {d};
  num_classes_ = k;
  if (k < 1 || d < 1) throw_data("gmm: needs at least one component and one dimension");
  if (static_cast<std::int64_t>(means_.size()) != k * d || static_cast<std::int64_t>(weights_.size()) != k)
    throw_internal("gmm: inconsistent sizes");
  if (static_cast<std::int64_t>(stds.size()) == k) {
    stds_.resize(static_cast<std::size_t>(k * d));
    for (std::int64_t c = 0; c < k; ++c)
      for (std::int64_t j = 0; j < d; ++j) stds_[c * d + j] = stds[c];
  } else if (static_cast<std::int64_t>(stds.size()) == k * d) {
    stds_ = std::move(stds);
  } else {
    throw_internal("gmm: inconsistent stds");
  }
  for (double s : stds_)
    if (!(s >= 0)) throw_data("gmm: tensor 'stds' has a negative value");
  double total = 0;
  for (double w : weights_) {
    if (!(w >= 0)) throw_data("gmm: tensor 'weights' has a negative value");
    total += w;
  }
  if (!(total > 0)) throw_data("gmm: tensor 'weights' sums to zero");
  for (double& w : weights_) w /= total;
}

void Gmm::posterior(const float* x, const Time& time, std::int64_t label, double* x0, double* eps) const {
  const double a = time.alpha, s2 = time.sigma * time.sigma, s = time.sigma;
  // Responsibilities of the components for x, in log space.
  double logr_stack[16];
  std::vector<double> logr_heap;
  double* logr = logr_stack;
  if (k_ > 16) {
    logr_heap.resize(static_cast<std::size_t>(k_));
    logr = logr_heap.data();
  }
  double best = -std::numeric_limits<double>::infinity();
  for (std::int64_t c = 0; c < k_; ++c) {
    if (weights_[c] == 0 || (label >= 0 && c != label)) {
      logr[c] = -std::numeric_limits<double>::infinity();
      continue;
    }
    double l = std::log(weights_[c]);
    for (std::int64_t j = 0; j < d_; ++j) {
      const double sd = stds_[c * d_ + j];
      const double var = std::max(a * a * sd * sd + s2, 1e-300);  // a point mass at time 0: nearly a delta
      const double r = x[j] - a * means_[c * d_ + j];
      l -= 0.5 * (r * r / var + std::log(var));
    }
    logr[c] = l;
    best = std::max(best, l);
  }
  double total = 0;
  for (std::int64_t c = 0; c < k_; ++c) total += (logr[c] = std::exp(logr[c] - best));
  for (std::int64_t j = 0; j < d_; ++j) x0[j] = eps[j] = 0;
  for (std::int64_t c = 0; c < k_; ++c) {
    const double r = logr[c] / total;
    if (r == 0) continue;
    for (std::int64_t j = 0; j < d_; ++j) {
      const double sd = stds_[c * d_ + j];
      const double var = std::max(a * a * sd * sd + s2, 1e-300);
      const double dev = (x[j] - a * means_[c * d_ + j]) / var;
      x0[j] += r * (means_[c * d_ + j] + a * sd * sd * dev);
      eps[j] += r * s * dev;
    }
  }
}

void Gmm::predict(const float* x, std::int64_t n, const Time& time, const std::int64_t* labels, float* out,
                  std::int64_t) const {
  std::vector<double> x0(static_cast<std::size_t>(d_)), eps(static_cast<std::size_t>(d_));
  const double a = time.alpha, s = time.sigma;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * d_;
    float* o = out + i * d_;
    posterior(xi, time, labels ? labels[i] : -1, x0.data(), eps.data());
    for (std::int64_t j = 0; j < d_; ++j) {
      double v = 0;
      switch (output_) {
        case Output::epsilon: v = eps[j]; break;
        case Output::sample: v = x0[j]; break;
        case Output::v_prediction: v = a * eps[j] - s * x0[j]; break;
        case Output::velocity: v = eps[j] - x0[j]; break;
        // E[eps | x_t] = -sigma * score, and x_t = a x0 + s eps gives the
        // same from x0 where sigma is 0.
        case Output::score: v = s > 0 ? -eps[j] / s : 0.0; break;
      }
      o[j] = static_cast<float>(v);
    }
  }
}

double Gmm::log_density(const double* x) const {
  double best = -std::numeric_limits<double>::infinity();
  std::vector<double> l(static_cast<std::size_t>(k_));
  for (std::int64_t c = 0; c < k_; ++c) {
    l[c] = std::log(weights_[c]);
    for (std::int64_t j = 0; j < d_; ++j) {
      const double var = std::max(stds_[c * d_ + j] * stds_[c * d_ + j], 1e-300);
      const double r = x[j] - means_[c * d_ + j];
      l[c] -= 0.5 * (r * r / var + std::log(2 * M_PI * var));
    }
    best = std::max(best, l[c]);
  }
  double total = 0;
  for (double v : l) total += std::exp(v - best);
  return best + std::log(total);
}

// ------------------------------------------------------------------ mlp

Mlp::Mlp(const Arch& arch, const std::vector<NamedTensor>& tensors, const std::string& where) : arch_(arch) {
  kind_ = Kind::mlp;
  dim_ = arch.dim;
  sample_shape_ = {arch.dim};
  num_classes_ = arch.num_classes;
  const std::int64_t x_features = arch.input_dim > 0 ? arch.dim * arch.input_dim : arch.dim;
  features_ = x_features + arch.time_dim + (arch.num_classes > 0 ? arch.class_dim : 0);
  auto linear = [&](const std::string& name, std::int64_t in, std::int64_t out) {
    Linear l;
    l.in = in;
    l.out = out;
    const Tensor& w = need(tensors, name + ".weight", where);
    expect_shape(w, {out, in}, name + ".weight", where);
    const Tensor& b = need(tensors, name + ".bias", where);
    expect_shape(b, {out}, name + ".bias", where);
    l.w = values<float>(w, name + ".weight", where);
    l.b = values<float>(b, name + ".bias", where);
    return l;
  };
  if (arch.num_classes > 0) {
    const Tensor& e = need(tensors, "class_emb.weight", where);
    expect_shape(e, {arch.num_classes + 1, arch.class_dim}, "class_emb.weight", where);
    class_emb_ = values<float>(e, "class_emb.weight", where);
  }
  input_ = linear("input", features_, arch.hidden);
  for (std::int64_t i = 0; i < arch.depth; ++i)
    blocks_.push_back(linear("blocks." + std::to_string(i), arch.hidden, arch.hidden));
  output_layer_ = linear("output", arch.hidden, arch.dim);
  // A tensor the architecture does not use means the metadata describes
  // another network: refuse rather than ignore weights.
  for (const auto& t : tensors) {
    const std::string& n = t.name;
    bool known = n == "input.weight" || n == "input.bias" || n == "output.weight" || n == "output.bias" ||
                 (arch.num_classes > 0 && n == "class_emb.weight");
    for (std::int64_t i = 0; i < arch.depth && !known; ++i)
      known = n == "blocks." + std::to_string(i) + ".weight" || n == "blocks." + std::to_string(i) + ".bias";
    if (!known)
      throw_data("model " + where + ": tensor '" + n + "' is not part of the architecture in the metadata");
  }
  time_freq_ = sinusoid_frequencies(arch.time_dim);
  if (arch.input_dim > 0) input_freq_ = sinusoid_frequencies(arch.input_dim);
}

void Mlp::forward_block(const float* x, std::int64_t n, float t, const std::int64_t* labels, float* out) const {
  const std::int64_t H = arch_.hidden, F = features_, D = arch_.dim;
  std::vector<float> feat(static_cast<std::size_t>(n * F)), h(static_cast<std::size_t>(n * H)),
      tmp(static_cast<std::size_t>(n * H));
  // Features: [emb(x) or x, emb(t), class embedding].
  const float tt = t * static_cast<float>(arch_.time_scale);
  std::vector<float> temb(static_cast<std::size_t>(arch_.time_dim));
  embed(tt, time_freq_, temb.data());
  for (std::int64_t i = 0; i < n; ++i) {
    float* f = feat.data() + i * F;
    const float* xi = x + i * D;
    if (arch_.input_dim > 0) {
      for (std::int64_t j = 0; j < D; ++j)
        embed(xi[j] * static_cast<float>(arch_.input_scale), input_freq_, f + j * arch_.input_dim);
      f += D * arch_.input_dim;
    } else {
      std::copy(xi, xi + D, f);
      f += D;
    }
    std::copy(temb.begin(), temb.end(), f);
    f += arch_.time_dim;
    if (arch_.num_classes > 0) {
      const std::int64_t c = labels && labels[i] >= 0 ? labels[i] : arch_.num_classes;
      const float* e = class_emb_.data() + c * arch_.class_dim;
      std::copy(e, e + arch_.class_dim, f);
    }
  }
  // y = a W^T + b: rows of y start as the bias, then one SGEMM adds a W^T.
  auto apply = [n](const Linear& l, const float* a, float* y) {
    for (std::int64_t i = 0; i < n; ++i) std::copy(l.b.begin(), l.b.end(), y + i * l.out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(l.out),
                static_cast<int>(l.in), 1.f, a, static_cast<int>(l.in), l.w.data(), static_cast<int>(l.in), 1.f, y,
                static_cast<int>(l.out));
  };
  apply(input_, feat.data(), h.data());
  activate(arch_.act, h.data(), n * H);
  for (const Linear& l : blocks_) {
    if (arch_.residual) {
      apply(l, h.data(), tmp.data());
      activate(arch_.act, tmp.data(), n * H);
      for (std::int64_t i = 0; i < n * H; ++i) h[i] += tmp[i];
    } else {
      apply(l, h.data(), tmp.data());
      activate(arch_.act, tmp.data(), n * H);
      h.swap(tmp);
    }
  }
  apply(output_layer_, h.data(), out);
}

void Mlp::predict(const float* x, std::int64_t n, const Time& time, const std::int64_t* labels, float* out,
                  std::int64_t first_row) const {
  const float t = static_cast<float>(time.t);
  // OpenBLAS's result for a row depends on where the row sits in the SGEMM
  // (its kernels treat row groups differently), so every SGEMM has exactly
  // kRowBlock rows and global row g always sits at position g % kRowBlock;
  // partial blocks are padded with zeros.
  std::vector<float> xin, yout;
  std::vector<std::int64_t> lab;
  for (std::int64_t i = 0; i < n;) {
    const std::int64_t pos = (first_row + i) % kRowBlock;
    const std::int64_t m = std::min(kRowBlock - pos, n - i);
    if (m == kRowBlock) {
      forward_block(x + i * dim_, m, t, labels ? labels + i : nullptr, out + i * dim_);
    } else {
      xin.assign(static_cast<std::size_t>(kRowBlock * dim_), 0.f);
      yout.resize(xin.size());
      std::copy(x + i * dim_, x + (i + m) * dim_, xin.begin() + pos * dim_);
      if (labels) {
        lab.assign(static_cast<std::size_t>(kRowBlock), -1);
        std::copy(labels + i, labels + i + m, lab.begin() + pos);
      }
      forward_block(xin.data(), kRowBlock, t, labels ? lab.data() : nullptr, yout.data());
      std::copy(yout.begin() + pos * dim_, yout.begin() + (pos + m) * dim_, out + i * dim_);
    }
    i += m;
  }
}

void predict_parallel(const Model& model, const float* x, std::int64_t n, const Time& time,
                      const std::int64_t* labels, float* out, std::int64_t first_row) {
  // Our threads share out the rows; BLAS runs on the calling thread only.
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  struct Restore {
    ~Restore() {
      if (openblas_set_num_threads) openblas_set_num_threads(thread_count());
    }
  } restore;
  const std::int64_t d = model.dim();
  // Chunks end at global multiples of kRowBlock, as the MLP's blocks do.
  const std::int64_t head = std::min(n, (kRowBlock - first_row % kRowBlock) % kRowBlock);
  const std::int64_t chunks = (head > 0) + (n - head + kRowBlock - 1) / kRowBlock;
  auto start = [&](std::int64_t c) {
    if (head == 0) return std::min(n, c * kRowBlock);
    return c == 0 ? 0 : std::min(n, head + (c - 1) * kRowBlock);
  };
  parallel_for(chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
    const std::int64_t r0 = start(c0), r1 = start(c1);
    model.predict(x + r0 * d, r1 - r0, time, labels ? labels + r0 : nullptr, out + r0 * d, first_row + r0);
  });
}

// ------------------------------------------------------------------ loading

std::unique_ptr<Model> from_tensors(const std::vector<NamedTensor>& tensors,
                                    const std::map<std::string, std::string>& metadata, const std::string& where) {
  const Meta meta(metadata, where);
  if (!meta.has("kind"))
    throw_data("model " + where + ": no \"kind\" in the safetensors __metadata__ (want gmm, mlp, nice or realnvp)");
  const std::string kind = meta.str("kind", "");
  std::unique_ptr<Model> model;
  if (kind == "gmm") {
    const Tensor& m = need(tensors, "means", where);
    if (m.ndim() != 2 || m.dim(0) < 1 || m.dim(1) < 1)
      throw_data("model " + where + ": tensor 'means' has shape " + shape_str(m.shape()) + ", want [K, D]");
    const std::int64_t k = m.dim(0), d = m.dim(1);
    const Tensor& s = need(tensors, "stds", where);
    if (s.shape() != Shape{k} && s.shape() != Shape{k, d})
      throw_data("model " + where + ": tensor 'stds' has shape " + shape_str(s.shape()) + ", want [" +
                 std::to_string(k) + "] or [" + std::to_string(k) + ", " + std::to_string(d) + "]");
    const Tensor& w = need(tensors, "weights", where);
    expect_shape(w, {k}, "weights", where);
    for (const auto& t : tensors)
      if (t.name != "means" && t.name != "stds" && t.name != "weights")
        throw_data("model " + where + ": tensor '" + t.name + "' is not part of a gmm model (means, stds, weights)");
    auto sv = values<double>(s, "stds", where);
    for (double v : sv)
      if (v < 0) throw_data("model " + where + ": tensor 'stds' has a negative value");
    auto wv = values<double>(w, "weights", where);
    double total = 0;
    for (double v : wv) {
      if (v < 0) throw_data("model " + where + ": tensor 'weights' has a negative value");
      total += v;
    }
    if (!(total > 0)) throw_data("model " + where + ": tensor 'weights' sums to zero");
    auto g = std::make_unique<Gmm>(values<double>(m, "means", where), std::move(sv), std::move(wv), k, d);
    g->set_output(output_of(meta, "epsilon"));
    model = std::move(g);
  } else if (kind == "mlp") {
    Mlp::Arch a;
    const std::int64_t big = 1 << 16;
    a.dim = meta.integer("dim", -1, 1, big);
    if (!meta.has("dim")) meta.bad("dim", "the data dimension");
    a.hidden = meta.integer("hidden", a.hidden, 1, big);
    a.depth = meta.integer("depth", a.depth, 0, 1024);
    const std::string act = meta.choice("activation", "gelu", {"gelu", "silu", "relu"});
    a.act = act == "gelu" ? Activation::gelu : act == "silu" ? Activation::silu : Activation::relu;
    a.residual = meta.boolean("residual", a.residual);
    a.time_dim = meta.integer("time_dim", a.time_dim, 4, big);
    if (a.time_dim % 2) meta.bad("time_dim", "an even number");
    a.time_scale = meta.real("time_scale", a.time_scale);
    a.input_dim = meta.integer("input_dim", 0, 0, big);
    if (a.input_dim % 2 || a.input_dim == 2) meta.bad("input_dim", "0 or an even number from 4");
    a.input_scale = meta.real("input_scale", a.input_scale);
    a.num_classes = meta.integer("num_classes", 0, 0, big);
    a.class_dim = meta.integer("class_dim", a.num_classes > 0 ? 16 : 0, 0, big);
    if (a.num_classes > 0 && a.class_dim < 1) meta.bad("class_dim", "a positive size");
    auto mlp = std::make_unique<Mlp>(a, tensors, where);
    mlp->set_output(output_of(meta, "epsilon"));
    model = std::move(mlp);
  } else if (kind == "nice" || kind == "realnvp") {
    model = coupling_from_tensors(tensors, metadata, where);  // flow.cpp
  } else {
    throw_data("model " + where + ": unknown kind " + in_quotes(kind) + " (want gmm, mlp, nice or realnvp)");
  }
  model->metadata_ = metadata;
  model->sample_shape_ = sample_shape_of(meta, model->dim());
  return model;
}

std::unique_ptr<Model> default_model() {
  const int k = 8;
  std::vector<double> means, stds(k, 0.1), weights(k, 1.0);
  for (int c = 0; c < k; ++c) {
    means.push_back(2 * std::cos(2 * M_PI * c / k));
    means.push_back(2 * std::sin(2 * M_PI * c / k));
  }
  auto g = std::make_unique<Gmm>(std::move(means), std::move(stds), std::move(weights), k, 2);
  return g;
}

}  // namespace nnkit::models
