# Writes a C++ source holding every models/rf-calc/*.net as a string, so that
# rf-calc --model works from the build tree as well as installed.
# Usage: cmake -DMODEL_DIR=DIR -DOUT=FILE.cpp -P embed_models.cmake
file(GLOB nets "${MODEL_DIR}/*.net")
list(SORT nets COMPARE NATURAL)
set(entries "")
list(LENGTH nets count)
foreach(net IN LISTS nets)
  get_filename_component(name "${net}" NAME_WE)
  if(NOT name MATCHES "^[A-Za-z0-9_]+$")
    message(FATAL_ERROR "model file name ${name}.net: use letters, digits and _ only")
  endif()
  # Every byte as a \xHH escape: any content is safe inside the literal.
  file(READ "${net}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  string(APPEND entries "    {\"${name}\", \"${escaped}\"},\n")
endforeach()
file(WRITE "${OUT}.tmp"
"// Generated from models/rf-calc/*.net by tools/rf-calc/embed_models.cmake; do not edit.
#include <cstddef>

namespace nnkit::rfcalc {
struct BuiltinModel {
  const char* name;
  const char* text;
};
extern const BuiltinModel builtin_models[];
extern const std::size_t builtin_model_count;
const BuiltinModel builtin_models[] = {
${entries}    {nullptr, nullptr}};
const std::size_t builtin_model_count = ${count};
}  // namespace nnkit::rfcalc
")
# Replace only when different, so that an unchanged set does not relink.
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
