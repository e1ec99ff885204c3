// Raw signing ceiling of a key backend: how many TLS signatures per second
// a key gives through our keystore, with no TLS around it.
//
//   mgs_sign_rate KEY [--pin PIN] [--tcti TCTI] [--module PKCS11.so] [--threads N] [--seconds S]
//
// KEY is what GnuTLSKeyFile takes: a key file, a pkcs11: URL or a TPM key.
#include "keystore/error.h"
#include "keystore/file_signer.h"
#include "pkcs11/providers.h"
#include "pkcs11/token_signer.h"
#include "pkcs11/url.h"
#include "tpm/tpm_signer.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s KEY [--pin PIN] [--tcti TCTI] [--module SO] [--threads N] [--seconds S]\n",
                     argv[0]);
        return 2;
    }
    std::string key = argv[1];
    mgs::KeyOptions options;
    std::vector<std::string> modules;
    int threads = 1;
    double seconds = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--pin")
            options.pin = mgs::Secret(value);
        else if (flag == "--tcti")
            options.tpm_tcti = value;
        else if (flag == "--module")
            modules.push_back(value);
        else if (flag == "--threads")
            threads = std::stoi(value);
        else if (flag == "--seconds")
            seconds = std::stod(value);
    }
    try {
        mgs::KeyRegistry registry;
        mgs::pkcs11::ProviderSet providers;
        registry.add(std::make_unique<mgs::pkcs11::Pkcs11KeyBackend>(providers));
        registry.add(std::make_unique<mgs::tpm::TpmKeyBackend>());
        registry.add(std::make_unique<mgs::FileKeyBackend>());
        if (mgs::pkcs11::is_pkcs11_url(key))
            providers.load(modules);
        auto signer = registry.open(key, options);
        const auto scheme = signer->schemes().front();
        std::vector<std::uint8_t> digest(32, 0x17);
        if (gnutls_sign_get_hash_algorithm(scheme) == GNUTLS_DIG_SHA384)
            digest.resize(48, 0x17);
        std::atomic<long> done{0}, failed{0};
        auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&] {
                while (std::chrono::steady_clock::now() < until) {
                    try {
                        signer->sign({scheme, mgs::SignInput::digest, digest, 0});
                        ++done;
                    } catch (const std::exception&) {
                        ++failed;
                    }
                }
            });
        for (auto& t : pool)
            t.join();
        std::printf("%s %s threads=%d signatures/s=%.1f failed=%ld\n", signer->backend().c_str(),
                    gnutls_sign_get_name(scheme), threads, done / seconds, failed.load());
        return failed ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
