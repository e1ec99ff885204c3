// TLS signatures from a loaded TPM key: which TLS signature schemes the key
// can make, and making them.
#pragma once

#include "tpm/loaded_key.h"

#include <vector>

namespace mgs::tpm {

// The schemes the key can produce, strongest first. For an RSA key without
// raw RSA, PSS is kept only if the TPM's own RSAPSS made a signature that
// verifies with TLS's salt length (tested here with one signature).
// Throws mgs::Error if the key can sign nothing TLS uses.
std::vector<gnutls_sign_algorithm_t> tls_schemes(LoadedKey& key);

// Throws TpmError (TPM failures) or mgs::Error.
Bytes sign_for_tls(LoadedKey& key, const SignRequest& request);

} // namespace mgs::tpm
