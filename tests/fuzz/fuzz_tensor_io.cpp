// The path every tool takes: detect_format, then for_each_tensor (npy
// streams, safetensors with metadata, npz, png, text), then write_tensors in
// every format. Writing npy and reading it back must give the same tensors.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/formats/tensor_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);
  {
    Input in = fuzz::memory_input(bytes);
    (void)fuzz::expected([&] { (void)detect_format(in); });
  }
  std::vector<NamedTensor> ts;
  std::map<std::string, std::string> meta;
  ReadOptions ro;
  ro.metadata = &meta;
  ro.text_float = size % 2 ? DType::f8 : DType::f4;
  Input in = fuzz::memory_input(bytes);
  if (!fuzz::expected([&] { for_each_tensor(in, [&](NamedTensor&& t) { ts.push_back(std::move(t)); }, ro); }))
    return 0;
  {
    Input one = fuzz::memory_input(bytes);
    (void)fuzz::expected([&] { (void)read_one_tensor(one); });
  }

  fuzz::StdoutCapture& cap = fuzz::StdoutCapture::get();
  WriteOptions wo;
  wo.metadata = meta;
  for (Format f : {Format::npy, Format::safetensors, Format::txt, Format::csv, Format::json, Format::png}) {
    cap.begin();
    bool wrote;
    {
      Output out = Output::open("-");
      wrote = fuzz::expected([&] {
        write_tensors(out, f, ts, wo);
        out.commit();
      });
    }
    const std::string written = cap.take();
    if (f != Format::npy) continue;
    fuzz::check(wrote, "write_tensors refused to write npy");
    Input back = fuzz::memory_input(written);
    std::vector<NamedTensor> us;
    fuzz::check(fuzz::expected([&] { us = read_tensors(back); }), "read_tensors refused write_tensors npy output");
    fuzz::check(us.size() == ts.size() || (ts.empty() && us.empty()), "tensor count changed through npy");
    for (std::size_t i = 0; i < ts.size() && i < us.size(); ++i)
      fuzz::check(fuzz::same_tensor(ts[i].tensor, us[i].tensor), "tensor changed through npy");
  }
  return 0;
}
