// Colour maps, the series palette and nice ticks for nnkit::plot.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "nnkit/ops/plot.hpp"

namespace nnkit::plot {

namespace {

using Rgbf = std::array<float, 3>;

// matplotlib's viridis and magma (van der Walt and Smith), entries 0, 5, ...,
// 255 of the 256-entry tables: evenly spaced, so linear interpolation between
// them stays within about 1/255 of the full table.
constexpr Rgbf viridis_points[] = {
    {0.267004, 0.004874, 0.329415},
    {0.273809, 0.031497, 0.358853},
    {0.278791, 0.062145, 0.386592},
    {0.281924, 0.089666, 0.412415},
    {0.283197, 0.115680, 0.436115},
    {0.282623, 0.140926, 0.457517},
    {0.280255, 0.165693, 0.476498},
    {0.276194, 0.190074, 0.493001},
    {0.270595, 0.214069, 0.507052},
    {0.263663, 0.237631, 0.518762},
    {0.255645, 0.260703, 0.528312},
    {0.246811, 0.283237, 0.535941},
    {0.237441, 0.305202, 0.541921},
    {0.227802, 0.326594, 0.546532},
    {0.218130, 0.347432, 0.550038},
    {0.208623, 0.367752, 0.552675},
    {0.199430, 0.387607, 0.554642},
    {0.190631, 0.407061, 0.556089},
    {0.182256, 0.426184, 0.557120},
    {0.174274, 0.445044, 0.557792},
    {0.166617, 0.463708, 0.558119},
    {0.159194, 0.482237, 0.558073},
    {0.151918, 0.500685, 0.557587},
    {0.144759, 0.519093, 0.556572},
    {0.137770, 0.537492, 0.554906},
    {0.131172, 0.555899, 0.552459},
    {0.125394, 0.574318, 0.549086},
    {0.121148, 0.592739, 0.544641},
    {0.119423, 0.611141, 0.538982},
    {0.121380, 0.629492, 0.531973},
    {0.128087, 0.647749, 0.523491},
    {0.140210, 0.665859, 0.513427},
    {0.157851, 0.683765, 0.501686},
    {0.180653, 0.701402, 0.488189},
    {0.208030, 0.718701, 0.472873},
    {0.239374, 0.735588, 0.455688},
    {0.274149, 0.751988, 0.436601},
    {0.311925, 0.767822, 0.415586},
    {0.352360, 0.783011, 0.392636},
    {0.395174, 0.797475, 0.367757},
    {0.440137, 0.811138, 0.340967},
    {0.487026, 0.823929, 0.312321},
    {0.535621, 0.835785, 0.281908},
    {0.585678, 0.846661, 0.249897},
    {0.636902, 0.856542, 0.216620},
    {0.688944, 0.865448, 0.182725},
    {0.741388, 0.873449, 0.149561},
    {0.793760, 0.880678, 0.120005},
    {0.845561, 0.887322, 0.099702},
    {0.896320, 0.893616, 0.096335},
    {0.945636, 0.899815, 0.112838},
    {0.993248, 0.906157, 0.143936}};
constexpr Rgbf magma_points[] = {
    {0.001462, 0.000466, 0.013866},
    {0.007588, 0.006356, 0.044973},
    {0.018815, 0.016026, 0.084584},
    {0.035520, 0.028397, 0.125209},
    {0.056615, 0.042160, 0.167446},
    {0.078815, 0.054184, 0.211667},
    {0.102815, 0.063010, 0.257854},
    {0.129380, 0.067935, 0.305443},
    {0.159018, 0.068354, 0.352688},
    {0.191460, 0.064818, 0.396152},
    {0.225302, 0.060445, 0.431742},
    {0.258857, 0.059706, 0.457710},
    {0.291366, 0.064553, 0.475462},
    {0.322899, 0.073782, 0.487408},
    {0.353773, 0.085373, 0.495501},
    {0.384299, 0.097855, 0.501002},
    {0.414709, 0.110431, 0.504662},
    {0.445163, 0.122724, 0.506901},
    {0.475780, 0.134577, 0.507921},
    {0.506629, 0.145958, 0.507806},
    {0.537755, 0.156894, 0.506551},
    {0.569172, 0.167454, 0.504105},
    {0.600868, 0.177743, 0.500394},
    {0.632805, 0.187893, 0.495332},
    {0.664915, 0.198075, 0.488836},
    {0.697098, 0.208501, 0.480835},
    {0.729216, 0.219437, 0.471279},
    {0.761077, 0.231214, 0.460162},
    {0.792427, 0.244242, 0.447543},
    {0.822926, 0.259016, 0.433573},
    {0.852126, 0.276106, 0.418573},
    {0.879464, 0.296125, 0.403118},
    {0.904281, 0.319610, 0.388137},
    {0.925937, 0.346844, 0.374959},
    {0.944006, 0.377643, 0.365136},
    {0.958464, 0.411324, 0.360014},
    {0.969680, 0.446936, 0.360311},
    {0.978210, 0.483612, 0.366025},
    {0.984622, 0.520713, 0.376698},
    {0.989363, 0.557873, 0.391671},
    {0.992785, 0.594891, 0.410283},
    {0.995122, 0.631696, 0.431951},
    {0.996580, 0.668256, 0.456192},
    {0.997254, 0.704611, 0.482635},
    {0.997285, 0.740772, 0.510983},
    {0.996727, 0.776795, 0.541039},
    {0.995680, 0.812706, 0.572645},
    {0.994222, 0.848540, 0.605696},
    {0.992440, 0.884330, 0.640099},
    {0.990570, 0.920049, 0.675675},
    {0.988717, 0.955742, 0.712242},
    {0.987053, 0.991438, 0.749504}};
// matplotlib's coolwarm: Moreland's diverging map at 33 even control points.
constexpr Rgbf coolwarm_points[] = {
    {0.229806, 0.298718, 0.753683},
    {0.266234, 0.353095, 0.801467},
    {0.303869, 0.406535, 0.844959},
    {0.342804, 0.458758, 0.883726},
    {0.383013, 0.509419, 0.917388},
    {0.424370, 0.558148, 0.945620},
    {0.466667, 0.604563, 0.968155},
    {0.509635, 0.648281, 0.984788},
    {0.552953, 0.688929, 0.995376},
    {0.596262, 0.726149, 0.999836},
    {0.639176, 0.759600, 0.998151},
    {0.681291, 0.788965, 0.990363},
    {0.722193, 0.813953, 0.976575},
    {0.761465, 0.834303, 0.956945},
    {0.798692, 0.849786, 0.931689},
    {0.833467, 0.860208, 0.901069},
    {0.865395, 0.865410, 0.865396},
    {0.897787, 0.848937, 0.820881},
    {0.924128, 0.827385, 0.774508},
    {0.944469, 0.800927, 0.726736},
    {0.958853, 0.769768, 0.678008},
    {0.967328, 0.734133, 0.628752},
    {0.969954, 0.694267, 0.579375},
    {0.966811, 0.650421, 0.530264},
    {0.958003, 0.602842, 0.481776},
    {0.943661, 0.551751, 0.434244},
    {0.923945, 0.497309, 0.387970},
    {0.899046, 0.439559, 0.343230},
    {0.869187, 0.378313, 0.300267},
    {0.834621, 0.312874, 0.259301},
    {0.795632, 0.241284, 0.220526},
    {0.752535, 0.157246, 0.184115},
    {0.705673, 0.015556, 0.150233}};

template <std::size_t N>
Rgb interpolate(const Rgbf (&pts)[N], double t) {
  const double s = t * (N - 1);
  const std::size_t i = std::min<std::size_t>(static_cast<std::size_t>(s), N - 2);
  const double f = s - static_cast<double>(i);
  auto channel = [&](int c) {
    const double v = pts[i][c] + f * (pts[i + 1][c] - pts[i][c]);
    return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
  };
  return {channel(0), channel(1), channel(2)};
}

}  // namespace

ColorMap parse_colormap(const std::string& name) {
  if (name == "viridis") return ColorMap::viridis;
  if (name == "magma") return ColorMap::magma;
  if (name == "gray" || name == "grey") return ColorMap::gray;
  if (name == "coolwarm") return ColorMap::coolwarm;
  throw_usage("unknown colour map '" + name + "' (viridis, magma, gray or coolwarm)");
}

Rgb colormap(ColorMap m, double t) {
  if (std::isnan(t)) return {128, 128, 128};
  t = std::clamp(t, 0.0, 1.0);
  switch (m) {
    case ColorMap::viridis:
      return interpolate(viridis_points, t);
    case ColorMap::magma:
      return interpolate(magma_points, t);
    case ColorMap::coolwarm:
      return interpolate(coolwarm_points, t);
    case ColorMap::gray:
      break;
  }
  const auto v = static_cast<std::uint8_t>(std::lround(t * 255));
  return {v, v, v};
}

Rgb series_color(std::size_t k) {
  // matplotlib's "tab10" cycle: distinct for the common colour blindnesses.
  static constexpr Rgb tab10[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                  {188, 189, 34},  {23, 190, 207}};
  return tab10[k % 10];
}

double nice_step(double lo, double hi, int target) {
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return 1;
  const double raw = span / std::max(1, target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  if (!(p > 0)) return raw > 0 ? raw : span;  // a subnormal span: its power of ten underflows to 0
  const double m = raw / p;
  // The first of 1, 2, 5, 10 that is at least the raw step.
  const double nice = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
  return nice * p;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo)) {
    ticks.push_back(lo);
    return ticks;
  }
  double step = nice_step(lo, hi, target);
  // A range that holds only one multiple of the step: ask for more ticks.
  for (int more = 2 * target + 2, i = 0; i < 4 && std::floor(hi / step) - std::ceil(lo / step) < 1;
       ++i, more *= 2)
    step = nice_step(lo, hi, more);
  const double eps = step * 1e-9;
  for (double k = std::ceil((lo - eps) / step); k * step <= hi + eps; k += 1) {
    // Far from 0 (|k| above 2^53) k + 1 == k: the loop would never end.
    if (k + 1 == k || ticks.size() >= 1000) break;
    const double v = k * step;
    ticks.push_back(std::fabs(v) < eps ? 0.0 : v);  // never "-0"
  }
  if (ticks.empty()) ticks = {lo, hi};  // no step can tell the two ends apart: label them
  return ticks;
}

std::string tick_label(double value, double step) {
  char buf[64];
  if (value == 0) return "0";
  if (!std::isfinite(value)) {
    std::snprintf(buf, sizeof buf, "%g", value);
    return buf;
  }
  if (!(step > 0) || !std::isfinite(step)) step = std::fabs(value);  // no usable step: the value's own scale
  const double big = std::max(std::fabs(value), step);
  if (big >= 1e6 || step < 1e-4) {
    // Scientific, with as many mantissa digits as the step needs (the
    // difference of the exponents is clamped as a double: it may be huge).
    const double exponents = std::floor(std::log10(big)) - std::floor(std::log10(step));
    const int digits = static_cast<int>(std::clamp(exponents, 0.0, 8.0));
    std::snprintf(buf, sizeof buf, "%.*e", digits, value);
    return buf;
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

}  // namespace nnkit::plot
