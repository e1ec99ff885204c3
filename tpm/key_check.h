// Checking a TPM key at startup without leaving TPM library state in the
// checking process.
#pragma once

#include "keystore/signer.h"
#include "tpm/loaded_key.h"

#include <vector>

namespace mgs::tpm {

// What the TLS layer needs to know about a key before it signs anything.
struct KeyFacts {
    gnutls_pk_algorithm_t algorithm = GNUTLS_PK_UNKNOWN;
    unsigned bits = 0;
    std::vector<gnutls_sign_algorithm_t> schemes;
    Bytes public_der;
};

// Loads the key (TPM reachable, parent and key authorization, schemes), makes
// one test signature and verifies it. Throws mgs::Error saying what failed.
KeyFacts check_key(const KeySpec& spec);

// The same, in a short-lived child process. The Apache parent forks its
// workers and the key agent; TCTI libraries are not fork-safe (tpm2-abrmd's
// starts GLib D-Bus threads that a forked child finds dead, and hangs on), so
// the parent never opens a TPM connection itself.
KeyFacts check_key_in_child(const KeySpec& spec);

} // namespace mgs::tpm
