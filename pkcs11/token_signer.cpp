#include "pkcs11/token_signer.h"

#include "keystore/error.h"
#include "keystore/secret_source.h"
#include "pkcs11/providers.h"
#include "pkcs11/url.h"
#include "keystore/public_key.h"

#include <gnutls/pkcs11.h>
#include <p11-kit/pkcs11.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <chrono>
#include <unistd.h>

namespace mgs::pkcs11 {

namespace {

// Sessions a key may hold per process: enough for worker threads to sign in
// parallel, few enough for tokens with small session limits.
// Sessions per key in one process: the workers' default; the key agent,
// which signs for all of them, raises it (set_sessions_per_key).
std::atomic<unsigned> max_sessions_per_key{16};

int pin_callback(void* userdata, int, const char*, const char*, unsigned flags, char* pin, size_t pin_max)
{
    const auto* secret = static_cast<const Secret*>(userdata);
    // A wrong PIN is never tried again: tokens lock after a few failures.
    if ((flags & GNUTLS_PIN_WRONG) || secret->empty() || secret->size() + 1 > pin_max)
        return -1;
    std::memcpy(pin, secret->reveal(), secret->size() + 1);
    return 0;
}

std::string explain(int rc)
{
    switch (rc) {
    case GNUTLS_E_PKCS11_PIN_ERROR:
        return "the token refused the PIN, or none is configured (CKR_PIN_INCORRECT): check GnuTLSPIN / "
               "GnuTLSPINSource; a wrong PIN is not retried, so the token does not lock";
    case GNUTLS_E_PKCS11_PIN_LOCKED:
        return "the token's user PIN is locked (CKR_PIN_LOCKED): unlock it with the SO PIN";
    case GNUTLS_E_PKCS11_PIN_EXPIRED:
        return "the token's user PIN has expired (CKR_PIN_EXPIRED)";
    case GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE:
    case GNUTLS_E_PKCS11_REQUESTED_OBJECT_NOT_AVAILBLE:
        return "no token or private key matches the URL (check token=, object=, id= and the loaded "
               "GnuTLSPKCS11Module): " + gnutls_error_text(rc);
    // GnuTLS folds CKR_* codes into families; name the family.
    case GNUTLS_E_PKCS11_DEVICE_ERROR:
        return "the device failed (CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY or CKR_DEVICE_REMOVED): " +
               gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_TOKEN_ERROR:
        return "no usable token (CKR_TOKEN_NOT_PRESENT or CKR_TOKEN_NOT_RECOGNIZED): " + gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_SLOT_ERROR:
        return "the slot is gone (CKR_SLOT_ID_INVALID): " + gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_SESSION_ERROR:
        return "the session failed (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED or CKR_SESSION_COUNT): " +
               gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_KEY_ERROR:
        return "the token refused the key (CKR_KEY_HANDLE_INVALID, CKR_KEY_TYPE_INCONSISTENT or "
               "CKR_KEY_FUNCTION_NOT_PERMITTED): " + gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_USER_ERROR:
        return "not logged in (CKR_USER_NOT_LOGGED_IN or CKR_USER_TYPE_INVALID): " + gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_ATTRIBUTE_ERROR:
        return "unexpected object attributes (CKR_ATTRIBUTE_TYPE_INVALID or CKR_ATTRIBUTE_VALUE_INVALID): " +
               gnutls_error_text(rc);
    case GNUTLS_E_PKCS11_LOAD_ERROR:
        return "the PKCS#11 module could not be loaded (CKR_GENERAL_ERROR): " + gnutls_error_text(rc);
    default:
        return gnutls_error_text(rc);
    }
}

// Errors after which the session is dead and must be reopened.
bool is_device_failure(int rc)
{
    switch (rc) {
    case GNUTLS_E_PKCS11_DEVICE_ERROR:
    case GNUTLS_E_PKCS11_SESSION_ERROR:
    case GNUTLS_E_PKCS11_TOKEN_ERROR:
    case GNUTLS_E_PKCS11_SLOT_ERROR:
    case GNUTLS_E_PKCS11_ERROR:
    case GNUTLS_E_PKCS11_USER_ERROR:
        return true;
    default:
        return false;
    }
}

class TokenSigner final : public Signer {
public:
    TokenSigner(ProviderSet& providers, std::string url, Secret pin)
        : providers_(providers), url_(std::move(url)), pin_(std::move(pin)), pid_(::getpid())
    {
        PrivKey key = open_key();
        PubKey pub = new_pubkey();
        if (int rc = gnutls_pubkey_import_privkey(pub.get(), key.get(), 0, 0); rc < 0)
            throw Error(describe() + ": cannot read the public half of the key: " + explain(rc));
        public_der_ = public_key_der(pub.get());
        pk_ = static_cast<gnutls_pk_algorithm_t>(gnutls_pubkey_get_pk_algorithm(pub.get(), &bits_));
        if (pk_ == GNUTLS_PK_ECDSA)
            gnutls_pubkey_export_ecc_raw2(pub.get(), &curve_, nullptr, nullptr, 0);
        schemes_ = default_schemes(pk_, bits_, curve_);
        if (pk_ == GNUTLS_PK_RSA && !token_has(CKM_RSA_PKCS_PSS)) {
            schemes_.erase(std::remove_if(schemes_.begin(), schemes_.end(),
                                          [](gnutls_sign_algorithm_t s) {
                                              return gnutls_sign_get_pk_algorithm(s) == GNUTLS_PK_RSA_PSS ||
                                                     s == GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 ||
                                                     s == GNUTLS_SIGN_RSA_PSS_RSAE_SHA384 ||
                                                     s == GNUTLS_SIGN_RSA_PSS_RSAE_SHA512;
                                          }),
                           schemes_.end());
        }
        if (schemes_.empty())
            throw Error(describe() + ": the token holds a key type TLS cannot use");
        // Nothing PKCS#11 stays open in this (parent) process: each child
        // opens its own sessions when it first signs.
    }

    std::string describe() const override { return redact_url(url_); }
    std::string backend() const override { return "pkcs11"; }
    gnutls_pk_algorithm_t algorithm() const override { return pk_; }
    unsigned bits() const override { return bits_; }
    std::vector<gnutls_sign_algorithm_t> schemes() const override { return schemes_; }

    PubKey public_key() const override { return public_key_from_der(public_der_, describe()); }

    SignerHealth health() const override
    {
        return healthy_.load() ? SignerHealth::ok : SignerHealth::unavailable;
    }

    Bytes sign(const SignRequest& req) override
    {
        std::string failure;
        // A second attempt only follows a module reload: the device may be
        // back, and this handshake need not fail for having noticed first.
        for (int attempt = 0; attempt < 2; ++attempt) {
            unsigned generation = 0;
            {
                std::shared_lock modules(providers_.lock());
                generation = providers_.generation();
                try {
                    Bytes sig = sign_with_pool(req);
                    healthy_ = true;
                    return sig;
                } catch (const Error& e) {
                    failure = e.what();
                }
            }
            // The token did not answer: its module may need a fresh start
            // before it answers again (a restarted network HSM, a re-inserted
            // token). Reloads are rate-limited, so an outage stays cheap.
            healthy_ = false;
            providers_.reload_after_failure(generation);
            if (providers_.generation() == generation)
                break;
        }
        throw Error(failure);
    }

private:
    // Caller holds providers_.lock() shared.
    Bytes sign_with_pool(const SignRequest& req)
    {
        PrivKey key = acquire();
        gnutls_datum_t in{const_cast<unsigned char*>(req.input.data()), static_cast<unsigned>(req.input.size())};
        GnutlsDatum sig;
        int rc = req.kind == SignInput::message
                     ? gnutls_privkey_sign_data2(key.get(), req.scheme, req.gnutls_flags, &in, &sig.d)
                     : gnutls_privkey_sign_hash2(key.get(), req.scheme, req.gnutls_flags, &in, &sig.d);
        if (rc < 0) {
            if (is_device_failure(rc))
                forget(std::move(key));
            else
                release(std::move(key));
            throw Error(describe() + ": signing failed: " + explain(rc));
        }
        release(std::move(key));
        return Bytes(sig.d.data, sig.d.data + sig.d.size);
    }

    static bool pin_problem(int rc)
    {
        return rc == GNUTLS_E_PKCS11_PIN_ERROR || rc == GNUTLS_E_PKCS11_PIN_LOCKED || rc == GNUTLS_E_PKCS11_PIN_EXPIRED;
    }

    PrivKey open_key() const
    {
        PrivKey key = new_privkey();
        gnutls_privkey_set_pin_function(key.get(), pin_callback, const_cast<Secret*>(&pin_));
        if (int rc = gnutls_privkey_import_url(key.get(), url_.c_str(), 0); rc < 0) {
            if (pin_problem(rc))
                throw SecretRefused(describe() + ": " + explain(rc));
            throw Error(describe() + ": " + explain(rc));
        }
        return key;
    }

    // A token shared by several processes may fail a login or an object
    // search now and then while it works (SoftHSM2 does so measurably when
    // Apache's children log in at once: a successful login rewrites its
    // token file). The key was found at startup, so while the token itself
    // is there such a failure is tried again, briefly; a token that is gone
    // fails at once. PIN errors are never retried: tokens lock after a few.
    PrivKey open_key_retrying() const
    {
        constexpr int attempts = 8;
        for (int i = 1;; ++i) {
            PrivKey key = new_privkey();
            gnutls_privkey_set_pin_function(key.get(), pin_callback, const_cast<Secret*>(&pin_));
            int rc = gnutls_privkey_import_url(key.get(), url_.c_str(), 0);
            if (rc >= 0)
                return key;
            if (pin_problem(rc))
                throw SecretRefused(describe() + ": " + explain(rc));
            if (i == attempts || !token_present())
                throw Error(describe() + ": " + explain(rc));
            // Jittered, so that children started together do not collide again.
            std::this_thread::sleep_for(std::chrono::milliseconds(10 * i + std::rand() % 30));
        }
    }

    bool token_present() const
    {
        char label[256];
        size_t size = sizeof label;
        return gnutls_pkcs11_token_get_info(url_.c_str(), GNUTLS_PKCS11_TOKEN_LABEL, label, &size) >= 0;
    }

    bool token_has(unsigned long mechanism) const
    {
        return gnutls_pkcs11_token_check_mechanism(url_.c_str(), mechanism, nullptr, 0, 0) != 0;
    }

    // A logged-in session's key from the pool, or a new one while under the limit.
    PrivKey acquire()
    {
        std::unique_lock lock(mutex_);
        if (pid_ != ::getpid() || generation_ != providers_.generation()) {
            // Forked, or the modules were reloaded: these sessions belong to
            // another process or to finalized modules, not ours to close.
            for (auto& k : idle_)
                (void)k.release();
            idle_.clear();
            open_ = 0;
            pid_ = ::getpid();
            generation_ = providers_.generation();
        }
        cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_sessions_per_key.load(); });
        if (!idle_.empty()) {
            PrivKey k = std::move(idle_.back());
            idle_.pop_back();
            return k;
        }
        ++open_;
        lock.unlock();
        try {
            return open_key_retrying();
        } catch (...) {
            std::lock_guard relock(mutex_);
            --open_;
            cv_.notify_one();
            healthy_ = false;
            throw;
        }
    }

    void release(PrivKey key)
    {
        std::lock_guard lock(mutex_);
        idle_.push_back(std::move(key));
        cv_.notify_one();
    }

    void forget(PrivKey key)
    {
        key.reset();
        std::lock_guard lock(mutex_);
        --open_;
        cv_.notify_one();
    }

    ProviderSet& providers_;
    std::string url_;
    Secret pin_;
    Bytes public_der_;
    gnutls_pk_algorithm_t pk_ = GNUTLS_PK_UNKNOWN;
    unsigned bits_ = 0;
    gnutls_ecc_curve_t curve_ = GNUTLS_ECC_CURVE_INVALID;
    std::vector<gnutls_sign_algorithm_t> schemes_;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<PrivKey> idle_;
    unsigned open_ = 0;
    pid_t pid_;
    unsigned generation_ = providers_.generation();
    std::atomic<bool> healthy_{true};
};

} // namespace

bool Pkcs11KeyBackend::claims_uri(std::string_view reference) const { return is_pkcs11_url(reference); }

void set_sessions_per_key(unsigned n) { max_sessions_per_key = n; }

Secret token_pin(std::string_view reference, const KeyOptions& options)
{
    Secret pin = options.pin;
    // RFC 7512 pin-source (GnuTLS itself ignores it): "file:PATH" or, as
    // p11-kit spells a program, "|PROGRAM".
    if (std::string source = url_pin_source(reference).value_or(""); !source.empty() && pin.empty()) {
        if (source.starts_with("|"))
            source = "exec:" + source.substr(1);
        else if (source.starts_with("file://"))
            source = "file:" + source.substr(7);
        try {
            pin = options.secret_sources ? options.secret_sources->read(source) : read_secret_source(source);
        } catch (const Error& e) {
            throw Error(redact_url(reference) + ": pin-source: " + e.what());
        }
    }
    return pin;
}

std::shared_ptr<Signer> Pkcs11KeyBackend::open(std::string_view reference, const KeyOptions& options) const
{
    return std::make_shared<TokenSigner>(providers_, std::string(reference), token_pin(reference, options));
}

} // namespace mgs::pkcs11
