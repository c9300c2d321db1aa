// vq-train --reduce's input: the npy stream of a shard's k-means statistics
// (vq::stats_from_tensors). What it accepts must survive a round trip through
// stats_to_tensors, and the reduce step must run on it without a crash.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/vq.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  Input in = fuzz::memory_input(fuzz::bytes(data, size));
  std::vector<Tensor> tensors;
  if (!fuzz::expected([&] {
        for (NamedTensor& nt : read_tensors(in)) tensors.push_back(std::move(nt.tensor));
      }))
    return 0;
  if (tensors.size() != static_cast<std::size_t>(vq::stats_tensors)) return 0;
  vq::ClusterStats s;
  if (!fuzz::expected([&] { s = vq::stats_from_tensors(tensors, "fuzz"); })) return 0;

  const std::vector<Tensor> again = vq::stats_to_tensors(s);
  fuzz::check(again.size() == tensors.size(), "stats_to_tensors changed the number of tensors");
  vq::ClusterStats t;
  fuzz::check(fuzz::expected([&] { t = vq::stats_from_tensors(again, "round trip"); }),
              "stats_from_tensors refused what stats_to_tensors wrote");
  const std::vector<Tensor> third = vq::stats_to_tensors(t);
  for (std::size_t i = 0; i < again.size(); ++i)
    fuzz::check(fuzz::same_tensor(again[i], third[i]), "statistics changed in a round trip");

  // The reduce on zero codes, for small codebooks only (the fuzzer's time).
  if (s.k * s.d <= (1 << 16)) {
    const std::vector<float> codes(static_cast<std::size_t>(s.k * s.d), 0.f);
    (void)fuzz::expected([&] { (void)vq::update_codes(s, codes.data(), 0, 0, 0); });
  }
  return 0;
}
