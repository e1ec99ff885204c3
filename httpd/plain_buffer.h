// The input filter's plaintext buffer lives in src/ (no Apache types), where
// the line splitting that reads it is unit-tested and fuzzed.
#pragma once

#include "src/plain_buffer.h"

namespace mgs::httpd {

using mgs::PlainBuffer;

} // namespace mgs::httpd
