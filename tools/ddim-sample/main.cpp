// ddim-sample: DDIM/DDPM sampling and DDIM inversion with diffusers'
// schedules. The sampler is nnkit/ops/diffusion.hpp, the models
// nnkit/ops/models.hpp; this file reads options and files and writes results.
#include <cmath>
#include <map>
#include <memory>

#include "nnkit/cli.hpp"
#include "nnkit/formats/safetensors.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/progress.hpp"
#include "nnkit/shard.hpp"

using namespace nnkit;

namespace {

std::unique_ptr<models::Model> load_model(const std::string& path) {
  Input in = Input::open(path);
  if (detect_format(in) != Format::safetensors)
    throw_data("model " + in.name() + " is not a safetensors file (a model is safetensors with \"kind\" in its "
               "__metadata__)");
  safetensors::File f = safetensors::read(in);
  return models::from_tensors(f.tensors, f.metadata, in.name());
}

Tensor read_rows(const std::string& path, const char* what) { return read_finite_rows(path, what); }

// [N, H, W, C] in [-1, 1] as one 8-bit image: a grid of ceil(sqrt(N)) columns.
Tensor image_grid(const Tensor& x) {
  if (x.ndim() != 4 || x.dim(3) < 1 || x.dim(3) > 4)
    throw_usage("--to png needs image-shaped samples [N, H, W, C] with C of 1 to 4, not " + shape_str(x.shape()) +
                " (declare \"sample_shape\" in the model)");
  const std::int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const auto cols = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(std::max<std::int64_t>(n, 1)))));
  const std::int64_t rows = (n + cols - 1) / cols;
  Tensor img(DType::u1, {std::max<std::int64_t>(rows, 1) * h, cols * w, c});
  std::uint8_t* o = img.data<std::uint8_t>();
  const float* p = x.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t xx = 0; xx < w; ++xx)
        for (std::int64_t k = 0; k < c; ++k) {
          const double v = (p[((i * h + y) * w + xx) * c + k] + 1.0) * 127.5;
          o[(((i / cols) * h + y) * cols * w + (i % cols) * w + xx) * c + k] =
              static_cast<std::uint8_t>(std::lround(std::min(255.0, std::max(0.0, v))));
        }
  return img;
}

// An output opened before the work starts (so a bad path fails early) and
// committed after it.
struct Sink {
  Output out;
  Format format;
  Sink(const std::string& path, const std::string& to)
      : out(Output::open(path)), format(output_format(to, path, out.is_terminal())) {
    if (format == Format::npz) throw_usage("ddim-sample cannot write npz (" + out.name() + ")");
  }
  void write(Tensor t, const std::string& name) {
    if (format == Format::png) t = image_grid(t);
    std::vector<NamedTensor> ts{{format == Format::safetensors ? name : "", std::move(t)}};
    write_tensors(out, format, ts);
    out.commit();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, beta_schedule = "linear", spacing = "leading", prediction = "model", final_alpha = "one",
                          labels_path, init_path, trajectory_path, invert_path, shard;
  long long n = 0, train_steps = 1000, steps = 50, steps_offset = 0, cls = -1, seed = 0;
  double beta_start = 0.0001, beta_end = 0.02, eta = 0, clip_sample = 0, threshold = 0, threshold_max = 1,
         guidance = 1;
  bool rescale = false, compat = false;
  cli::Tool tool("ddim-sample", "Sample a diffusion model with DDIM (or DDPM), or invert data to noise.");
  tool.synopsis("[--model FILE] -n N [OPTIONS] [-o OUTPUT]  |  --invert DATA [OPTIONS]")
      .inputs(0, 0)
      .description(
          "Draws N samples x_0 [N, ...] from a noise-prediction model by DDIM: x_T ~ N(0, I), then for each "
          "timestep t of the list, x0^ and eps^ from the model and x_t' = sqrt(abar_t') x0^ + sqrt(1 - abar_t' - "
          "s^2) eps^ + s z with s = eta sqrt((1 - abar_t')/(1 - abar_t) (1 - abar_t/abar_t')). eta 0 is DDIM "
          "(deterministic), eta 1 the DDPM ancestral step. Schedules, timestep lists and the step are those of "
          "diffusers' DDIMScheduler; the previous timestep t' is the next entry of the list (--diffusers-compat: "
          "t - T//S as diffusers computes it).\n\n"
          "A model is a safetensors file with \"kind\" in its __metadata__ (gmm: an exact Gaussian mixture; mlp: "
          "a time-conditioned MLP exported from PyTorch; see nnkit-formats(5)); it declares its prediction type "
          "and may declare its training schedule (train_steps, beta_schedule, beta_start, beta_end, "
          "rescale_zero_snr), used unless the options say otherwise. Without --model the built-in 2-D mixture "
          "(8 Gaussians of std 0.1 on the circle of radius 2) is sampled.\n\n"
          "Randomness is counter-based: row i's x_T and its noise at step k depend only on (--seed, i, k), so "
          "--shard K/N writes exactly rows [K n/N, (K+1) n/N) of the whole run, bit for bit, with any --threads.")
      .output_formats({"npy", "safetensors", "txt", "csv", "json", "png"},
                      "from the -o extension, else npy on a pipe and txt on a terminal; png: [N, H, W, C] samples "
                      "in [-1, 1] as one grid")
      .option("model,m", &model_path, "FILE", "the model (safetensors); default: the built-in 2-D mixture",
              cli::Complete::file)
      .option("samples,n", &n, "N", "number of samples (with --init or --invert: their rows)")
      .option("train-steps", &train_steps, "T", "training timesteps of the schedule")
      .choice("beta-schedule", &beta_schedule, {"linear", "scaled_linear", "squaredcos_cap_v2"},
              "the beta schedule")
      .option("beta-start", &beta_start, "B", "first beta (linear, scaled_linear)")
      .option("beta-end", &beta_end, "B", "last beta (linear, scaled_linear)")
      .flag("rescale-zero-snr", &rescale, "rescale the schedule to zero terminal SNR (Lin et al. 2023)")
      .option("steps,s", &steps, "S", "sampling steps")
      .choice("spacing", &spacing, {"leading", "linspace", "trailing"}, "timestep spacing (as diffusers)")
      .option("steps-offset", &steps_offset, "K", "added to every timestep of leading spacing")
      .option("eta", &eta, "ETA", "noise of each step, 0 to 1: 0 is DDIM, 1 the DDPM ancestral step")
      .choice("prediction", &prediction, {"model", "epsilon", "v_prediction", "sample"},
              "what the model predicts: as declared in the model, or this")
      .option("clip-sample", &clip_sample, "R",
              "clip x0^ to [-R, R] at every step (0: off; diffusers' default 1 ruins data outside [-1, 1])")
      .option("threshold", &threshold, "RATIO",
              "dynamic thresholding (Imagen): clip x0^ at the RATIO quantile of |x0^|, 0 < RATIO <= 1 (0: off)")
      .option("threshold-max", &threshold_max, "M", "largest threshold of dynamic thresholding (sample_max_value)")
      .choice("final-alpha", &final_alpha, {"one", "first"},
              "abar after the last step: 1, or abar_0 (diffusers' set_alpha_to_one true or false)")
      .flag("diffusers-compat", &compat, "previous timestep t - T//S, as diffusers computes it")
      .option("class,c", &cls, "C", "sample class C of a conditional model (gmm: component C; -1: unconditional)")
      .option("labels", &labels_path, "FILE", "one class per sample [N] (integers; -1: unconditional)",
              cli::Complete::file)
      .option("guidance,g", &guidance, "W", "classifier-free guidance: out = out_u + W (out_c - out_u)")
      .option("init", &init_path, "FILE", "start from this x_T [N, ...] instead of seeded noise",
              cli::Complete::file)
      .option("trajectory", &trajectory_path, "FILE", "also write every step, [S+1, N, ...], x_T first",
              cli::Complete::file)
      .option("invert", &invert_path, "DATA",
              "DDIM inversion: map the data [N, ...] to noise x_T (eta 0); sampling from it reconstructs the data",
              cli::Complete::file)
      .option("seed", &seed, "SEED", "seed of the counter-based noise")
      .option("shard", &shard, "K/N", "write only part K of N of the rows (0-based), exactly as in the whole run")
      .example("ddim-sample -n 1000 -o samples.npy", "1000 samples of the built-in 2-D mixture")
      .example("ddim-sample -m examples/models/moons.safetensors -n 5000 --steps 50 -o moons.npy",
               "sample the shipped moons model")
      .example("ddim-sample -m examples/models/classes.safetensors -n 500 --class 2 --guidance 3",
               "class 2 of a conditional model with classifier-free guidance")
      .example("ddim-sample -m m.safetensors --invert data.npy -o noise.npy && "
               "ddim-sample -m m.safetensors --init noise.npy -o back.npy",
               "invert data to noise and reconstruct it")
      .example("ddim-sample -n 1000000 --shard $SLURM_ARRAY_TASK_ID/16 -o part_$(printf %02d $SLURM_ARRAY_TASK_ID).npy",
               "one part of a job array; tensor-cat part_*.npy (in order) is the whole run");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    // Options first: a usage error wins over a missing file.
    const bool inverting = t.given("invert");
    if (t.given("samples") && n < 0) throw_usage("-n must be at least 0");
    if (!t.given("samples") && !t.given("init") && !inverting)
      throw_usage("say how many samples: -n N (or --init FILE, or --invert DATA)");
    if (t.given("init") && inverting) throw_usage("--init and --invert cannot be combined");
    if (train_steps < 1 || train_steps > 1000000) throw_usage("--train-steps must be from 1 to 1000000");
    if (steps < 1) throw_usage("--steps must be at least 1");
    if (steps_offset < 0) throw_usage("--steps-offset must be at least 0");
    if (!(eta >= 0 && eta <= 1)) throw_usage("--eta must be from 0 to 1");
    if (inverting && eta != 0) throw_usage("--invert runs DDIM (eta 0); leave out --eta");
    if (!(clip_sample >= 0) || !std::isfinite(clip_sample)) throw_usage("--clip-sample must be 0 (off) or positive");
    if (!(threshold >= 0 && threshold <= 1)) throw_usage("--threshold must be from 0 (off) to 1");
    if (!(threshold_max >= 1) || !std::isfinite(threshold_max)) throw_usage("--threshold-max must be at least 1");
    if (!std::isfinite(guidance)) throw_usage("--guidance must be finite");
    if (!(beta_start > 0 && beta_end > 0 && beta_start < 1 && beta_end < 1))
      throw_usage("--beta-start and --beta-end must be in (0, 1)");
    if (t.given("class") && t.given("labels")) throw_usage("--class and --labels cannot be combined");
    if (t.given("class") && cls < -1) throw_usage("--class must be -1 (unconditional) or a class index");
    if (guidance != 1 && !t.given("class") && !t.given("labels"))
      throw_usage("--guidance needs a class: --class C or --labels FILE");
    int from_stdin = 0;
    for (const std::string* p : {&model_path, &init_path, &invert_path, &labels_path}) from_stdin += *p == "-";
    if (from_stdin > 1) throw_usage("only one of --model, --init, --invert and --labels can read stdin");
    std::optional<Part> part;
    if (t.given("shard")) part = parse_part(shard);

    std::unique_ptr<models::Model> model = model_path.empty() ? models::default_model() : load_model(model_path);
    if (prediction != "model") model->set_output(*models::parse_output(prediction));
    const auto declared = model->output();
    if (declared != models::Output::epsilon && declared != models::Output::v_prediction &&
        declared != models::Output::sample)
      throw_data("model " + (model_path.empty() ? std::string("built-in") : model_path) + " predicts " +
                 models::output_name(declared) + ": sample it with flow-sample");

    diffusion::Options o;
    // The schedule the options give, and the model's declared one where they are silent.
    o.schedule.train_steps = train_steps;
    o.schedule.betas = beta_schedule == "linear"          ? diffusion::BetaSchedule::linear
                       : beta_schedule == "scaled_linear" ? diffusion::BetaSchedule::scaled_linear
                                                          : diffusion::BetaSchedule::squaredcos_cap_v2;
    o.schedule.beta_start = beta_start;
    o.schedule.beta_end = beta_end;
    o.schedule.rescale_zero_snr = rescale;
    std::vector<std::string> given;
    for (const auto& [option, key] : {std::pair{"train-steps", "train_steps"}, {"beta-schedule", "beta_schedule"},
                                      {"beta-start", "beta_start"}, {"beta-end", "beta_end"},
                                      {"rescale-zero-snr", "rescale_zero_snr"}})
      if (t.given(option)) given.push_back(key);
    o.schedule = diffusion::model_schedule(model->metadata(), o.schedule, model_path, given);
    o.steps = steps;
    o.spacing = spacing == "leading" ? diffusion::Spacing::leading
                : spacing == "linspace" ? diffusion::Spacing::linspace
                                        : diffusion::Spacing::trailing;
    o.steps_offset = steps_offset;
    o.eta = eta;
    o.final_alpha_one = final_alpha == "one";
    o.diffusers_compat = compat;
    o.clip_sample = clip_sample;
    o.threshold = threshold;
    o.threshold_max = threshold_max;
    o.guidance = guidance;
    diffusion::plan(o);  // schedule errors before any work

    // The rows: given (--init, --invert) or counted (-n).
    Tensor x;
    Shape row_shape = model->sample_shape();
    std::int64_t total = n;
    if (t.given("init") || inverting) {
      x = read_rows(inverting ? invert_path : init_path, inverting ? "--invert data" : "--init");
      if (x.numel() / std::max<std::int64_t>(x.dim(0), 1) != model->dim() && x.dim(0) > 0)
        throw_data(std::string(inverting ? "--invert data " : "--init ") + (inverting ? invert_path : init_path) +
                   " has rows " + shape_str(Shape(x.shape().begin() + 1, x.shape().end())) + ", the model wants " +
                   shape_str(model->sample_shape()));
      total = x.dim(0);
      if (t.given("samples") && n != total)
        throw_usage("-n " + std::to_string(n) + " but the input has " + std::to_string(total) + " rows");
    }
    std::int64_t first = 0, last = total;
    if (part) std::tie(first, last) = part_range(total, *part);
    const std::int64_t rows = last - first;
    Shape shape = row_shape;
    shape.insert(shape.begin(), rows);
    if (t.given("init") || inverting) {
      x = slice_axis(x, 0, first, last).reshaped(shape);
    } else {
      x = Tensor(DType::f4, shape);
      const auto noise = diffusion::counter_noise(static_cast<std::uint64_t>(seed), model->dim());
      float* p = x.data<float>();
      for (std::int64_t i = 0; i < rows; ++i) noise(0, first + i, p + i * model->dim());
    }

    // Classes.
    std::vector<std::int64_t> labels;
    if (t.given("class") || t.given("labels")) {
      if (model->num_classes() == 0) throw_usage("the model is unconditional: it takes no --class or --labels");
      if (t.given("class")) {
        if (cls >= model->num_classes())
          throw_usage("--class " + std::to_string(cls) + ": the model has classes 0 to " +
                      std::to_string(model->num_classes() - 1));
        labels.assign(static_cast<std::size_t>(rows), cls);
      } else {
        Input in = Input::open(labels_path);
        Tensor l = read_one_tensor(in);
        if (is_float(l.dtype())) throw_data("--labels " + in.name() + " holds floats, want integer classes");
        if (l.ndim() != 1 || l.dim(0) != total)
          throw_data("--labels " + in.name() + " has shape " + shape_str(l.shape()) + ", want [" +
                     std::to_string(total) + "]");
        l = l.astype(DType::i8);
        const std::int64_t* p = l.data<std::int64_t>();
        for (std::int64_t i = 0; i < total; ++i)
          if (p[i] < -1 || p[i] >= model->num_classes())
            throw_data("--labels " + in.name() + ": label " + std::to_string(p[i]) + " at row " + std::to_string(i) +
                       " is outside -1 to " + std::to_string(model->num_classes() - 1));
        labels.assign(p + first, p + last);
      }
    }

    // Outputs after the inputs: a closed stdin must not become an output's descriptor.
    Sink out(t.output_path(), t.to_format());
    std::unique_ptr<Sink> traj;
    if (!trajectory_path.empty()) traj = std::make_unique<Sink>(trajectory_path, "");
    Progress progress("ddim-sample", steps, t.quiet());
    Tensor trajectory;
    diffusion::Run run;
    run.labels = labels.empty() ? nullptr : labels.data();
    run.first_row = first;
    run.noise = diffusion::counter_noise(static_cast<std::uint64_t>(seed), model->dim());
    run.trajectory = traj ? &trajectory : nullptr;
    run.progress = [&](std::int64_t done, std::int64_t) { progress.update(done); };
    if (inverting)
      diffusion::invert(*model, o, x, run);
    else
      diffusion::sample(*model, o, x, run);
    progress.finish();
    if (traj) traj->write(std::move(trajectory), "trajectory");
    out.write(std::move(x), inverting ? "noise" : "samples");
  });
}
