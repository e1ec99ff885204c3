// Reading a whole file with an error message that says which file and why.
#pragma once

#include "keystore/signer.h"

#include <string>

namespace mgs {

// Throws mgs::Error("cannot read PATH: <strerror>") on failure.
Bytes read_file(const std::string& path);

// Whether the bytes are PEM (carry a "-----BEGIN LABEL-----" line), and
// whether one of those labels is `label`.
bool looks_like_pem(std::span<const std::uint8_t> data);
bool has_pem_label(std::span<const std::uint8_t> data, std::string_view label);

} // namespace mgs
