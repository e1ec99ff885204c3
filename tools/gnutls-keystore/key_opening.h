// Opens a key reference exactly as mod_gnutls does: the same backends in
// the same order (PKCS#11 URLs, TPM 2.0 keys, then files), the same PKCS#11
// module rules (GnuTLSPKCS11Module plus a URL's module-path, else p11-kit's
// configured modules), the same PIN sources. A TPM key is signed in this
// process (Apache's key agent is not there).
#pragma once

#include "pkcs11/providers.h"
#include "tools/gnutls-keystore/options.h"

#include <memory>

namespace mgs::tool {

class KeyOpener {
public:
    explicit KeyOpener(const Options& options);
    // Throws mgs::Error with the message mod_gnutls would log.
    std::shared_ptr<Signer> open_key();
    // The same, but the message goes to standard error as
    // "gnutls-keystore: GnuTLSKeyFile: ..." and null comes back.
    std::shared_ptr<Signer> open_key_or_report();
    KeyOptions key_options() const;
    // The PKCS#11 modules mod_gnutls would load for this key and
    // certificate (--module plus any URL's module-path; p11-kit's
    // configured modules when none is named). Throws mgs::Error.
    void load_modules(bool always = true);

private:
    const Options& options_;
    pkcs11::ProviderSet providers_;
    KeyRegistry registry_;
};

} // namespace mgs::tool
