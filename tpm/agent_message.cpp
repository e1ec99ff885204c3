#include "tpm/agent_message.h"

#include "keystore/error.h"

#include <cstring>
#include <string>

namespace mgs::tpm {

namespace {

struct RequestHeader {
    std::uint32_t key;
    std::int32_t scheme;
    std::uint32_t kind;
    std::uint32_t flags;
};

Bytes answer(std::uint8_t status, const void* data, std::size_t size)
{
    Bytes out(1 + size);
    out[0] = status;
    if (size)
        std::memcpy(out.data() + 1, data, size);
    return out;
}

} // namespace

Bytes ok_answer(std::span<const std::uint8_t> result) { return answer(0, result.data(), result.size()); }

Bytes error_answer(std::string_view message)
{
    message = message.substr(0, 4000);
    return answer(1, message.data(), message.size());
}

Bytes open_answer(std::span<const std::uint8_t> answer, std::string_view silent)
{
    if (answer.empty())
        throw Error(std::string(silent));
    if (answer[0] != 0)
        throw Error(std::string(answer.begin() + 1, answer.end()));
    return Bytes(answer.begin() + 1, answer.end());
}

Bytes encode_request(std::uint32_t key, const SignRequest& request)
{
    // Sized once: GCC 12 -O2 misreads a memcpy followed by insert() as out
    // of bounds (-Werror=array-bounds).
    Bytes msg(sizeof(RequestHeader) + request.input.size());
    RequestHeader h{key, static_cast<std::int32_t>(request.scheme), static_cast<std::uint32_t>(request.kind),
                    request.gnutls_flags};
    std::memcpy(msg.data(), &h, sizeof h);
    if (!request.input.empty())
        std::memcpy(msg.data() + sizeof h, request.input.data(), request.input.size());
    return msg;
}

std::optional<AgentRequest> decode_request(std::span<const std::uint8_t> message)
{
    if (message.size() < sizeof(RequestHeader))
        return std::nullopt;
    RequestHeader h;
    std::memcpy(&h, message.data(), sizeof h);
    // Only values of the enums: any other int is not a gnutls_sign_algorithm_t
    // (whose range is that of its enumerators) and must not become one.
    if (h.scheme <= GNUTLS_SIGN_UNKNOWN || h.scheme > GNUTLS_SIGN_MAX ||
        (h.kind != static_cast<std::uint32_t>(SignInput::message) &&
         h.kind != static_cast<std::uint32_t>(SignInput::digest)))
        return std::nullopt;
    return AgentRequest{h.key,
                        SignRequest{static_cast<gnutls_sign_algorithm_t>(h.scheme), static_cast<SignInput>(h.kind),
                                    message.subspan(sizeof h), h.flags}};
}

} // namespace mgs::tpm
