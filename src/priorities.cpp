#include "src/priorities.h"

namespace mgs {

Priority compile_priorities(const std::string& priorities)
{
    gnutls_priority_t p = nullptr;
    const char* err_pos = nullptr;
    int rc = gnutls_priority_init2(&p, priorities.c_str(), &err_pos, 0);
    if (rc < 0) {
        if (rc == GNUTLS_E_INVALID_REQUEST && err_pos) {
            auto pos = static_cast<std::size_t>(err_pos - priorities.c_str());
            std::string token = priorities.substr(pos);
            if (auto colon = token.find(':'); colon != std::string::npos)
                token.resize(colon);
            throw PriorityError("invalid priority string at position " + std::to_string(pos) + " ('" + token +
                                    "' in '" + priorities + "')",
                                pos);
        }
        throw PriorityError("invalid priority string '" + priorities + "': " + gnutls_error_text(rc), 0);
    }
    return Priority(p);
}

bool allows_rsa_key_exchange(const std::string& priorities)
{
    gnutls_priority_t p = nullptr;
    if (gnutls_priority_init2(&p, priorities.c_str(), nullptr, 0) < 0)
        return false;
    Priority owner(p);
    const unsigned* kx = nullptr;
    int n = gnutls_priority_kx_list(p, &kx);
    for (int i = 0; i < n; ++i)
        if (kx[i] == GNUTLS_KX_RSA)
            return true;
    return false;
}

} // namespace mgs
