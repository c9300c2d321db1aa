// The model runtime the samplers share (ddim-sample, flow-sample): a model maps
// a batch of noisy samples x_t and a time to a prediction. Models come from
// safetensors files whose __metadata__ names the "kind" and the architecture;
// this module sees only the tensors and the metadata (the tools read the file).
//
// Noise convention: x_t = alpha * x0 + sigma * eps with eps ~ N(0, I). Diffusion
// (DDPM/DDIM) uses alpha = sqrt(abar_t), sigma = sqrt(1 - abar_t) and the model
// time is the discrete timestep t; flow matching uses alpha = 1 - t, sigma = t
// and the model time is t in [0, 1] (times the model's "time_scale").
//
// Outputs: epsilon (eps), sample (x0), v_prediction (alpha eps - sigma x0, as
// diffusers), velocity (eps - x0, dx_t/dt of the linear path), score
// (grad log p(x_t) = -eps / sigma).
//
// kinds:
//  gmm  A Gaussian mixture data distribution: means [K, D], stds [K] or [K, D]
//       (diagonal), weights [K]. Every output is the exact posterior
//       expectation: x_t given component k is N(alpha m_k, alpha^2 s_k^2 +
//       sigma^2) per coordinate, so E[x0 | x_t] and E[eps | x_t] are the
//       responsibility-weighted per-component means. Class c selects component
//       c (num_classes = K). It is the embedded default and the test oracle.
//  mlp  A time-conditioned MLP, PyTorch state_dict names:
//         features = [emb(x) or x, emb(t * time_scale), class_emb.weight[c]]
//         h = act(input(features));  per block i: h = h + act(blocks.i(h))
//         (residual) or h = act(blocks.i(h));  out = output(h)
//       with emb(u) = [sin(u f_j), cos(u f_j)], f_j = exp(-ln(10000) j /
//       (half - 1)), j < half = dim/2 (computed in double, rounded to float);
//       the input embedding embeds each coordinate of x * input_scale the same
//       way, coordinates one after another. Class index num_classes is the
//       "no class" row used for classifier-free guidance.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nnkit/tensor.hpp"

namespace nnkit::models {

enum class Kind { gmm, mlp, nice, realnvp };
enum class Output { epsilon, v_prediction, sample, velocity, score };

const char* kind_name(Kind k);
const char* output_name(Output o);
std::optional<Output> parse_output(const std::string& s);

class Model;
std::unique_ptr<Model> from_tensors(const std::vector<NamedTensor>& tensors,
                                    const std::map<std::string, std::string>& metadata, const std::string& where);

// Where a model is evaluated.
struct Time {
  double t = 0;      // the model's time input (timestep, or flow time)
  double alpha = 1;  // signal scale of x_t
  double sigma = 0;  // noise scale of x_t
};

class Model {
 public:
  virtual ~Model() = default;
  Kind kind() const { return kind_; }
  // The shape of one sample (e.g. {2}, or {H, W, C}); dim() is its size.
  const Shape& sample_shape() const { return sample_shape_; }
  std::int64_t dim() const { return dim_; }
  // What predict() returns. For gmm every output is exact, so setting it
  // changes what is computed; for networks it reinterprets the raw output
  // (--prediction overrides a wrong declaration).
  Output output() const { return output_; }
  virtual void set_output(Output o) { output_ = o; }
  // Classes of a conditional model (0: unconditional).
  std::int64_t num_classes() const { return num_classes_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // out[i, :] for the n rows x[i, :] (dim() floats each) at time `time`;
  // labels[i] in [0, num_classes()) or -1 for unconditional; labels may be
  // null (all unconditional). first_row is the global index of row 0: a row's
  // result depends only on its values and its global index, never on the
  // rows evaluated with it (what makes --shard bit-exact). Thread-safe:
  // callers split rows among threads.
  virtual void predict(const float* x, std::int64_t n, const Time& time, const std::int64_t* labels, float* out,
                       std::int64_t first_row = 0) const = 0;

 protected:
  friend std::unique_ptr<Model> from_tensors(const std::vector<NamedTensor>&,
                                             const std::map<std::string, std::string>&, const std::string&);
  Kind kind_ = Kind::gmm;
  Shape sample_shape_;
  std::int64_t dim_ = 0;
  Output output_ = Output::epsilon;
  std::int64_t num_classes_ = 0;
  std::map<std::string, std::string> metadata_;
};

class Gmm : public Model {
 public:
  // means [K, D]; stds K or K*D values (per component, or per coordinate);
  // weights K values, normalised here. Data errors when inconsistent.
  Gmm(std::vector<double> means, std::vector<double> stds, std::vector<double> weights, std::int64_t k,
      std::int64_t d);
  std::int64_t components() const { return k_; }
  const std::vector<double>& means() const { return means_; }
  const std::vector<double>& weights() const { return weights_; }
  // Standard deviation of component k along coordinate j.
  double stddev(std::int64_t k, std::int64_t j) const { return stds_[k * d_ + j]; }
  void predict(const float* x, std::int64_t n, const Time& time, const std::int64_t* labels, float* out,
               std::int64_t first_row = 0) const override;
  // E[x0 | x_t] and E[eps | x_t] of one row, in double (labels: component or -1).
  void posterior(const float* x, const Time& time, std::int64_t label, double* x0, double* eps) const;
  // log p(x) of the data distribution (time 0) at one row.
  double log_density(const double* x) const;

 private:
  std::int64_t k_, d_;
  std::vector<double> means_, stds_, weights_;
};

enum class Activation { gelu, silu, relu };

class Mlp : public Model {
 public:
  struct Arch {
    std::int64_t dim = 2, hidden = 128, depth = 3;
    Activation act = Activation::gelu;
    bool residual = true;
    std::int64_t time_dim = 64;
    double time_scale = 1;
    std::int64_t input_dim = 0;  // per coordinate; 0: x enters as is
    double input_scale = 1;
    std::int64_t num_classes = 0, class_dim = 0;
  };
  // Checks every tensor's presence and shape (data errors naming it).
  Mlp(const Arch& arch, const std::vector<NamedTensor>& tensors, const std::string& where);
  const Arch& arch() const { return arch_; }
  void predict(const float* x, std::int64_t n, const Time& time, const std::int64_t* labels, float* out,
               std::int64_t first_row = 0) const override;

 private:
  struct Linear {
    std::int64_t in = 0, out = 0;
    std::vector<float> w, b;  // w: [out, in] as PyTorch stores it
  };
  void forward_block(const float* x, std::int64_t n, float t, const std::int64_t* labels, float* out) const;
  Arch arch_;
  std::int64_t features_ = 0;
  Linear input_, output_layer_;
  std::vector<Linear> blocks_;
  std::vector<float> class_emb_;  // [num_classes + 1, class_dim]
  std::vector<float> time_freq_, input_freq_;
};

// A model from a safetensors file's tensors and metadata; `where` names the
// file in messages. Unknown kind, missing tensor, wrong shape, bad metadata:
// data errors naming the tensor or key.
std::unique_ptr<Model> from_tensors(const std::vector<NamedTensor>& tensors,
                                    const std::map<std::string, std::string>& metadata, const std::string& where);
// The coupling flows (kinds nice and realnvp, nnkit/ops/flow.hpp; defined in
// flow.cpp): data errors as from_tensors.
std::unique_ptr<Model> coupling_from_tensors(const std::vector<NamedTensor>& tensors,
                                             const std::map<std::string, std::string>& metadata,
                                             const std::string& where);
// model.predict over n rows on up to thread_count() threads: blocks of rows,
// each one single-threaded SGEMM chain (OpenBLAS's own threads are paused
// meanwhile). Results do not depend on the thread count.
void predict_parallel(const Model& model, const float* x, std::int64_t n, const Time& time,
                      const std::int64_t* labels, float* out, std::int64_t first_row = 0);
// Rows per SGEMM of the MLP; blocks start at global row indices that are
// multiples of it.
inline constexpr std::int64_t kRowBlock = 256;

// The embedded default: a 2-D mixture of 8 Gaussians (std 0.1, equal weights)
// on the circle of radius 2.
std::unique_ptr<Model> default_model();

// Sinusoidal embedding frequencies for an embedding of `size` values.
std::vector<float> sinusoid_frequencies(std::int64_t size);

}  // namespace nnkit::models
