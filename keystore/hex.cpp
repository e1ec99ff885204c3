#include "keystore/hex.h"

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"

#include <cctype>

namespace mgs {

std::string hex(std::span<const std::uint8_t> bytes)
{
    if (bytes.empty())
        return {};
    gnutls_datum_t in{const_cast<unsigned char*>(bytes.data()), static_cast<unsigned>(bytes.size())};
    GnutlsDatum out;
    if (int rc = gnutls_hex_encode2(&in, &out.d); rc < 0)
        throw_gnutls("hex encoding", rc);
    return std::string(reinterpret_cast<const char*>(out.d.data), out.d.size);
}

std::string upper_hex(std::span<const std::uint8_t> bytes)
{
    std::string s = hex(bytes);
    for (char& c : s)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

} // namespace mgs
