#include "tpm/agent_message.h"

#include "keystore/error.h"

#include <cstring>
#include <string>

namespace mgs::tpm {

namespace {

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

} // namespace mgs::tpm
