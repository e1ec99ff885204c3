#include "keystore/error.h"

#include <gnutls/gnutls.h>

namespace mgs {

std::string gnutls_error_text(int code)
{
    std::string text = gnutls_strerror(code);
    if (const char* name = gnutls_strerror_name(code))
        text += std::string(" (") + name + ")";
    return text;
}

void throw_gnutls(const std::string& what, int code)
{
    throw Error(what + ": " + gnutls_error_text(code));
}

} // namespace mgs
