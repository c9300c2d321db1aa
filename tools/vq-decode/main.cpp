// vq-decode: codes back to vectors (flat, residual, product or FSQ), and
// patches back to images. The algorithm is nnkit/ops/vq.hpp.
#include <optional>

#include "nnkit/cli.hpp"
#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/vq.hpp"

using namespace nnkit;

int main(int argc, char** argv) {
  std::string codebook, fsq;
  bool residual = false;
  long long pq = 0, patch = 0;
  cli::Tool tool("vq-decode", "Vector quantization: the vectors of code indices (the inverse of vq-encode).");
  tool.synopsis("--codebook CB [OPTIONS] [INDICES]  |  --fsq L1,L2,... [OPTIONS] [INDICES]")
      .inputs(0, 1, "INDICES")
      .description(
          "INDICES holds integer code indices (any integer dtype, or floats that are whole numbers): [...] for a "
          "codebook [K, D], giving vectors [..., D] (float32); [..., L] with --residual and a codebook [L, K, D], "
          "giving the sum of the L codes; [..., M] with --pq M and a codebook [M, K, D/M], giving the M codes side "
          "by side; [...] with --fsq, giving the FSQ codes in [-1, 1]. An index outside the codebook is an error "
          "(exit 65) that names its position.\n\n"
          "--patch P turns vectors [h, w, P*P*C] back into an image [h*P, w*P, C]. PNG output (--to png or -o "
          "x.png) rounds the values to integers and clamps them to 0..255.")
      .option("codebook,c", &codebook, "FILE", "the codebook: [K, D], or [L, K, D] with --residual, [M, K, D/M] with --pq",
              cli::Complete::file)
      .flag("residual", &residual, "residual codebook [L, K, D]: indices [..., L], vectors are the sums of L codes")
      .option("pq", &pq, "M", "product codebook [M, K, D/M]: indices [..., M] (default: 0, off)")
      .option("fsq", &fsq, "L1,L2,...", "finite scalar quantization with these levels per channel (no codebook)")
      .option("patch", &patch, "P", "the vectors are P x P patches: write the image [h*P, w*P, C] (default: 0, off)")
      .example("vq-decode -c codes.npy idx.npy -o emb_q.npy", "the code vector of every index")
      .example("vq-encode -c palette.npy photo.png | vq-decode -c palette.npy -o photo_16.png",
               "colour quantization of a PNG, back to a PNG")
      .example("vq-decode -c rq.npy --residual idx.npy", "residual codes [..., L] back to vectors")
      .example("vq-decode --fsq 8,5,5,5 idx.npy", "FSQ indices back to codes in [-1, 1]")
      .example("vq-decode -c patches.npy --patch 8 tokens.npy --to png -o img.png", "patch tokens back to an image");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    const bool use_fsq = t.given("fsq");
    if (use_fsq && !codebook.empty()) throw_usage("give --codebook or --fsq, not both");
    if (!use_fsq && codebook.empty()) throw_usage("--codebook FILE is required (or --fsq LEVELS)");
    if (use_fsq && (residual || pq)) throw_usage("--fsq takes no --residual or --pq");
    if (pq < 0) throw_usage("--pq must be 1 or more (0: off), not " + std::to_string(pq));
    if (patch < 0) throw_usage("--patch must be 1 or more (0: off), not " + std::to_string(patch));
    std::optional<vq::Quantizer> q;
    if (use_fsq) {
      q = vq::Quantizer::fsq(vq::parse_levels(fsq));
    } else {
      Input cb = Input::open(codebook);
      q = vq::make_quantizer(read_one_tensor(cb), residual, pq, vq::Metric::l2, cb.name());
    }

    const Format f = output_format(t.to_format(), t.output_path(), t.output_path() == "-" && is_terminal_fd(1));
    if (f == Format::npz) throw_usage("vq-decode cannot write npz; write npy or safetensors");
    Input in = Input::open(t.input_paths().front());
    // Opened once the first tensor is read: a bad input creates nothing.
    std::optional<Output> out;
    std::vector<NamedTensor> held;
    std::int64_t count = 0;
    for_each_tensor(in, [&](NamedTensor&& nt) {
      const std::string where = count == 0 ? in.name() : in.name() + ", tensor " + std::to_string(count);
      Tensor v = vq::decode(*q, nt.tensor, where);
      if (!out) out.emplace(Output::open(t.output_path()));
      if (patch > 0) v = vq::unpatchify(v, patch, where);
      if (f == Format::png) v = vq::to_uint8_image(v);
      if (f == Format::npy)
        npy::write(*out, v);  // a stream: one tensor at a time
      else
        held.push_back({"vectors" + (count == 0 ? std::string() : "." + std::to_string(count)), std::move(v)});
      ++count;
    });
    if (f != Format::npy) {
      if (held.size() == 1 && f != Format::safetensors) held[0].name.clear();
      write_tensors(*out, f, held);
    }
    out->commit();
  });
}
