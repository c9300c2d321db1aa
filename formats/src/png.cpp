// PNG through libpng's classic API.
//
// libpng reports errors with longjmp, which must never cross a C++ frame that
// has a destructor to run. So the two functions that call setjmp (decode and
// encode) hold only raw pointers and POD structs; every buffer they touch is
// allocated by their C++ callers beforehand, errors are copied into a char
// array by the error callback, and the callers throw once libpng has returned.
#include "nnkit/formats/png.hpp"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace nnkit::png {

namespace {

constexpr unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

// Per side; PNG itself allows 2^31 - 1 but nothing sensible is that wide.
constexpr png_uint_32 max_side = 1u << 24;
// Largest decoded tensor we are willing to allocate.
constexpr std::uint64_t max_image_bytes = std::uint64_t{4} << 30;
// Largest ancillary chunk (iCCP, zTXt, ...) libpng may decompress.
constexpr png_alloc_size_t max_chunk_bytes = 8u << 20;
// deflate cannot expand better than 1032:1 (a 258-byte match in two 1-bit
// codes), so a file of n bytes holds at most ~1032 n bytes of pixel data. This
// lets a tiny file that claims a huge image be refused before allocating.
constexpr std::uint64_t max_deflate_ratio = 1032;

bool little_endian_host() {
  const std::uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

// Everything the libpng callbacks share with us: plain data only.
struct Messages {
  char error[200];
  char warning[200];  // the last warning, to explain "Invalid IHDR data"
};

void copy_message(char* dst, std::size_t cap, const char* msg) {
  std::snprintf(dst, cap, "%s", msg ? msg : "unknown error");
}

void on_error(png_structp png, png_const_charp msg) {
  auto* m = static_cast<Messages*>(png_get_error_ptr(png));
  copy_message(m->error, sizeof m->error, msg);
  png_longjmp(png, 1);  // back to the setjmp in decode/encode; never returns
}

// libpng warns about harmless things (bad ancillary CRCs, odd sRGB profiles);
// tools must not print them, but IHDR problems are explained by the warning.
void on_warning(png_structp png, png_const_charp msg) {
  auto* m = static_cast<Messages*>(png_get_error_ptr(png));
  copy_message(m->warning, sizeof m->warning, msg);
}

struct Source {
  const unsigned char* data;
  std::size_t size;
  std::size_t pos;
};

void read_from_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<Source*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) png_error(png, "truncated file (input ends early)");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

struct ImageInfo {
  png_uint_32 width, height;
  int channels;              // after expansion
  int bit_depth;             // after expansion: 8 or 16
  std::size_t rowbytes;      // after expansion
  std::uint64_t stored_bits;  // width * height * bits per stored pixel
};

// Reads the header (rows == nullptr) or the whole image into rows, which the
// caller sized from a previous header-only call. Returns false with
// msg->error set when libpng fails.
bool decode(Source* src, ImageInfo* out, png_bytep* rows, Messages* msg) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, on_error, on_warning);
  if (!png) {
    copy_message(msg->error, sizeof msg->error, "cannot create a libpng reader (out of memory)");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    copy_message(msg->error, sizeof msg->error, "cannot create a libpng reader (out of memory)");
    return false;
  }
  // png and info are not modified after this point, so they are intact after
  // a longjmp back here.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, src, read_from_memory);
  png_set_user_limits(png, max_side, max_side);
  png_set_chunk_malloc_max(png, max_chunk_bytes);
  png_read_info(png, info);

  png_uint_32 width = 0, height = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, nullptr, nullptr);
  out->stored_bits = std::uint64_t{width} * height * depth * png_get_channels(png, info);

  // Values as stored: no gamma, no alpha premultiplication, no stripping.
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  } else if (depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  if (depth == 16 && little_endian_host()) png_set_swap(png);  // PNG is big-endian
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  out->width = width;
  out->height = height;
  out->channels = png_get_channels(png, info);
  out->bit_depth = png_get_bit_depth(png, info);
  out->rowbytes = png_get_rowbytes(png, info);

  if (rows) {
    png_read_image(png, rows);
    png_read_end(png, nullptr);  // checks the trailing chunks and IEND
  }
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// The encoded file grows in a caller-owned std::string; an exception must not
// escape into libpng, so allocation failure becomes a libpng error.
void write_to_string(png_structp png, png_bytep data, png_size_t n) {
  auto* s = static_cast<std::string*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    s->append(reinterpret_cast<const char*>(data), n);
  } catch (...) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory while encoding");
}

void flush_nothing(png_structp) {}

struct EncodeJob {
  png_uint_32 width, height;
  int color_type, bit_depth;
  png_bytep* rows;
  std::string* sink;
};

bool encode(const EncodeJob* job, Messages* msg) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, on_error, on_warning);
  if (!png) {
    copy_message(msg->error, sizeof msg->error, "cannot create a libpng writer (out of memory)");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    copy_message(msg->error, sizeof msg->error, "cannot create a libpng writer (out of memory)");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, job->sink, write_to_string, flush_nothing);
  // libpng's default write limits are 10^6 per side; allow anything PNG can hold.
  png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
  png_set_IHDR(png, info, job->width, job->height, job->bit_depth, job->color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (job->bit_depth == 16 && little_endian_host()) png_set_swap(png);
  png_write_image(png, job->rows);  // libpng copies each row before transforming it
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

std::string message_of(const Messages& m) {
  std::string s = m.error;
  // png_check_IHDR warns with the reason, then fails with a generic message.
  if (s.rfind("Invalid IHDR data", 0) == 0 && m.warning[0]) s += ": " + std::string(m.warning);
  return s;
}

}  // namespace

bool sniff(std::string_view first_bytes) {
  return first_bytes.size() >= sizeof signature &&
         std::memcmp(first_bytes.data(), signature, sizeof signature) == 0;
}

Tensor read(Input& in) {
  const std::string bytes = in.read_all();
  const std::string where = " (" + in.name() + ")";
  if (!sniff(bytes)) throw_data("png: not a PNG file (bad signature)" + where);

  Source src{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0};
  Messages msg{};
  ImageInfo info{};
  if (!decode(&src, &info, nullptr, &msg)) throw_data("png: " + message_of(msg) + where);

  if (info.bit_depth != 8 && info.bit_depth != 16)
    throw_internal("png: unexpected bit depth " + std::to_string(info.bit_depth) + where);
  const DType dtype = info.bit_depth == 16 ? DType::u2 : DType::u1;
  const Shape shape{info.height, info.width, info.channels};
  const std::int64_t nbytes = checked_nbytes(shape, dtype);
  const std::string dims = std::to_string(info.width) + "x" + std::to_string(info.height);
  if (static_cast<std::uint64_t>(nbytes) > max_image_bytes)
    throw_data("png: a " + dims + " image with " + std::to_string(info.channels) +
               " channels is larger than the 4 GiB limit" + where);
  if (info.stored_bits / 8 > max_deflate_ratio * bytes.size() + 4096)
    throw_data("png: header claims a " + dims + " image that " + std::to_string(bytes.size()) +
               " bytes cannot hold (truncated or corrupt file)" + where);
  if (info.rowbytes != static_cast<std::size_t>(nbytes) / info.height)
    throw_internal("png: unexpected row size " + std::to_string(info.rowbytes) + where);

  Tensor t(dtype, shape);
  std::vector<png_bytep> rows(info.height);
  auto* base = reinterpret_cast<png_bytep>(t.bytes());
  for (png_uint_32 y = 0; y < info.height; ++y) rows[y] = base + std::size_t{y} * info.rowbytes;

  src.pos = 0;
  ImageInfo again{};
  if (!decode(&src, &again, rows.data(), &msg)) throw_data("png: " + message_of(msg) + where);
  if (again.rowbytes != info.rowbytes || again.height != info.height)
    throw_internal("png: image layout changed between passes" + where);
  return t;
}

void write(Output& out, const Tensor& t) {
  const bool ok_type = t.dtype() == DType::u1 || t.dtype() == DType::u2;
  const bool ok_rank = t.ndim() == 2 || (t.ndim() == 3 && t.dim(2) >= 1 && t.dim(2) <= 4);
  if (!ok_type || !ok_rank)
    throw_usage("png: can only write uint8 or uint16 [H,W] or [H,W,C<=4] tensors, got " +
                std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape()));
  const std::int64_t h = t.dim(0), w = t.dim(1);
  const int c = t.ndim() == 3 ? static_cast<int>(t.dim(2)) : 1;
  if (h < 1 || w < 1)
    throw_usage("png: cannot write an empty image of shape " + shape_str(t.shape()));
  if (h > 0x7fffffff || w > 0x7fffffff)
    throw_usage("png: image of shape " + shape_str(t.shape()) +
                " exceeds PNG's limit of 2^31-1 pixels per side");

  static constexpr int color_types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                        PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  const std::size_t rowbytes = static_cast<std::size_t>(w) * c * t.itemsize();
  std::vector<png_bytep> rows(static_cast<std::size_t>(h));
  // libpng wants non-const rows but only reads them.
  auto* base = reinterpret_cast<png_bytep>(const_cast<std::byte*>(t.bytes()));
  for (std::size_t y = 0; y < rows.size(); ++y) rows[y] = base + y * rowbytes;

  std::string encoded;
  encoded.reserve(std::min<std::size_t>(t.nbytes() / 2 + 1024, std::size_t{64} << 20));
  EncodeJob job{static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), color_types[c - 1],
                t.dtype() == DType::u2 ? 16 : 8, rows.data(), &encoded};
  Messages msg{};
  if (!encode(&job, &msg)) throw_io("png: cannot encode " + out.name() + ": " + message_of(msg));
  out.write(encoded);
}

}  // namespace nnkit::png
