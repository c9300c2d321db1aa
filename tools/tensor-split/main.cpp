// tensor-split: contiguous, balanced parts of tensors along an axis (the shard
// step of a row-wise job; tensor-cat is its inverse).
#include "nnkit/cli.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/shard.hpp"

using namespace nnkit;

int main(int argc, char** argv) {
  long long parts = 0, axis = 0;
  std::string part, prefix;
  cli::Tool tool("tensor-split", "Split tensors into contiguous, balanced parts along an axis.");
  tool.synopsis("(--parts N | --part K/N) [OPTIONS] [INPUT]")
      .inputs(0, 1)
      .description(
          "Part K of N is a contiguous run of the axis of length L, in order: the first L mod N "
          "parts hold floor(L/N)+1 items and the others floor(L/N), as numpy.array_split. Parts "
          "are numbered from 0, as SLURM_ARRAY_TASK_ID with --array=0-(N-1). Every tensor of the "
          "input is split the same way, so a part of a stream is a stream of parts. "
          "tensor-cat of all parts in order gives back the input.")
      .option("parts,n", &parts, "N",
              "write all N parts: to files PREFIX0.npy ... with --prefix (numbers zero-padded to "
              "the width of N-1, so that a shell glob lists them in order), else as an N-tensor stream to -o")
      .option("part,p", &part, "K/N", "write only part K (0-based) of N")
      .option("prefix", &prefix, "PREFIX",
              "file name prefix for --parts; the extension follows --to (default npy)",
              cli::Complete::file)
      .option("axis,a", &axis, "A", "axis to split; negative counts from the end")
      .example("tensor-split --parts 4 --prefix shard_ data.npy", "writes shard_0.npy ... shard_3.npy")
      .example("tensor-split --part $SLURM_ARRAY_TASK_ID/8 data.npy -o part_$SLURM_ARRAY_TASK_ID.npy",
               "one shard of a job array")
      .example("tensor-split --part 1/3 --axis -1 x.npy -o mid.npy", "the middle third of the columns");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    if ((parts > 0) == !part.empty())
      throw_usage("give exactly one of --parts N and --part K/N");
    // A bound, so that an absurd N is refused at once instead of writing N empty parts.
    constexpr long long max_parts = 1000000;
    if (parts < 0 || parts > max_parts) throw_usage("--parts must be from 1 to " + std::to_string(max_parts));
    if (!prefix.empty() && parts == 0) throw_usage("--prefix goes with --parts");
    if (!prefix.empty() && t.output_path() != "-")
      throw_usage("--prefix names the output files; -o is for a single stream");
    Input in = Input::open(t.input_paths().front());
    std::vector<NamedTensor> tensors = read_tensors(in);
    auto part_of = [&](const NamedTensor& nt, Part p) {
      const std::size_t ax = normalize_axis(axis, nt.tensor.ndim());
      const auto [b, e] = part_range(nt.tensor.shape()[ax], p);
      return NamedTensor{nt.name, slice_axis(nt.tensor, ax, b, e)};
    };
    if (!part.empty()) {
      const Part p = parse_part(part);
      std::vector<NamedTensor> out_tensors;
      for (const auto& nt : tensors) out_tensors.push_back(part_of(nt, p));
      Output out = Output::open(t.output_path());
      write_tensors(out, output_format(t.to_format(), t.output_path(), out.is_terminal()), out_tensors);
      out.commit();
      return;
    }
    if (prefix.empty()) {
      std::vector<NamedTensor> out_tensors;
      for (long long k = 0; k < parts; ++k)
        for (const auto& nt : tensors) out_tensors.push_back(part_of(nt, {k, parts}));
      Output out = Output::open(t.output_path());
      write_tensors(out, output_format(t.to_format(), t.output_path(), out.is_terminal()), out_tensors);
      out.commit();
      return;
    }
    // All files or none: every part is written to its temporary first and
    // renamed into place only when all of them succeeded.
    const Format f = t.to_format().empty() ? Format::npy : parse_format(t.to_format());
    std::vector<Output> outs;
    const std::size_t width = std::to_string(parts - 1).size();
    for (long long k = 0; k < parts; ++k) {
      std::string number = std::to_string(k);
      number.insert(0, width - number.size(), '0');  // shard_07 sorts before shard_10 in a glob
      outs.push_back(Output::open(prefix + number + "." + format_name(f)));
      std::vector<NamedTensor> out_tensors;
      for (const auto& nt : tensors) out_tensors.push_back(part_of(nt, {k, parts}));
      write_tensors(outs.back(), f, out_tensors);
    }
    for (auto& o : outs) o.commit();
  });
}
