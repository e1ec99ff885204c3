// Logging in to PKCS#11 tokens with a PIN for as long as this object lives
// (GnuTLS's process-wide PIN callback). A wrong PIN is not tried twice:
// tokens lock after a few failures.
#pragma once

#include "keystore/secret.h"

namespace mgs::tool {

class TokenLogin {
public:
    explicit TokenLogin(const Secret& pin);
    ~TokenLogin();
    TokenLogin(const TokenLogin&) = delete;
    TokenLogin& operator=(const TokenLogin&) = delete;
};

} // namespace mgs::tool
