// Reading a whole file with an error message that says which file and why.
#pragma once

#include "keystore/signer.h"

#include <string>

namespace mgs {

// Throws mgs::Error("cannot read PATH: <strerror>") on failure.
Bytes read_file(const std::string& path);

// The first `max` bytes of a file (fewer if it is shorter; empty if it
// cannot be read), for a backend to recognise a key file by its start.
// Read straight into the result: the caller wipes it (key files pass here).
Bytes read_file_start(const std::string& path, std::size_t max);

// Whether the bytes are PEM (carry a "-----BEGIN LABEL-----" line), and
// whether one of those labels is `label`.
bool looks_like_pem(std::span<const std::uint8_t> data);
bool has_pem_label(std::span<const std::uint8_t> data, std::string_view label);

} // namespace mgs
