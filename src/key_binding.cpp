#include "src/key_binding.h"

#include "keystore/error.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace mgs {

namespace {

thread_local std::string last_sign_error;

// Copying the message may itself fail (no memory): then it is lost, but
// nothing throws out of the callback.
void remember(const char* what) noexcept
{
    try {
        last_sign_error = what;
    } catch (...) {
    }
}

int deliver(const Bytes& sig, gnutls_datum_t* out)
{
    out->data = static_cast<unsigned char*>(gnutls_malloc(sig.size()));
    if (!out->data)
        return GNUTLS_E_MEMORY_ERROR;
    std::memcpy(out->data, sig.data(), sig.size());
    out->size = static_cast<unsigned>(sig.size());
    return 0;
}

// GnuTLS C callbacks: no exception may escape, a failure becomes an error code
// that fails this handshake only.
int sign_with(void* userdata, gnutls_sign_algorithm_t algo, unsigned flags, SignInput kind,
              const gnutls_datum_t* in, gnutls_datum_t* out) noexcept
{
    try {
        auto* signer = static_cast<Signer*>(userdata);
        SignRequest req{algo, kind, {in->data, in->size}, flags};
        return deliver(signer->sign(req), out);
    } catch (const std::exception& e) {
        remember(e.what());
        return GNUTLS_E_PK_SIGN_FAILED;
    } catch (...) {
        remember("unknown failure");
        return GNUTLS_E_PK_SIGN_FAILED;
    }
}

struct BoundKeyInfo {
    Signer* signer;
    gnutls_pk_algorithm_t pk;
    unsigned bits;
    std::vector<gnutls_sign_algorithm_t> schemes; // fixed at bind time: asked per handshake
};

int info_cb(gnutls_privkey_t, unsigned flags, void* userdata) noexcept
{
    auto* info = static_cast<BoundKeyInfo*>(userdata);
    if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
        return info->pk;
    if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
        return static_cast<int>(info->bits);
    if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
        auto algo = static_cast<gnutls_sign_algorithm_t>(GNUTLS_FLAGS_TO_SIGN_ALGO(flags));
        return std::find(info->schemes.begin(), info->schemes.end(), algo) != info->schemes.end() ? 1 : 0;
    }
    return GNUTLS_E_UNKNOWN_PK_ALGORITHM;
}

int sign_data_info_cb(gnutls_privkey_t, gnutls_sign_algorithm_t algo, void* userdata, unsigned flags,
                      const gnutls_datum_t* data, gnutls_datum_t* sig)
{
    return sign_with(static_cast<BoundKeyInfo*>(userdata)->signer, algo, flags, SignInput::message, data, sig);
}

int sign_hash_info_cb(gnutls_privkey_t, gnutls_sign_algorithm_t algo, void* userdata, unsigned flags,
                      const gnutls_datum_t* hash, gnutls_datum_t* sig)
{
    return sign_with(static_cast<BoundKeyInfo*>(userdata)->signer, algo, flags, SignInput::digest, hash, sig);
}

void deinit_cb(gnutls_privkey_t, void* userdata) noexcept { delete static_cast<BoundKeyInfo*>(userdata); }

} // namespace

std::string take_last_sign_error() { return std::exchange(last_sign_error, {}); }

PrivKey bind_signer(Signer& signer)
{
    if (PrivKey native = signer.native_privkey())
        return native;

    PrivKey key = new_privkey();
    auto* info = new BoundKeyInfo{&signer, signer.algorithm(), signer.bits(), signer.schemes()};
    int rc = gnutls_privkey_import_ext4(key.get(), info, sign_data_info_cb, sign_hash_info_cb, nullptr, deinit_cb,
                                        info_cb, GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE);
    if (rc < 0) {
        delete info;
        throw_gnutls("cannot bind " + signer.describe() + " to GnuTLS", rc);
    }
    return key;
}

} // namespace mgs
