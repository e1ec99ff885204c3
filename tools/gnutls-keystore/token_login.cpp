#include "tools/gnutls-keystore/token_login.h"

#include <gnutls/pkcs11.h>

#include <cstring>

namespace mgs::tool {

namespace {

const Secret* login_pin = nullptr;
bool refused = false; // once a token said the PIN is wrong, it is offered to none again

int pin_callback(void*, int, const char*, const char*, unsigned flags, char* pin, size_t pin_max)
{
    if (flags & GNUTLS_PIN_WRONG)
        refused = true;
    // Never the security officer's PIN, never a token's last try.
    if (refused || !login_pin || (flags & (GNUTLS_PIN_SO | GNUTLS_PIN_FINAL_TRY)) || login_pin->empty() ||
        login_pin->size() + 1 > pin_max)
        return -1;
    std::memcpy(pin, login_pin->reveal(), login_pin->size() + 1);
    return 0;
}

} // namespace

TokenLogin::TokenLogin(const Secret& pin)
{
    login_pin = &pin;
    refused = false;
    gnutls_pkcs11_set_pin_function(pin_callback, nullptr);
}

TokenLogin::~TokenLogin()
{
    gnutls_pkcs11_set_pin_function(nullptr, nullptr);
    login_pin = nullptr;
}

} // namespace mgs::tool
