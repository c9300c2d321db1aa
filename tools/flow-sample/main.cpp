// flow-sample: flow-matching / rectified-flow sampling, encoding (data to
// noise) and ODE log-likelihoods. The solvers are nnkit/ops/flow.hpp, the
// models nnkit/ops/models.hpp; this file reads options and files and writes
// results.
#include <cmath>
#include <cstdio>
#include <memory>

#include "nnkit/cli.hpp"
#include "nnkit/formats/safetensors.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/flow.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/progress.hpp"
#include "nnkit/shard.hpp"

using namespace nnkit;

namespace {

struct Loaded {
  std::unique_ptr<models::Model> model;
  std::vector<NamedTensor> tensors;
  std::string name = "built-in";
};

Loaded load_model(const std::string& path) {
  Loaded l;
  if (path.empty()) {
    l.model = models::default_model();
    return l;
  }
  Input in = Input::open(path);
  l.name = in.name();
  if (detect_format(in) != Format::safetensors)
    throw_data("model " + in.name() + " is not a safetensors file (a model is safetensors with \"kind\" in its "
               "__metadata__)");
  safetensors::File f = safetensors::read(in);
  l.model = models::from_tensors(f.tensors, f.metadata, in.name());
  l.tensors = std::move(f.tensors);
  return l;
}

Tensor read_rows(const std::string& path, const char* what, std::int64_t dim, const Shape& sample_shape) {
  Tensor t = read_finite_rows(path, what);
  if (t.dim(0) > 0 && t.numel() / t.dim(0) != dim)
    throw_data(std::string(what) + " " + (path == "-" ? "<stdin>" : path) + " has rows " + shape_str(Shape(t.shape().begin() + 1, t.shape().end())) +
               ", the model wants " + shape_str(sample_shape));
  return t;
}

struct Sink {
  Output out;
  Format format;
  Sink(const std::string& path, const std::string& to)
      : out(Output::open(path)), format(output_format(to, path, out.is_terminal())) {
    if (format == Format::npz || format == Format::png)
      throw_usage("flow-sample cannot write " + std::string(format_name(format)) + " (" + out.name() + ")");
  }
  void write(Tensor t, const std::string& name) {
    std::vector<NamedTensor> ts{{format == Format::safetensors ? name : "", std::move(t)}};
    write_tensors(out, format, ts);
    out.commit();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, solver = "euler", init_path, trajectory_path, reverse_path, logprob_path, shard;
  long long n = 0, steps = 50, seed = 0, cls = -1, hutchinson = 0, max_steps = 100000;
  double shift = 1, rtol = 1e-5, atol = 1e-5;
  bool stats = false;
  cli::Tool tool("flow-sample", "Sample a flow-matching (rectified-flow) model with an ODE solver, encode data to "
                                "noise, or compute log-likelihoods.");
  tool.synopsis("[--model FILE] -n N [OPTIONS] [-o OUTPUT]  |  --reverse DATA  |  --log-prob DATA")
      .inputs(0, 0)
      .description(
          "Convention (SD3, diffusers' FlowMatchEulerDiscreteScheduler): x_t = (1 - t) x0 + t eps with t in [0, 1], "
          "t = 1 pure noise eps ~ N(0, I), and the model predicts the velocity v = dx_t/dt = eps - x0. Sampling "
          "draws x_1 from N(0, I) and integrates dx/dt = v(x, t) from t = 1 to t = 0 on the grid t_i = 1 - i/S, "
          "optionally shifted as in SD3: t' = s t / (1 + (s - 1) t). Models trained the other way round (t = 0 "
          "noise, as the original rectified-flow code) declare time_convention=reversed in their metadata.\n\n"
          "Solvers: euler (1 model evaluation per step), midpoint and heun (2), rk4 (4), and dopri5, adaptive "
          "Dormand-Prince 5(4) with --rtol and --atol (an error when its step underflows). The state is "
          "integrated in double. --reverse runs the ODE from data to noise; --log-prob integrates the "
          "instantaneous change of variables, log p(x0) = log N(x_1) + integral of div v dt, with the exact "
          "divergence (closed form for gmm; D forward-mode Jacobian-vector products through an MLP, D <= 64) or "
          "Hutchinson's estimator (--hutchinson K).\n\n"
          "A model is a safetensors file with \"kind\" in its __metadata__: gmm (an exact Gaussian mixture: its "
          "velocity is closed-form), mlp with prediction=velocity, or the coupling flows nice and realnvp, which "
          "sample exactly (z from the prior, x = f^-1(z); --reverse: z = f(x); --log-prob from the log-determinant) "
          "and take no solver options (see nnkit-formats(5)). Without --model the "
          "built-in 2-D mixture (8 Gaussians of std 0.1 on the circle of radius 2) is used.\n\n"
          "Randomness is counter-based: row i's x_1 depends only on (--seed, i), so --shard K/N writes exactly rows "
          "[K n/N, (K+1) n/N) of the whole run, bit for bit, with any --threads (fixed-step solvers; dopri5 "
          "chooses one step size for the rows it integrates together, so its shards agree to its tolerance).")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .option("model,m", &model_path, "FILE", "the model (safetensors); default: the built-in 2-D mixture",
              cli::Complete::file)
      .option("samples,n", &n, "N", "number of samples (with --init, --reverse or --log-prob: their rows)")
      .choice("solver", &solver, {"euler", "midpoint", "heun", "rk4", "dopri5"}, "the ODE solver")
      .option("steps,s", &steps, "S", "steps of a fixed-step solver")
      .option("shift", &shift, "S", "SD3 time shift of the grid, t' = S t / (1 + (S - 1) t); 1: none")
      .option("rtol", &rtol, "R", "dopri5 relative tolerance")
      .option("atol", &atol, "A", "dopri5 absolute tolerance")
      .option("max-steps", &max_steps, "K", "dopri5: give up after K step attempts")
      .option("class,c", &cls, "C", "sample class C of a conditional model (gmm: component C)")
      .option("init", &init_path, "FILE", "start from this x_1 [N, ...] instead of seeded noise",
              cli::Complete::file)
      .option("reverse", &reverse_path, "DATA", "encode: integrate the data [N, ...] from t = 0 to the noise x_1",
              cli::Complete::file)
      .option("log-prob", &logprob_path, "DATA",
              "write log p(x) per row [N] (float64) by the change of variables along the ODE", cli::Complete::file)
      .option("hutchinson", &hutchinson, "K",
              "--log-prob: Hutchinson's divergence estimator with K Rademacher probes per row (0: exact)")
      .option("trajectory", &trajectory_path, "FILE", "also write every step, [steps+1, N, ...], the start first",
              cli::Complete::file)
      .option("seed", &seed, "SEED", "seed of the counter-based noise (and of the Hutchinson probes)")
      .option("shard", &shard, "K/N", "write only part K of N of the rows (0-based), exactly as in the whole run")
      .flag("stats", &stats, "report model evaluations and steps on stderr")
      .example("flow-sample -n 1000 -o samples.npy", "1000 samples of the built-in 2-D mixture (50 Euler steps)")
      .example("flow-sample -m examples/models/rf2_moons.safetensors -n 5000 --steps 2 -o moons.npy",
               "the 2-rectified moons model in two Euler steps")
      .example("flow-sample -m examples/models/rf_moons.safetensors -n 5000 --solver dopri5 --stats",
               "adaptive steps; the number of model evaluations on stderr")
      .example("flow-sample -m m.safetensors --reverse data.npy -o noise.npy && "
               "flow-sample -m m.safetensors --init noise.npy --solver rk4 -o back.npy",
               "encode data to noise and decode it again")
      .example("flow-sample -m examples/models/rf_moons.safetensors --log-prob data.npy --solver rk4 -s 100",
               "log-likelihood of each row")
      .example("flow-sample -n 1000000 --shard $SLURM_ARRAY_TASK_ID/16 -o part_$(printf %02d $SLURM_ARRAY_TASK_ID).npy",
               "one part of a job array; tensor-cat part_*.npy (in order) is the whole run");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    // Options first: a usage error wins over a missing file.
    const bool reversing = t.given("reverse"), scoring = t.given("log-prob");
    if (t.given("samples") && n < 0) throw_usage("-n must be at least 0");
    if (reversing + scoring + t.given("init") > 1) throw_usage("--init, --reverse and --log-prob cannot be combined");
    if (!t.given("samples") && !t.given("init") && !reversing && !scoring)
      throw_usage("say how many samples: -n N (or --init FILE, --reverse DATA or --log-prob DATA)");
    if (t.given("hutchinson") && !scoring) throw_usage("--hutchinson goes with --log-prob");
    if (hutchinson < 0 || hutchinson > 4096) throw_usage("--hutchinson must be from 0 to 4096");
    if (scoring && t.given("trajectory")) throw_usage("--trajectory does not go with --log-prob");
    if (max_steps < 1) throw_usage("--max-steps must be at least 1");
    flow::Options o;
    o.solver = *flow::parse_solver(solver);
    if (o.solver == flow::Solver::dopri5 && t.given("steps"))
      throw_usage("dopri5 chooses its own steps: leave out --steps (or pick a fixed-step solver)");
    if (o.solver != flow::Solver::dopri5 && (t.given("rtol") || t.given("atol") || t.given("max-steps")))
      throw_usage("--rtol, --atol and --max-steps apply to --solver dopri5");
    if (o.solver == flow::Solver::dopri5 && t.given("shift"))
      throw_usage("--shift reshapes the grid of fixed-step solvers; dopri5 has none");
    o.steps = steps;
    o.shift = shift;
    o.rtol = rtol;
    o.atol = atol;
    o.max_steps = max_steps;
    flow::validate(o);
    if (t.given("class") && cls < -1) throw_usage("--class must be -1 (unconditional) or a class index");
    int from_stdin = 0;
    for (const std::string* p : {&model_path, &init_path, &reverse_path, &logprob_path}) from_stdin += *p == "-";
    if (from_stdin > 1) throw_usage("only one of --model, --init, --reverse and --log-prob can read stdin");
    std::optional<Part> part;
    if (t.given("shard")) part = parse_part(shard);

    Loaded m = load_model(model_path);
    const auto* coupling = dynamic_cast<const flow::Coupling*>(m.model.get());
    if (coupling) {
      for (const char* o : {"solver", "steps", "shift", "rtol", "atol", "max-steps", "hutchinson", "trajectory"})
        if (t.given(o))
          throw_usage(std::string("model ") + m.name + " is a coupling flow (" + models::kind_name(m.model->kind()) +
                      "): it samples exactly, x = f^-1(z), so --" + o + " does not apply");
    }
    std::unique_ptr<flow::Field> field;
    if (!coupling) field = std::make_unique<flow::Field>(*m.model, m.name);
    std::unique_ptr<flow::Divergence> div;
    if (scoring && !coupling) div = flow::divergence(*field, m.tensors, hutchinson, static_cast<std::uint64_t>(seed));
    if (t.given("class")) {
      if (m.model->num_classes() == 0) throw_usage("the model is unconditional: it takes no --class");
      if (cls >= m.model->num_classes())
        throw_usage("--class " + std::to_string(cls) + ": the model has classes 0 to " +
                    std::to_string(m.model->num_classes() - 1));
      if (scoring) throw_usage("--log-prob is unconditional: leave out --class");
    }

    // The rows: given (--init, --reverse, --log-prob) or counted (-n).
    const std::int64_t d = m.model->dim();
    Tensor x;
    std::int64_t total = n;
    const bool given_rows = t.given("init") || reversing || scoring;
    if (given_rows) {
      const std::string& path = reversing ? reverse_path : scoring ? logprob_path : init_path;
      x = read_rows(path, reversing ? "--reverse data" : scoring ? "--log-prob data" : "--init", d,
                    m.model->sample_shape());
      total = x.dim(0);
      if (t.given("samples") && n != total)
        throw_usage("-n " + std::to_string(n) + " but the input has " + std::to_string(total) + " rows");
    }
    std::int64_t first = 0, last = total;
    if (part) std::tie(first, last) = part_range(total, *part);
    const std::int64_t rows = last - first;
    Shape shape = m.model->sample_shape();
    shape.insert(shape.begin(), rows);
    if (given_rows) {
      x = slice_axis(x, 0, first, last).reshaped(shape);
    } else {
      x = Tensor(DType::f4, shape);
      const auto noise = diffusion::counter_noise(static_cast<std::uint64_t>(seed), d);
      float* p = x.data<float>();
      for (std::int64_t i = 0; i < rows; ++i) {
        if (coupling)
          coupling->draw_prior(static_cast<std::uint64_t>(seed), first + i, p + i * d);
        else
          noise(0, first + i, p + i * d);
      }
    }
    std::vector<std::int64_t> labels;
    if (t.given("class")) labels.assign(static_cast<std::size_t>(rows), cls);

    // Outputs after the inputs: a closed stdin must not become an output's descriptor.
    Sink out(t.output_path(), t.to_format());
    std::unique_ptr<Sink> traj;
    if (!trajectory_path.empty()) traj = std::make_unique<Sink>(trajectory_path, "");
    const bool adaptive = o.solver == flow::Solver::dopri5;
    Progress progress("flow-sample", adaptive ? 0 : steps, t.quiet() || adaptive);
    Tensor trajectory;
    flow::Run run;
    run.labels = labels.empty() ? nullptr : labels.data();
    run.first_row = first;
    run.trajectory = traj ? &trajectory : nullptr;
    run.progress = [&](std::int64_t done, std::int64_t) {
      if (!adaptive) progress.update(done);
    };
    flow::Stats st;
    if (coupling) {
      // Exact: one pass of f or f^-1.
      if (scoring) {
        Tensor r(DType::f8, {rows});
        coupling->log_prob(x.data<float>(), rows, r.data<double>());
        out.write(std::move(r), "log_prob");
      } else {
        Tensor y(DType::f4, x.shape());
        if (reversing)
          coupling->forward(x.data<float>(), rows, y.data<float>(), nullptr);
        else
          coupling->inverse(x.data<float>(), rows, y.data<float>());
        out.write(std::move(y), reversing ? "noise" : "samples");
      }
      if (stats)
        std::fprintf(stderr, "flow-sample: %s coupling flow, exact: one pass of %lld layers, %lld rows\n",
                     models::kind_name(m.model->kind()), static_cast<long long>(coupling->layers()),
                     static_cast<long long>(rows));
      return;
    }
    if (scoring) {
      const std::vector<double> lp = flow::log_prob(*field, *div, o, x, &st, run);
      progress.finish();
      Tensor r(DType::f8, {rows});
      std::copy(lp.begin(), lp.end(), r.data<double>());
      out.write(std::move(r), "log_prob");
    } else {
      st = flow::sample(*field, o, x, reversing, run);
      progress.finish();
      if (traj) traj->write(std::move(trajectory), "trajectory");
      out.write(std::move(x), reversing ? "noise" : "samples");
    }
    if (stats) {
      std::string what = std::string(flow::solver_name(o.solver)) + ": " + std::to_string(st.steps) + " steps";
      if (adaptive) what += " (" + std::to_string(st.rejected) + " rejected)";
      std::fprintf(stderr, "flow-sample: %s, %lld model evaluations per sample, %lld rows\n", what.c_str(),
                   static_cast<long long>(st.evaluations), static_cast<long long>(rows));
    }
  });
}
