// The one exception type of the keystore and the TLS core. Its message is
// meant for the administrator: what is wrong and with which object, never a
// secret. Apache glue turns it into a log line and a return code.
#pragma once

#include <stdexcept>
#include <string>

namespace mgs {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A PIN or passphrase the device refused: trying again cannot help, and
// tokens lock after a few wrong PINs, so callers never retry it.
class SecretRefused : public Error {
public:
    using Error::Error;
};

// "what: gnutls_strerror(code) (GNUTLS_E_NAME)"
[[noreturn]] void throw_gnutls(const std::string& what, int code);
std::string gnutls_error_text(int code);

} // namespace mgs
