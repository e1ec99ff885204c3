#include "tools/gnutls-keystore/check.h"

#include "keystore/error.h"
#include "pkcs11/token_certificate.h"
#include "pkcs11/url.h"
#include "src/certificate_chain.h"
#include "src/credentials_binding.h"
#include "src/key_binding.h"
#include "src/server_credentials.h"
#include "tools/gnutls-keystore/key_opening.h"

#include <gnutls/crypto.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace mgs::tool {

namespace {

std::string dn_of(gnutls_x509_crt_t crt, bool issuer)
{
    GnutlsDatum d;
    int rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &d.d, 0) : gnutls_x509_crt_get_dn3(crt, &d.d, 0);
    return rc < 0 ? std::string("(unreadable)") : d.text();
}

std::string date_of(time_t t)
{
    char buf[32];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

// Each scheme through the same GnuTLS binding the handshakes use, checked
// with the key's public half.
int check_signatures(Signer& signer)
{
    PrivKey bound = bind_signer(signer);
    PubKey pub = signer.public_key();
    const char text[] = "gnutls-keystore check: a TLS CertificateVerify stand-in";
    gnutls_datum_t msg{reinterpret_cast<unsigned char*>(const_cast<char*>(text)), sizeof text - 1};
    int failures = 0;
    std::printf("signatures:\n");
    for (gnutls_sign_algorithm_t scheme : signer.schemes()) {
        GnutlsDatum sig;
        int rc = gnutls_privkey_sign_data2(bound.get(), scheme, 0, &msg, &sig.d);
        const char* verdict = "signs and verifies";
        std::string why;
        if (rc < 0) {
            verdict = "cannot sign";
            why = take_last_sign_error();
            if (why.empty())
                why = gnutls_strerror(rc);
        } else if ((rc = gnutls_pubkey_verify_data2(pub.get(), scheme, 0, &msg, &sig.d)) < 0) {
            verdict = "signature does not verify";
            why = gnutls_strerror(rc);
        }
        if (!why.empty())
            ++failures;
        std::printf("  %-24s %s%s%s\n", gnutls_sign_get_name(scheme), verdict, why.empty() ? "" : ": ", why.c_str());
    }
    return failures;
}

CertificateChain load_chain(const std::string& ref)
{
    if (pkcs11::is_pkcs11_url(ref))
        return CertificateChain::from_certificates(pkcs11::load_token_certificates(ref), pkcs11::redact_url(ref));
    return CertificateChain::from_file(ref);
}

void print_chain(const CertificateChain& chain)
{
    std::printf("certificate chain: %s (%zu certificate%s, in order)\n", chain.source().c_str(), chain.size(),
                chain.size() == 1 ? "" : "s");
    const time_t now = std::time(nullptr);
    for (std::size_t i = 0; i < chain.size(); ++i) {
        gnutls_x509_crt_t crt = chain.at(i);
        const time_t not_after = gnutls_x509_crt_get_expiration_time(crt);
        const long days = static_cast<long>((not_after - now) / 86400);
        std::printf("  [%zu] subject %s\n      issuer  %s\n      expires %s (%s)\n", i, dn_of(crt, false).c_str(),
                    dn_of(crt, true).c_str(), date_of(not_after).c_str(),
                    not_after < now ? "EXPIRED" : (std::to_string(days) + " days left").c_str());
        if (not_after < now)
            std::fprintf(stderr, "warning: certificate [%zu] of %s expired on %s\n", i, chain.source().c_str(),
                         date_of(not_after).c_str());
        else if (days < 30)
            std::fprintf(stderr, "warning: certificate [%zu] of %s expires in %ld days\n", i, chain.source().c_str(),
                         days);
    }
}

} // namespace

int run_check(const Options& options)
{
    KeyOpener opener(options);
    std::shared_ptr<Signer> signer = opener.open_key_or_report();
    if (!signer)
        return 1;
    const char* pk = gnutls_pk_get_name(signer->algorithm());
    std::printf("key: %s\n  backend %s, signed by %s\n  %s, %u bits\n", signer->describe().c_str(),
                signer->backend().c_str(), signer->engine().c_str(), pk ? pk : "unknown", signer->bits());
    int failures = check_signatures(*signer);
    if (failures)
        std::fprintf(stderr, "gnutls-keystore: GnuTLSKeyFile: %s cannot make %d of the signatures it offers\n",
                     signer->describe().c_str(), failures);
    if (options.cert) {
        std::optional<CertificateChain> chain;
        try {
            chain = load_chain(*options.cert);
        } catch (const Error& e) {
            std::fprintf(stderr, "gnutls-keystore: GnuTLSCertificateFile: %s\n", e.what());
            return 1;
        }
        print_chain(*chain);
        const std::string source = chain->source();
        try {
            ServerCredentials credentials(std::move(*chain), signer);
            std::printf("the key matches the certificate\n");
        } catch (const KeyMismatchError& e) {
            // The words mod_gnutls logs (MGS01003).
            std::fprintf(stderr,
                         "gnutls-keystore: GnuTLSKeyFile: the private key %s does not match the certificate in %s "
                         "(subject %s)\n",
                         signer->describe().c_str(), source.c_str(), e.certificate_subject().c_str());
            return 1;
        } catch (const Error& e) {
            std::fprintf(stderr, "gnutls-keystore: GnuTLSKeyFile: %s\n", e.what());
            return 1;
        }
    }
    return failures ? 1 : 0;
}

} // namespace mgs::tool
