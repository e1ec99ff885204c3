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

} // namespace mgs
