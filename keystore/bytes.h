// Plain bytes: signatures, DER encodings, session data, file contents.
#pragma once

#include <cstdint>
#include <vector>

namespace mgs {

using Bytes = std::vector<std::uint8_t>;

} // namespace mgs
