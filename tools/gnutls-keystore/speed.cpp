#include "tools/gnutls-keystore/speed.h"

#include "keystore/error.h"
#include "tools/gnutls-keystore/key_opening.h"

#include <gnutls/crypto.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace mgs::tool {

int run_speed(const Options& options)
{
    KeyOpener opener(options);
    std::shared_ptr<Signer> signer = opener.open_key_or_report();
    if (!signer)
        return 1;
    // The scheme a TLS 1.3 handshake would ask for first, on a digest as
    // GnuTLS hands it over.
    if (signer->schemes().empty()) {
        std::fprintf(stderr, "gnutls-keystore: GnuTLSKeyFile: %s offers no TLS signature scheme\n",
                     signer->describe().c_str());
        return 1;
    }
    const gnutls_sign_algorithm_t scheme = signer->schemes().front();
    gnutls_digest_algorithm_t hash = gnutls_sign_get_hash_algorithm(scheme);
    const bool eddsa = hash == GNUTLS_DIG_UNKNOWN || hash == GNUTLS_DIG_SHAKE_256;
    std::vector<std::uint8_t> input(eddsa ? 64 : gnutls_hash_get_len(hash), 0x5a);
    const SignInput kind = eddsa ? SignInput::message : SignInput::digest;
    std::atomic<long> done{0}, failed{0};
    std::string first_error;
    std::mutex error_mutex;
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration<double>(options.seconds);
    std::vector<std::thread> pool;
    for (int t = 0; t < options.threads; ++t)
        pool.emplace_back([&] {
            while (std::chrono::steady_clock::now() < until) {
                try {
                    signer->sign({scheme, kind, input, 0});
                    ++done;
                } catch (const std::exception& e) {
                    if (++failed == 1) {
                        std::lock_guard lock(error_mutex);
                        first_error = e.what();
                    }
                }
            }
        });
    for (auto& t : pool)
        t.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %s (%s), %d thread%s: %.1f signatures/s, %ld failed\n", signer->describe().c_str(),
                gnutls_sign_get_name(scheme), signer->engine().c_str(), options.threads,
                options.threads == 1 ? "" : "s", static_cast<double>(done) / secs, failed.load());
    if (failed)
        std::fprintf(stderr, "gnutls-keystore: signing failed: %s\n", first_error.c_str());
    return failed || done == 0 ? 1 : 0;
}

} // namespace mgs::tool
