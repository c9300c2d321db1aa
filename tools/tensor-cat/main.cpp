// tensor-cat: concatenate tensors along an axis (the merge step of a sharded job).
#include "nnkit/cli.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/shard.hpp"

using namespace nnkit;

int main(int argc, char** argv) {
  long long axis = 0;
  cli::Tool tool("tensor-cat", "Concatenate tensors along an axis.");
  tool.synopsis("[OPTIONS] INPUT...")
      .description(
          "Joins every tensor of every input, in order, along --axis (numpy.concatenate). An "
          "input may be a stream of several tensors, so 'cat part*.npy | tensor-cat' merges "
          "shards (name them so that the glob sorts them: part_07 before part_10). All tensors must share the dtype and every extent but the axis.")
      .option("axis,a", &axis, "A", "axis to join along; negative counts from the end")
      .example("tensor-cat a.npy b.npy -o ab.npy", "stack rows of a and b")
      .example("tensor-cat --axis -1 x.npy y.npy", "join along the last axis")
      .example("cat out.part*.npy | tensor-cat > out.npy", "merge the results of a sharded job");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    std::vector<Tensor> tensors;
    for (const std::string& path : t.input_paths()) {
      Input in = Input::open(path);
      for_each_tensor(in, [&](NamedTensor&& nt) { tensors.push_back(std::move(nt.tensor)); });
    }
    if (tensors.empty()) throw_data("the inputs hold no tensors to concatenate");
    std::vector<const Tensor*> parts;
    for (const Tensor& x : tensors) parts.push_back(&x);
    const std::size_t ax = normalize_axis(axis, tensors.front().ndim());
    Tensor joined = concat(parts, ax);
    Output out = Output::open(t.output_path());
    write_tensors(out, output_format(t.to_format(), t.output_path(), out.is_terminal()),
                  {NamedTensor{"", std::move(joined)}});
    out.commit();
  });
}
