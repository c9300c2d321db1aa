#include "nnkit/ops/rope.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "nnkit/dtype.hpp"
#include "nnkit/error.hpp"
#include "nnkit/memory_limit.hpp"
#include "nnkit/parallel.hpp"

namespace nnkit::rope {

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // The shortest of %.6g .. %.17g that reads back as v, for messages.
  for (int prec = 6; prec < 17; ++prec) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", prec, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

bool finite_positive(double v) { return std::isfinite(v) && v > 0; }

// One-axis inverse frequencies of rotary dimension `dim` for the scaling of p,
// as transformers' _compute_*_parameters (formulas only: here in double).
Frequencies scaled(const Params& p, std::int64_t dim, std::int64_t seq_len) {
  const std::int64_t half = dim / 2;
  const double d = static_cast<double>(dim);
  Frequencies f;
  f.inv_freq = make_buffer<double>(half, "the inverse frequencies of rotary dimension " + std::to_string(dim));
  // base^(-2j/dim): the unscaled frequencies of a given base.
  auto plain = [&](double base) {
    for (std::int64_t j = 0; j < half; ++j)
      f.inv_freq[j] = 1.0 / std::pow(base, static_cast<double>(2 * j) / d);
  };
  switch (p.scaling) {
    case Scaling::none:
      plain(p.base);
      break;
    case Scaling::linear:
      plain(p.base);
      for (double& w : f.inv_freq) w /= p.factor;
      break;
    case Scaling::dynamic: {
      // NTK-aware: a larger base once the sequence outgrows the original context.
      const double orig = static_cast<double>(p.original_max_pos);
      const double len = std::max(static_cast<double>(seq_len), orig);
      plain(p.base * std::pow(p.factor * len / orig - (p.factor - 1), d / (d - 2)));
      break;
    }
    case Scaling::yarn: {
      auto mscale_of = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
      if (p.attention_factor)
        f.attention_factor = *p.attention_factor;
      else if (p.mscale != 0 && p.mscale_all_dim != 0)
        f.attention_factor = mscale_of(p.factor, p.mscale) / mscale_of(p.factor, p.mscale_all_dim);
      else
        f.attention_factor = mscale_of(p.factor, 1);
      // The dimension whose wavelength turns `rotations` times over the original context.
      const double orig = static_cast<double>(p.original_max_pos);
      auto correction_dim = [&](double rotations) {
        return d * std::log(orig / (rotations * 2 * kPi)) / (2 * std::log(p.base));
      };
      double low = correction_dim(p.beta_fast), high = correction_dim(p.beta_slow);
      if (p.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, d - 1);
      if (low == high) high += 0.001;  // as transformers: no division by zero
      for (std::int64_t j = 0; j < half; ++j) {
        const double extrapolated = 1.0 / std::pow(p.base, static_cast<double>(2 * j) / d);
        const double interpolated = extrapolated / p.factor;
        const double ramp = std::clamp((static_cast<double>(j) - low) / (high - low), 0.0, 1.0);
        f.inv_freq[j] = interpolated * ramp + extrapolated * (1 - ramp);
      }
      break;
    }
    case Scaling::llama3: {
      plain(p.base);
      const double orig = static_cast<double>(p.original_max_pos);
      const double low_wavelen = orig / p.low_freq_factor, high_wavelen = orig / p.high_freq_factor;
      for (double& w : f.inv_freq) {
        const double wavelen = 2 * kPi / w;
        if (wavelen > low_wavelen) {
          w /= p.factor;  // long waves: interpolated
        } else if (!(wavelen < high_wavelen)) {
          // in between: a smooth blend of the two
          const double smooth = (orig / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
          w = (1 - smooth) * w / p.factor + smooth * w;
        }  // short waves: unchanged
      }
      break;
    }
    case Scaling::longrope: {
      const double orig = static_cast<double>(p.original_max_pos);
      if (p.attention_factor)
        f.attention_factor = *p.attention_factor;
      else
        f.attention_factor = p.factor <= 1 ? 1.0 : std::sqrt(1 + std::log(p.factor) / std::log(orig));
      // Past the original context the long factors, else the short ones.
      const auto& ext = seq_len > p.original_max_pos ? p.long_factor : p.short_factor;
      for (std::int64_t j = 0; j < half; ++j)
        f.inv_freq[j] = 1.0 / (ext[j] * std::pow(p.base, static_cast<double>(2 * j) / d));
      break;
    }
  }
  return f;
}

// The rotary dimension of one frequency set: R/A for a channel split, else R.
std::int64_t part_dim(const Params& p) {
  return p.mrope_section.empty() ? p.rotary_dim / p.axes : p.rotary_dim;
}

// Which position axis turns frequency j.
std::vector<int> axis_of_frequency(const Params& p) {
  const std::int64_t half = p.rotary_dim / 2;
  std::vector<int> axis = make_buffer<int>(half, "the frequency axes");
  if (!p.mrope_section.empty()) {
    std::int64_t j = 0;
    for (std::size_t a = 0; a < p.mrope_section.size(); ++a)
      for (std::int64_t k = 0; k < p.mrope_section[a]; ++k) axis[j++] = static_cast<int>(a);
  } else {
    const std::int64_t per = half / p.axes;
    for (std::int64_t j = 0; j < half; ++j) axis[j] = static_cast<int>(j / per);
  }
  return axis;
}

// Blocks of pairs that the half layout splits separately (the parts of a
// channel split); 1 otherwise.
std::int64_t half_blocks(const Params& p) { return p.mrope_section.empty() ? p.axes : 1; }

// ---- the hot loops: one row of float32, pairs turned by c/s ----

// Half layout over one block: pairs (j, j + h). InPlace tells the compiler
// that y is x, so that the vectorised loop needs no overlap check against it
// (a failing check would fall back to scalar code for in-place calls).
template <bool InPlace>
inline void turn_half(const float* x, float* y_, const float* c, const float* s, std::int64_t h) {
  float* y = InPlace ? const_cast<float*>(x) : y_;
  for (std::int64_t j = 0; j < h; ++j) {
    const float u = x[j], v = x[j + h];
    y[j] = u * c[j] - v * s[j];
    y[j + h] = v * c[j] + u * s[j];
  }
}

// Interleaved layout: pairs (2j, 2j + 1).
template <bool InPlace>
inline void turn_interleaved(const float* x, float* y_, const float* c, const float* s, std::int64_t h) {
  float* y = InPlace ? const_cast<float*>(x) : y_;
  for (std::int64_t j = 0; j < h; ++j) {
    const float u = x[2 * j], v = x[2 * j + 1];
    y[2 * j] = u * c[j] - v * s[j];
    y[2 * j + 1] = v * c[j] + u * s[j];
  }
}

// Element conversions to and from the float32 of the computation.
inline float to_f32(float v) { return v; }
inline float to_f32(double v) { return static_cast<float>(v); }
inline float to_f32(std::uint16_t v) { return half_to_float(v); }
template <class T> T from_f32(float v);
template <> inline float from_f32<float>(float v) { return v; }
template <> inline double from_f32<double>(float v) { return v; }
template <> inline std::uint16_t from_f32<std::uint16_t>(float v) { return float_to_half(v); }

}  // namespace

Layout parse_layout(const std::string& s) {
  if (s == "half") return Layout::half;
  if (s == "interleaved") return Layout::interleaved;
  throw_usage("the layout must be half or interleaved, not " + in_quotes(s));
}
const char* layout_name(Layout l) { return l == Layout::half ? "half" : "interleaved"; }

Scaling parse_scaling(const std::string& s) {
  for (Scaling v : {Scaling::none, Scaling::linear, Scaling::dynamic, Scaling::yarn, Scaling::llama3,
                    Scaling::longrope})
    if (s == scaling_name(v)) return v;
  throw_usage("the scaling must be none, linear, dynamic, yarn, llama3 or longrope, not " + in_quotes(s));
}
const char* scaling_name(Scaling s) {
  switch (s) {
    case Scaling::none: return "none";
    case Scaling::linear: return "linear";
    case Scaling::dynamic: return "dynamic";
    case Scaling::yarn: return "yarn";
    case Scaling::llama3: return "llama3";
    case Scaling::longrope: return "longrope";
  }
  return "none";
}

void validate(const Params& p) {
  if (!(std::isfinite(p.base) && p.base > 1)) throw_usage("--base must be a number greater than 1, not " + num(p.base));
  if (p.rotary_dim <= 0 || p.rotary_dim % 2 != 0)
    throw_usage("the rotary dimension must be even and positive, not " + std::to_string(p.rotary_dim));
  if (p.axes < 1 || p.axes > 8) throw_usage("--axes must be 1 to 8, not " + std::to_string(p.axes));
  const std::int64_t half = p.rotary_dim / 2;
  if (!p.mrope_section.empty()) {
    if (static_cast<int>(p.mrope_section.size()) != p.axes)
      throw_usage("--mrope-section has " + std::to_string(p.mrope_section.size()) + " sections for " +
                  std::to_string(p.axes) + " position axes");
    std::int64_t sum = 0;
    bool over = false;  // stop adding past R/2: up to 8 sizes of R/2 each could overflow
    for (std::int64_t s : p.mrope_section) {
      if (s < 0 || s > half) throw_usage("--mrope-section sizes must be 0 to R/2 = " + std::to_string(half));
      over = over || s > half - sum;
      if (!over) sum += s;
    }
    if (over || sum != half)
      throw_usage("--mrope-section sums to " + (over ? "more than " + std::to_string(half) : std::to_string(sum)) +
                  " frequencies, but the rotary dimension " + std::to_string(p.rotary_dim) + " has " +
                  std::to_string(half));
  } else if (p.rotary_dim % (2 * p.axes) != 0) {
    throw_usage("the rotary dimension " + std::to_string(p.rotary_dim) + " does not split into " +
                std::to_string(p.axes) + " even parts, one per position axis");
  }
  if (p.scaling == Scaling::none) return;
  if (!(std::isfinite(p.factor) && p.factor >= 1))
    throw_usage("--factor must be at least 1, not " + num(p.factor));
  if (p.scaling != Scaling::linear && p.original_max_pos < 1)
    throw_usage(std::string("--scaling ") + scaling_name(p.scaling) + " needs --original-max-pos (a positive context length)");
  const std::int64_t dim = part_dim(p);
  switch (p.scaling) {
    case Scaling::dynamic:
      if (dim <= 2) throw_usage("--scaling dynamic needs a rotary dimension above 2 (its exponent is R/(R-2))");
      break;
    case Scaling::yarn:
      if (!finite_positive(p.beta_fast)) throw_usage("--beta-fast must be positive, not " + num(p.beta_fast));
      if (!finite_positive(p.beta_slow)) throw_usage("--beta-slow must be positive, not " + num(p.beta_slow));
      if (!(std::isfinite(p.mscale) && p.mscale >= 0)) throw_usage("--mscale must be 0 (unset) or positive, not " + num(p.mscale));
      if (!(std::isfinite(p.mscale_all_dim) && p.mscale_all_dim >= 0))
        throw_usage("--mscale-all-dim must be 0 (unset) or positive, not " + num(p.mscale_all_dim));
      break;
    case Scaling::llama3:
      if (!finite_positive(p.low_freq_factor))
        throw_usage("--low-freq-factor must be positive, not " + num(p.low_freq_factor));
      if (!(std::isfinite(p.high_freq_factor) && p.high_freq_factor > p.low_freq_factor))
        throw_usage("--high-freq-factor must be greater than --low-freq-factor (" + num(p.low_freq_factor) +
                    "), not " + num(p.high_freq_factor));
      break;
    case Scaling::longrope:
      for (const auto* list : {&p.short_factor, &p.long_factor}) {
        const char* name = list == &p.short_factor ? "--short-factor" : "--long-factor";
        if (static_cast<std::int64_t>(list->size()) != dim / 2)
          throw_data(std::string(name) + " holds " + std::to_string(list->size()) + " factors; the rotary dimension " +
                     std::to_string(dim) + " needs " + std::to_string(dim / 2));
        for (double v : *list)
          if (!finite_positive(v)) throw_data(std::string(name) + " holds " + num(v) + "; the factors must be positive");
      }
      break;
    default:
      break;
  }
  if (p.attention_factor && !finite_positive(*p.attention_factor))
    throw_usage("--attention-factor must be positive, not " + num(*p.attention_factor));
}

std::vector<std::int64_t> parse_int_list(const std::string& s, const char* option, char sep, bool positive) {
  std::vector<std::int64_t> out;
  std::size_t at = 0;
  while (true) {
    const std::size_t end = s.find_first_of(std::string(1, sep) + ",", at);
    const std::string item = s.substr(at, end == std::string::npos ? std::string::npos : end - at);
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < (positive ? 1 : 0) || v > (1LL << 40))
      throw_usage(std::string(option) + " wants " + (positive ? "positive" : "non-negative") + " integers like " +
                  (sep == 'x' ? "16x16" : "16,24,24") + ", not " + in_quotes(s));
    out.push_back(v);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

Frequencies frequencies(const Params& p, std::int64_t seq_len) {
  validate(p);
  Frequencies part = scaled(p, part_dim(p), seq_len);
  if (!p.mrope_section.empty() || p.axes == 1) return part;
  Frequencies all;
  all.attention_factor = part.attention_factor;
  for (int a = 0; a < p.axes; ++a) all.inv_freq.insert(all.inv_freq.end(), part.inv_freq.begin(), part.inv_freq.end());
  return all;
}

std::int64_t Positions::slots() const { return checked_numel(shape); }

std::int64_t Positions::max_value() const {
  std::int64_t m = -1;
  for (std::int64_t v : values) m = std::max(m, v);
  return m;
}

namespace {
void add_offset(std::int64_t& v, std::int64_t offset) {
  if (__builtin_add_overflow(v, offset, &v)) throw_usage("--offset moves a position past 64 bits");
}
}  // namespace

Positions sequence_positions(std::int64_t seq, std::int64_t offset) {
  Positions p;
  p.shape = {seq};
  p.values = make_buffer<std::int64_t>(seq, "the positions of " + std::to_string(seq) + " tokens");
  for (std::int64_t s = 0; s < seq; ++s) {
    p.values[s] = s;
    add_offset(p.values[s], offset);
  }
  return p;
}

Positions grid_positions(const std::vector<std::int64_t>& grid, std::int64_t offset) {
  Positions p;
  p.axes = static_cast<int>(grid.size());
  const std::int64_t n = checked_numel(grid);
  p.shape = {n};
  p.values = make_buffer<std::int64_t>(checked_numel({n, static_cast<std::int64_t>(grid.size())}),
                                       "the positions of a grid " + shape_str(grid));
  for (std::int64_t k = 0; k < n; ++k) {
    std::int64_t rest = k;
    for (std::size_t a = grid.size(); a-- > 0;) {
      std::int64_t& v = p.values[a * n + k];
      v = rest % grid[a];
      rest /= grid[a];
      add_offset(v, offset);
    }
  }
  return p;
}

Positions tensor_positions(const Tensor& t, int axes, std::int64_t offset) {
  if (is_float(t.dtype()))
    throw_data(std::string("positions must be integers (int64), not ") + std::string(dtype_name(t.dtype())));
  Positions p;
  p.axes = axes;
  if (axes == 1) {
    p.shape = t.shape();
  } else {
    if (t.ndim() < 2 || t.dim(0) != axes)
      throw_data("positions for " + std::to_string(axes) + " axes must have shape [" + std::to_string(axes) +
                 ", ..., seq], not " + shape_str(t.shape()));
    p.shape.assign(t.shape().begin() + 1, t.shape().end());
  }
  const Tensor v = t.astype(DType::i8);
  const std::int64_t* src = v.data<std::int64_t>();
  p.values.assign(src, src + v.numel());
  for (std::int64_t& x : p.values) add_offset(x, offset);
  return p;
}

Rope::Rope(const Params& p, Positions positions, bool inverse) : p_(p), pos_(std::move(positions)) {
  if (pos_.axes != p_.axes)
    throw_usage("the positions have " + std::to_string(pos_.axes) + " axes, the embedding " + std::to_string(p_.axes));
  const std::int64_t top = pos_.max_value();
  f_ = frequencies(p_, top == std::numeric_limits<std::int64_t>::max() ? top : top + 1);
  half_ = p_.rotary_dim / 2;
  const std::int64_t slots = pos_.slots();
  const std::int64_t table = checked_numel({slots, half_});
  cos_ = make_buffer<float>(table, "the cos table " + shape_str({slots, half_}));
  sin_ = make_buffer<float>(table, "the sin table " + shape_str({slots, half_}));
  const std::vector<int> axis = axis_of_frequency(p_);
  // The rotation and its inverse: a R(theta) and R(-theta) / a.
  const double a = f_.attention_factor;
  const double cos_scale = inverse ? 1 / a : a, sin_scale = inverse ? -1 / a : a;
  // Angles, cosines and sines in double, rounded once to float32. A position
  // below 2^53 is exact in double, and its product with w is off by at most
  // half an ulp. Where a slot's position is one more than the previous slot's
  // (sequences, grids), (cos, sin) is advanced by the rotation of angle w
  // instead of calling sin and cos: each step adds about 3e-16, and the chain
  // restarts from a direct evaluation every kChain slots, so the drift stays
  // below 1e-14, a millionth of float32's half ulp, at every position.
  constexpr std::int64_t kChain = 32;
  std::vector<double> step_c(static_cast<std::size_t>(half_)), step_s(step_c.size());
  for (std::int64_t j = 0; j < half_; ++j) {
    step_c[j] = std::cos(f_.inv_freq[j]);
    step_s[j] = std::sin(f_.inv_freq[j]);
  }
  // The frequencies of each position axis are one contiguous run.
  std::vector<std::int64_t> run_begin(static_cast<std::size_t>(p_.axes) + 1, half_);
  for (std::int64_t j = half_; j-- > 0;) run_begin[axis[j]] = j;
  for (int a = p_.axes; a-- > 0;) run_begin[a] = std::min(run_begin[a], run_begin[a + 1]);
  parallel_for(slots, 4 * kChain, [&](std::int64_t b, std::int64_t e) {
    // The current slot's (cos, sin), unscaled, in double.
    std::vector<double> pc(static_cast<std::size_t>(half_)), ps(pc.size());
    for (std::int64_t k = b; k < e; ++k) {
      const bool restart = (k - b) % kChain == 0;
      for (int a = 0; a < p_.axes; ++a) {
        const std::int64_t* pos = pos_.values.data() + a * slots;
        const std::int64_t j0 = run_begin[a], j1 = run_begin[a + 1];
        if (!restart && pos[k] == pos[k - 1]) continue;  // same angles as the previous slot
        if (!restart && pos[k] > pos[k - 1] && pos[k] - 1 == pos[k - 1]) {  // (no overflow at the int64 ends)
          for (std::int64_t j = j0; j < j1; ++j) {
            const double cj = pc[j] * step_c[j] - ps[j] * step_s[j];
            ps[j] = ps[j] * step_c[j] + pc[j] * step_s[j];
            pc[j] = cj;
          }
        } else {
          const double p = static_cast<double>(pos[k]);
          for (std::int64_t j = j0; j < j1; ++j) {
            const double angle = p * f_.inv_freq[j];
            pc[j] = std::cos(angle);
            ps[j] = std::sin(angle);
          }
        }
      }
      float* c = cos_.data() + k * half_;
      float* s = sin_.data() + k * half_;
      for (std::int64_t j = 0; j < half_; ++j) {
        c[j] = static_cast<float>(pc[j] * cos_scale);
        s[j] = static_cast<float>(ps[j] * sin_scale);
      }
    }
  });
}

namespace {

// Where each row of x ([..., dim]) finds its slot: slot = sum(index[a] * stride[a])
// over the axes of x without the last.
std::vector<std::int64_t> slot_strides(const Shape& xs, const Shape& ps, std::size_t seq_axis) {
  const std::size_t k = xs.size() - 1;
  std::vector<std::int64_t> stride(k, 0);
  if (ps.size() == 1) {
    // One-axis positions line up with the sequence axis, wherever it is.
    if (ps[0] != xs[seq_axis])
      throw_data("the positions hold " + std::to_string(ps[0]) + " values per axis for a sequence of " +
                 std::to_string(xs[seq_axis]) + " tokens (axis " + std::to_string(seq_axis) + " of " +
                 shape_str(xs) + ")");
    stride[seq_axis] = 1;
    return stride;
  }
  Shape rows(xs.begin(), xs.end() - 1);
  if (ps.size() > k)
    throw_data("positions of shape " + shape_str(ps) + " do not broadcast to the tokens " + shape_str(rows));
  std::int64_t st = 1;
  for (std::size_t i = ps.size(); i-- > 0;) {
    const std::size_t ax = k - ps.size() + i;
    if (ps[i] == xs[ax])
      stride[ax] = st;
    else if (ps[i] != 1)
      throw_data("positions of shape " + shape_str(ps) + " do not broadcast to the tokens " + shape_str(rows));
    st *= ps[i];
  }
  return stride;
}

}  // namespace

void Rope::apply(const Tensor& x, Tensor& out, int seq_axis) const {
  const DType dt = x.dtype();
  if (dt != DType::f2 && dt != DType::f4 && dt != DType::f8)
    throw_data(std::string("rope-embed turns float16, float32 or float64 tensors, not ") + std::string(dtype_name(dt)));
  if (x.ndim() < 2)
    throw_data("the input must have a sequence axis and a channel axis ([..., seq, dim]), not shape " +
               shape_str(x.shape()));
  const int nd = static_cast<int>(x.ndim());
  const int sa = seq_axis < 0 ? seq_axis + nd : seq_axis;
  if (sa < 0 || sa >= nd - 1)
    throw_usage("--seq-axis " + std::to_string(seq_axis) + " is not an axis before the last of " + shape_str(x.shape()));
  const std::int64_t dim = x.shape().back();
  if (dim < p_.rotary_dim)
    throw_data("the input has " + std::to_string(dim) + " channels per token (" + shape_str(x.shape()) +
               "), fewer than the rotary dimension " + std::to_string(p_.rotary_dim));
  if (&out != &x && (out.dtype() != dt || out.shape() != x.shape())) out = Tensor::uninitialized(dt, x.shape());
  const std::vector<std::int64_t> stride = slot_strides(x.shape(), pos_.shape, static_cast<std::size_t>(sa));
  const Shape& xs = x.shape();
  const std::size_t k = xs.size() - 1;
  const std::int64_t rows = dim ? x.numel() / dim : 0;
  const std::int64_t R = p_.rotary_dim, h = half_;
  const std::int64_t blocks = half_blocks(p_), hb = h / blocks;
  const float* cos_all = cos_.data();
  const float* sin_all = sin_.data();
  const Layout layout = p_.layout;

  auto turn = [&](const float* src, float* dst, std::int64_t slot) {
    const float* c = cos_all + slot * h;
    const float* s = sin_all + slot * h;
    const bool same = src == dst;
    if (layout == Layout::interleaved) {
      (same ? turn_interleaved<true> : turn_interleaved<false>)(src, dst, c, s, h);
    } else {
      for (std::int64_t b = 0; b < blocks; ++b)
        (same ? turn_half<true> : turn_half<false>)(src + 2 * b * hb, dst + 2 * b * hb, c + b * hb, s + b * hb, hb);
    }
  };

  auto run = [&](auto tag) {
    using T = decltype(tag);
    // float16 is held as its bits (std::uint16_t).
    const T* in = reinterpret_cast<const T*>(x.bytes());
    T* o = reinterpret_cast<T*>(out.bytes());
    // Rows per chunk: at least 64 KiB of data each, so threads pay off.
    const std::int64_t grain = std::max<std::int64_t>(1, (64 << 10) / std::max<std::int64_t>(1, dim * sizeof(T)));
    parallel_for(rows, grain, [&](std::int64_t r0, std::int64_t r1) {
      // The row's index over the axes before the last, advanced like an odometer.
      std::vector<std::int64_t> idx(k, 0);
      std::int64_t slot = 0, rest = r0;
      for (std::size_t a = k; a-- > 0;) {
        idx[a] = rest % xs[a];
        rest /= xs[a];
        slot += idx[a] * stride[a];
      }
      std::vector<float> scratch;  // float32 copy of a row for float16/64
      if constexpr (!std::is_same_v<T, float>) scratch.resize(static_cast<std::size_t>(dim));
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* src = in + r * dim;
        T* dst = o + r * dim;
        if constexpr (std::is_same_v<T, float>) {
          turn(src, dst, slot);
          if (dst != src && dim > R) std::memcpy(dst + R, src + R, static_cast<std::size_t>(dim - R) * sizeof(float));
        } else {
          float* f = scratch.data();
          for (std::int64_t i = 0; i < R; ++i) f[i] = to_f32(src[i]);
          turn(f, f, slot);
          for (std::int64_t i = 0; i < R; ++i) dst[i] = from_f32<T>(f[i]);
          if (dst != src && dim > R) std::memcpy(dst + R, src + R, static_cast<std::size_t>(dim - R) * sizeof(T));
        }
        for (std::size_t a = k; a-- > 0;) {
          slot += stride[a];
          if (++idx[a] < xs[a]) break;
          slot -= stride[a] * xs[a];
          idx[a] = 0;
        }
      }
    });
  };
  if (dt == DType::f4) run(float{});
  else if (dt == DType::f8) run(double{});
  else run(std::uint16_t{});
}

Tensor Rope::apply(const Tensor& x, int seq_axis) const {
  Tensor out;
  apply(x, out, seq_axis);
  return out;
}

Tensor Rope::table(const std::vector<float>& t) const {
  Shape shape = pos_.shape;
  shape.push_back(p_.rotary_dim);
  Tensor out(DType::f4, shape);
  float* o = out.data<float>();
  const std::int64_t R = p_.rotary_dim, h = half_, blocks = half_blocks(p_), hb = h / blocks;
  // Channel i of the layout reads frequency j.
  std::vector<std::int64_t> freq(static_cast<std::size_t>(R));
  for (std::int64_t i = 0; i < R; ++i)
    freq[i] = p_.layout == Layout::interleaved ? i / 2 : (i / (2 * hb)) * hb + i % hb;
  for (std::int64_t k = 0, slots = pos_.slots(); k < slots; ++k)
    for (std::int64_t i = 0; i < R; ++i) o[k * R + i] = t[k * h + freq[i]];
  return out;
}
Tensor Rope::cos_table() const { return table(cos_); }
Tensor Rope::sin_table() const { return table(sin_); }

Tensor convert_layout(const Tensor& t, Layout from, Layout to, std::int64_t rotary_dim, std::int64_t heads,
                      bool weights) {
  if (t.ndim() == 0) throw_data("a 0-d tensor has no channels to reorder");
  if (heads < 1) throw_usage("--heads must be positive, not " + std::to_string(heads));
  const std::size_t axis = weights ? 0 : t.ndim() - 1;
  const std::int64_t n = t.dim(axis);
  const char* what = weights ? "rows" : "channels";
  if (n % heads != 0)
    throw_data(std::string("the ") + std::to_string(n) + " " + what + " of " + shape_str(t.shape()) +
               " do not split into " + std::to_string(heads) + " heads");
  const std::int64_t head_dim = n / heads;
  const std::int64_t R = rotary_dim ? rotary_dim : head_dim;
  if (R % 2 != 0 || R < 0)
    throw_usage("the rotary dimension must be even and positive, not " + std::to_string(R));
  if (R > head_dim)
    throw_data("each head has " + std::to_string(head_dim) + " " + what + ", fewer than the rotary dimension " +
               std::to_string(R));
  // src[i]: where channel i of a head comes from.
  std::vector<std::int64_t> src(static_cast<std::size_t>(head_dim));
  for (std::int64_t i = 0; i < head_dim; ++i) src[i] = i;
  const std::int64_t h = R / 2;
  if (from != to) {
    for (std::int64_t j = 0; j < h; ++j) {
      if (to == Layout::half) {  // interleaved (2j, 2j+1) -> half (j, j+h)
        src[j] = 2 * j;
        src[j + h] = 2 * j + 1;
      } else {  // half (j, j+h) -> interleaved (2j, 2j+1)
        src[2 * j] = j;
        src[2 * j + 1] = j + h;
      }
    }
  }
  Tensor out = Tensor::uninitialized(t.dtype(), t.shape());
  // The axis as [outer, n, inner] items of `inner` bytes.
  std::int64_t outer = 1, inner = static_cast<std::int64_t>(t.itemsize());
  for (std::size_t a = 0; a < axis; ++a) outer *= t.dim(a);
  for (std::size_t a = axis + 1; a < t.ndim(); ++a) inner *= t.dim(a);
  const std::byte* in = t.bytes();
  std::byte* o = out.bytes();
  const auto item = static_cast<std::size_t>(inner);
  for (std::int64_t b = 0; b < outer; ++b)
    for (std::int64_t hd = 0; hd < heads; ++hd) {
      const std::int64_t base = (b * n + hd * head_dim);
      for (std::int64_t i = 0; i < head_dim; ++i)
        std::memcpy(o + (base + i) * inner, in + (base + src[i]) * inner, item);
    }
  return out;
}

}  // namespace nnkit::rope
