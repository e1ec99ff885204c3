// What the TPM key agent and the key-check child answer: one status byte
// (0: done, 1: failed) followed by the result or the error text. One codec
// for both, so the two cannot drift apart. And what an Apache child asks the
// agent: a fixed header (key index, TLS scheme, input kind, GnuTLS flags, in
// host byte order: both ends are the same machine) followed by the input.
#pragma once

#include "keystore/bytes.h"
#include "keystore/signer.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace mgs::tpm {

Bytes ok_answer(std::span<const std::uint8_t> result);
Bytes error_answer(std::string_view message); // cut to 4000 bytes
// The result of an answer; throws mgs::Error with the sender's text for a
// failure, or `silent` when the answer is empty (the sender died).
Bytes open_answer(std::span<const std::uint8_t> answer, std::string_view silent);

struct AgentRequest {
    std::uint32_t key; // the agent's index of the key
    SignRequest request; // its input points into the message decoded
};
Bytes encode_request(std::uint32_t key, const SignRequest& request);
// std::nullopt for a malformed message: too short to hold the header, or a
// scheme or kind that is none of GnuTLS's signature algorithms or SignInput's.
std::optional<AgentRequest> decode_request(std::span<const std::uint8_t> message);

} // namespace mgs::tpm
