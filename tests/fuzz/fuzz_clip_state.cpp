// clip-score --merge's input: a retrieval shard's state, safetensors with
// metadata (clip::shard_from_state). What it accepts must survive a round trip
// through shard_state, and a merge of it must not crash.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/clip.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  Input in = fuzz::memory_input(fuzz::bytes(data, size));
  clip::ShardState st;
  ReadOptions opt;
  opt.metadata = &st.metadata;
  if (!fuzz::expected([&] { st.tensors = read_tensors(in, opt); })) return 0;
  clip::RetrievalShard s;
  if (!fuzz::expected([&] { s = clip::shard_from_state(std::move(st), "fuzz"); })) return 0;

  clip::RetrievalShard t;
  fuzz::check(fuzz::expected([&] { t = clip::shard_from_state(clip::shard_state(s), "round trip"); }),
              "shard_from_state refused what shard_state wrote");
  fuzz::check(t.images == s.images && t.texts == s.texts && t.block == s.block && t.part.index == s.part.index &&
                  t.part.count == s.part.count && t.fingerprint == s.fingerprint && t.row_begin == s.row_begin &&
                  t.image_to_text == s.image_to_text && t.text_competitors == s.text_competitors,
              "a shard changed in a round trip");
  (void)fuzz::expected([&] { (void)clip::merge_retrieval({s}); });
  return 0;
}
