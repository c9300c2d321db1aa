// .npz reader: a zip archive (stored or deflated members) of .npy files, as
// numpy's savez and savez_compressed write it. The archive is read into memory
// and opened with libzip; each member's sizes are checked before it is inflated.
//
// libzip is loaded on first use, not linked: linked, it brings libcrypto, bzip2
// and lzma into the start-up of every tool (3.6M more instructions of symbol
// relocation per run, measured with callgrind), for a format few runs read.
#include "nnkit/formats/npz.hpp"

#include <dlfcn.h>
#include <zip.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>

#include "nnkit/formats/npy.hpp"

namespace nnkit::npz {

namespace {

// The libzip functions this reader uses, resolved from libzip.so.4 once.
#define NNKIT_LIBZIP_FUNCTIONS(X) X(zip_discard) X(zip_error_fini) X(zip_error_init) X(zip_error_strerror) X(zip_fclose) X(zip_file_get_error) X(zip_fopen_index) X(zip_fread) X(zip_get_error) X(zip_get_num_entries) X(zip_open_from_source) X(zip_source_buffer_create) X(zip_source_free) X(zip_stat_index) X(zip_stat_init)
struct LibZip {
#define NNKIT_LIBZIP_POINTER(name) decltype(&::name) name = nullptr;
  NNKIT_LIBZIP_FUNCTIONS(NNKIT_LIBZIP_POINTER)
#undef NNKIT_LIBZIP_POINTER
};

LibZip load_libzip() {
  void* handle = ::dlopen("libzip.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    throw Error(ExitCode::software, std::string("npz: reading .npz needs libzip (Debian package libzip4): ") + ::dlerror());
  LibZip lib;
#define NNKIT_LIBZIP_RESOLVE(name)                                                     \
  lib.name = reinterpret_cast<decltype(&::name)>(::dlsym(handle, #name));           \
  if (!lib.name) throw Error(ExitCode::software, "npz: libzip lacks " #name);
  NNKIT_LIBZIP_FUNCTIONS(NNKIT_LIBZIP_RESOLVE)
#undef NNKIT_LIBZIP_RESOLVE
  return lib;
}

const LibZip& libzip() {
  static const LibZip lib = load_libzip();
  return lib;
}


// No single array we accept is larger than this, whatever the archive claims.
constexpr std::uint64_t max_member_bytes = std::uint64_t{64} << 30;
// Deflate cannot expand data by more than about 1032:1; a member claiming a
// larger ratio is inconsistent (or a bomb). The slack covers tiny members.
constexpr std::uint64_t max_deflate_ratio = 1032;
constexpr std::uint64_t deflate_slack = 1024;

struct ZipDiscard {
  void operator()(zip_t* z) const { libzip().zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { libzip().zip_fclose(f); }
};

[[noreturn]] void fail(const std::string& what, const std::string& where) {
  throw_data("npz: " + what + " (" + where + ")");
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Checks the sizes the archive claims for one member before inflating it.
void check_member(const zip_stat_t& st, const std::string& member, const std::string& where) {
  const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((st.valid & need) != need) fail("member " + in_quotes(member) + " has no size information", where);
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
    fail("member " + in_quotes(member) + " is encrypted", where);
  if (st.size > max_member_bytes)
    fail("member " + in_quotes(member) + " claims " + std::to_string(st.size) +
             " bytes, more than the limit of " + std::to_string(max_member_bytes),
         where);
  if (st.comp_method == ZIP_CM_STORE) {
    if (st.size != st.comp_size)
      fail("stored member " + in_quotes(member) + " has size " + std::to_string(st.size) +
               " but compressed size " + std::to_string(st.comp_size),
           where);
  } else if (st.comp_method == ZIP_CM_DEFLATE) {
    if (st.size > st.comp_size * max_deflate_ratio + deflate_slack)
      fail("deflated member " + in_quotes(member) + " claims " + std::to_string(st.size) +
               " bytes from " + std::to_string(st.comp_size) + " compressed bytes",
           where);
  } else {
    fail("member " + in_quotes(member) + " uses unsupported compression method " +
             std::to_string(st.comp_method) + " (numpy writes stored or deflate)",
         where);
  }
}

// Inflates one member. The buffer grows with the data actually produced, so
// a wrong size in the directory cannot cause a large allocation by itself.
std::string read_member(zip_t* za, zip_uint64_t index, const zip_stat_t& st,
                        const std::string& member, const std::string& where) {
  std::unique_ptr<zip_file_t, ZipFileClose> zf(libzip().zip_fopen_index(za, index, 0));
  if (!zf)
    fail("cannot open member " + in_quotes(member) + ": " + libzip().zip_error_strerror(libzip().zip_get_error(za)),
         where);
  std::string out;
  out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(st.size, 1u << 20)));
  std::string chunk(1u << 20, '\0');
  for (;;) {
    zip_int64_t n = libzip().zip_fread(zf.get(), chunk.data(), chunk.size());
    if (n < 0)
      fail("cannot read member " + in_quotes(member) + ": " +
               libzip().zip_error_strerror(libzip().zip_file_get_error(zf.get())),
           where);
    if (n == 0) break;
    out.append(chunk.data(), static_cast<std::size_t>(n));
    if (out.size() > st.size) break;
  }
  if (out.size() != st.size)
    fail("member " + in_quotes(member) + " holds " + std::to_string(out.size()) +
             " bytes, not the " + std::to_string(st.size) + " its directory entry claims",
         where);
  return out;
}

}  // namespace

bool sniff(std::string_view b) {
  // A local file header starts a non-empty archive; an empty one (np.savez
  // with no arrays) is just the end-of-central-directory record.
  return b.size() >= 4 && (b.substr(0, 4) == std::string_view("PK\x03\x04", 4) ||
                           b.substr(0, 4) == std::string_view("PK\x05\x06", 4));
}

std::vector<NamedTensor> read(Input& in) {
  const std::string where = in.name();
  // libzip needs random access; the whole archive is read into memory.
  std::string bytes = in.read_all();
  // libzip treats an empty buffer as a new, empty archive; an empty input is
  // not an npz. 22 bytes is the end-of-central-directory record alone.
  if (bytes.size() < 22)
    fail("not a zip archive: only " + std::to_string(bytes.size()) + " bytes", where);

  zip_error_t err;
  libzip().zip_error_init(&err);
  zip_source_t* src = libzip().zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  if (!src) {
    std::string m = libzip().zip_error_strerror(&err);
    libzip().zip_error_fini(&err);
    throw_internal("npz: cannot create a zip source: " + m);
  }
  std::unique_ptr<zip_t, ZipDiscard> za(libzip().zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err));
  if (!za) {
    // On failure the source still belongs to us.
    libzip().zip_source_free(src);
    std::string m = libzip().zip_error_strerror(&err);
    libzip().zip_error_fini(&err);
    fail("not a readable zip archive: " + m, where);
  }
  libzip().zip_error_fini(&err);

  zip_int64_t count = libzip().zip_get_num_entries(za.get(), 0);
  if (count < 0) fail("cannot count the archive's members", where);

  std::vector<NamedTensor> out;
  std::set<std::string> names;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    libzip().zip_stat_init(&st);
    if (libzip().zip_stat_index(za.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_NAME))
      fail("cannot read the directory entry of member " + std::to_string(i), where);
    std::string member = st.name;
    // numpy's np.load also returns non-.npy members as raw bytes; they hold no
    // tensors, so they are skipped (directories included).
    if (!ends_with(member, ".npy")) continue;
    std::string name = member.substr(0, member.size() - 4);
    if (!names.insert(name).second) fail("array " + in_quotes(name) + " appears twice", where);

    check_member(st, member, where);
    std::string data = read_member(za.get(), static_cast<zip_uint64_t>(i), st, member, where);
    Input mem = Input::from_bytes(std::move(data), where + ":" + printable(member));
    Tensor t = npy::read(mem);
    if (!mem.at_eof())
      fail("member " + in_quotes(member) + " has bytes after its array", where);
    out.push_back({std::move(name), std::move(t)});
  }
  return out;
}

}  // namespace nnkit::npz
