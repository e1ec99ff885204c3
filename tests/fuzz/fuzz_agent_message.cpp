// The TPM key agent's messages (tpm/agent_message.h): a request as the
// agent decodes it from an Apache child (authenticated by the token, so
// semi-trusted), and an answer as the child opens it. mgs::Error is how an
// answer reports the agent's failure.
#include "tpm/agent_message.h"

#include "keystore/error.h"

#include <gnutls/gnutls.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

// What an exception's what() can show of a text.
std::string_view upto_nul(std::string_view s) { return s.substr(0, s.find('\0')); }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::span<const std::uint8_t> msg(data, size);

    // The agent's side: decode, then use the fields as the signing code
    // would (the scheme's name and hash, the input).
    if (auto r = mgs::tpm::decode_request(msg)) {
        if (size < 16 || r->request.input.size() != size - 16 || r->request.input.data() != data + 16)
            std::abort();
        const char* name = gnutls_sign_get_name(r->request.scheme);
        (void)name;
        (void)gnutls_sign_get_hash_algorithm(r->request.scheme);
        (void)gnutls_sign_get_pk_algorithm(r->request.scheme);
        volatile bool message = r->request.kind == mgs::SignInput::message;
        (void)message;
        // Encoding what was decoded gives the message back.
        if (mgs::tpm::encode_request(r->key, r->request) != mgs::Bytes(data, data + size))
            std::abort();
    } else if (size >= 16) {
        // Refused only for a scheme or kind outside their enums.
        std::int32_t scheme;
        std::uint32_t kind;
        std::memcpy(&scheme, data + 4, 4);
        std::memcpy(&kind, data + 8, 4);
        if (scheme > GNUTLS_SIGN_UNKNOWN && scheme <= GNUTLS_SIGN_MAX && kind <= 1)
            std::abort();
    }

    // The child's side: the agent's answer.
    try {
        mgs::Bytes result = mgs::tpm::open_answer(msg, "the TPM key agent sent nothing");
        if (size == 0 || data[0] != 0 || result.size() != size - 1 ||
            (size > 1 && std::memcmp(result.data(), data + 1, size - 1) != 0))
            std::abort();
        if (mgs::tpm::ok_answer(result) != mgs::Bytes(data, data + size))
            std::abort();
    } catch (const mgs::Error& e) {
        if (size > 0 && data[0] == 0)
            std::abort();
        if (size > 1 && std::string_view(e.what()) != upto_nul({reinterpret_cast<const char*>(data + 1), size - 1}))
            std::abort();
    }
    // An error answer made from the text opens to that text (cut to 4000).
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        mgs::tpm::open_answer(mgs::tpm::error_answer(text), "silent");
        std::abort();
    } catch (const mgs::Error& e) {
        if (std::string_view(e.what()) != upto_nul(text.substr(0, 4000)))
            std::abort();
    }
    return 0;
}
