// The command line of gnutls-keystore: a key reference as GnuTLSKeyFile
// takes it, and the directives that decide how the module opens it.
#pragma once

#include "keystore/registry.h"

#include <optional>
#include <string>
#include <vector>

namespace mgs::tool {

struct Options {
    std::string command; // check, speed, list, new, check-config
    std::string key;     // file, pkcs11: URL, TSS2 file, handle:0x81...
    std::optional<std::string> cert; // GnuTLSCertificateFile: PEM chain or pkcs11: URL
    std::optional<Secret> pin, srk_pin;            // --pin, --srk-pin (wiped from argv once read)
    std::optional<std::string> pin_source, srk_pin_source;
    std::vector<std::string> modules; // GnuTLSPKCS11Module
    std::string tcti;                 // GnuTLSTPMTCTI
    RsaEngine rsa = RsaEngine::automatic;
    // new: the key and its certificate request
    std::string key_type = "ecdsa-p256";
    std::optional<std::string> subject, csr_out;
    std::vector<std::string> dns_names;
    int threads = 1;
    double seconds = 3;
    // check-config: how Apache is run, and its own arguments (after --)
    std::string httpd = "apache2ctl";
    std::vector<std::string> httpd_args;
};

// Throws UsageError for a command line that cannot be run.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
Options parse_options(int argc, char** argv);
extern const char* const usage;

} // namespace mgs::tool
