// What the TPM key agent and the key-check child answer: one status byte
// (0: done, 1: failed) followed by the result or the error text. One codec
// for both, so the two cannot drift apart.
#pragma once

#include "keystore/bytes.h"

#include <span>
#include <string_view>

namespace mgs::tpm {

Bytes ok_answer(std::span<const std::uint8_t> result);
Bytes error_answer(std::string_view message); // cut to 4000 bytes
// The result of an answer; throws mgs::Error with the sender's text for a
// failure, or `silent` when the answer is empty (the sender died).
Bytes open_answer(std::span<const std::uint8_t> answer, std::string_view silent);

} // namespace mgs::tpm
