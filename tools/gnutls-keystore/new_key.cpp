#include "tools/gnutls-keystore/new_key.h"

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"
#include "keystore/unique_fd.h"
#include "pkcs11/url.h"
#include "src/key_binding.h"
#include "tpm/key_creation.h"
#include "tools/gnutls-keystore/key_opening.h"
#include "tools/gnutls-keystore/token_login.h"

#include <gnutls/crypto.h>
#include <gnutls/pkcs11.h>
#include <gnutls/x509.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

namespace mgs::tool {

namespace {

struct KeyKind {
    gnutls_pk_algorithm_t pk;
    unsigned bits;
};

KeyKind kind_of(const std::string& type)
{
    if (type == "ecdsa-p256")
        return {GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1)};
    if (type == "ecdsa-p384")
        return {GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1)};
    if (type == "rsa2048")
        return {GNUTLS_PK_RSA, 2048};
    if (type == "rsa3072")
        return {GNUTLS_PK_RSA, 3072};
    throw UsageError("--type must be ecdsa-p256, ecdsa-p384, rsa2048 or rsa3072, not '" + type + "'");
}

void check(int rc, const std::string& what)
{
    if (rc < 0)
        throw_gnutls(what, rc);
}

// The token part of a pkcs11: URL: its path attributes but object=, id=
// and type=, without the query (module-path, pin-value, pin-source).
std::string token_url(const std::string& url)
{
    std::string path = url.substr(0, url.find('?'));
    std::string out = "pkcs11:";
    std::size_t start = std::strlen("pkcs11:");
    while (start <= path.size()) {
        std::size_t end = path.find(';', start);
        std::string attr = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!attr.empty() && !attr.starts_with("object=") && !attr.starts_with("id=") && !attr.starts_with("type="))
            out += (out.size() > 7 ? ";" : "") + attr;
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return out;
}

struct Crq {
    gnutls_x509_crq_t q = nullptr;
    Crq() { check(gnutls_x509_crq_init(&q), "cannot make a certificate request"); }
    ~Crq() { gnutls_x509_crq_deinit(q); }
    Crq(const Crq&) = delete;
    Crq& operator=(const Crq&) = delete;
};

// Everything that can be wrong with the request, found before the token
// or the TPM changes: the subject, the names, the output file.
void prepare_request(Crq& crq, const Options& options, std::ofstream& out)
{
    const char* err = nullptr;
    if (int r = gnutls_x509_crq_set_dn(crq.q, options.subject->c_str(), &err); r < 0)
        throw UsageError("--subject '" + *options.subject + "' is not a distinguished name" +
                         (err ? " (at '" + std::string(err) + "')" : std::string()) + ": " + gnutls_strerror(r));
    for (const std::string& dns : options.dns_names)
        if (gnutls_x509_crq_set_subject_alt_name(crq.q, GNUTLS_SAN_DNSNAME, dns.data(),
                                                 static_cast<unsigned>(dns.size()), GNUTLS_FSAN_APPEND) < 0)
            throw UsageError("--dns '" + dns + "' is not a DNS name");
    check(gnutls_x509_crq_set_key_usage(crq.q, GNUTLS_KEY_DIGITAL_SIGNATURE), "key usage");
    check(gnutls_x509_crq_set_key_purpose_oid(crq.q, GNUTLS_KP_TLS_WWW_SERVER, 0), "key purpose");
    check(gnutls_x509_crq_set_version(crq.q, 1), "request version");
    if (options.csr_out) {
        out.open(*options.csr_out, std::ios::binary | std::ios::trunc);
        if (!out)
            throw Error("cannot write " + *options.csr_out + " (nothing was changed)");
    }
}

// Signs the request with the new key and writes it: to the --csr file, or
// to standard output, the key's line then going to standard error.
int finish_request(Crq& crq, gnutls_pubkey_t pub, gnutls_privkey_t priv, const std::string& where,
                   const Options& options, std::ofstream& out, const std::string& key_line)
{
    check(gnutls_x509_crq_set_pubkey(crq.q, pub), "the new public key");
    check(gnutls_x509_crq_privkey_sign(crq.q, priv, GNUTLS_DIG_SHA256, 0), where + ": the new key cannot sign the request");
    GnutlsDatum csr;
    check(gnutls_x509_crq_export2(crq.q, GNUTLS_X509_FMT_PEM, &csr.d), "cannot write the request");
    FILE* info = stdout;
    if (options.csr_out) {
        out.write(reinterpret_cast<const char*>(csr.d.data), static_cast<std::streamsize>(csr.d.size));
        out.close();
        if (!out)
            throw Error("cannot write " + *options.csr_out + "; the key is made: " + key_line);
        std::printf("request: %s\n", options.csr_out->c_str());
    } else {
        std::fwrite(csr.d.data, 1, csr.d.size, stdout);
        info = stderr;
    }
    std::fprintf(info, "%s\n", key_line.c_str());
    return 0;
}

// A temporary file beside the key file; removed unless it was kept.
class TempFile {
public:
    explicit TempFile(const std::string& beside) : path_(beside + ".XXXXXX")
    {
        fd_ = UniqueFd(::mkstemp(path_.data())); // mode 0600
        if (!fd_)
            throw Error("cannot create a file beside " + beside + ": " + std::strerror(errno) +
                        " (nothing was changed)");
    }
    ~TempFile()
    {
        if (!kept_)
            ::unlink(path_.c_str());
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    const std::string& path() const { return path_; }
    void write_all(const std::string& data)
    {
        std::size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::write(fd_.get(), data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw Error("cannot write " + path_ + ": " + std::strerror(errno));
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd_.get()) != 0)
            throw Error("cannot write " + path_ + ": " + std::strerror(errno));
        fd_.reset();
    }
    // Gives it the final name, which must not exist (link() is exclusive:
    // never over a file that appeared meanwhile).
    void keep_as(const std::string& name)
    {
        if (::link(path_.c_str(), name.c_str()) != 0)
            throw Error("cannot create " + name + ": " + std::strerror(errno) +
                        " (new never replaces a key file; the TPM key is discarded)");
        ::unlink(path_.c_str());
        kept_ = true;
    }

private:
    std::string path_;
    UniqueFd fd_;
    bool kept_ = false;
};

// new for the TPM: KEY is the TSS2 key file to write (it must not exist).
// The file is written under a temporary name, checked as mod_gnutls loads
// it, and only then given its name: an interrupted or failed run leaves
// nothing behind but a temporary file the next run does not trip over.
int new_tpm_key(const Options& options, const KeyKind& kind, Crq& crq, std::ofstream& out)
{
    KeyOpener opener(options);
    const KeyOptions key_options = opener.key_options(); // PIN sources read before anything changes
    const unsigned bits = kind.pk == GNUTLS_PK_RSA                                           ? kind.bits
                          : kind.bits == GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1) ? 384
                                                                                             : 256;
    TempFile file(options.key);
    file.write_all(tpm::create_tss2_key(options.tcti, {kind.pk, bits}, key_options.srk_pin, key_options.pin));
    Options at_temp = options;
    at_temp.key = file.path();
    std::shared_ptr<Signer> key = KeyOpener(at_temp).open_key(); // the check a start would make
    file.keep_as(options.key);
    PubKey pub = key->public_key();
    PrivKey priv = bind_signer(*key);
    return finish_request(crq, pub.get(), priv.get(), options.key, options, out,
                          "key: " + options.key + "\n  for GnuTLSKeyFile, with GnuTLSTPMTCTI " + options.tcti +
                              (key_options.pin.empty() ? "" : " and its GnuTLSPIN") +
                              "; only this TPM can use it");
}

} // namespace

int run_new(const Options& options)
{
    if (!options.subject)
        throw UsageError("new needs --subject, e.g. --subject CN=www.example.com");
    const KeyKind kind = kind_of(options.key_type);
    if (!pkcs11::is_pkcs11_url(options.key)) {
        if (options.key.starts_with("handle:"))
            throw UsageError("new writes TPM keys to a TSS2 key file, not to a persistent handle (tpm2_evictcontrol "
                             "makes a key persistent)");
        if (options.tcti.empty())
            throw UsageError("new makes a TPM key when KEY is a file to write: give --tcti (GnuTLSTPMTCTI), "
                             "e.g. --tcti device:/dev/tpmrm0");
        // Before anything is written, the --csr file included.
        errno = 0;
        const bool exists = ::access(options.key.c_str(), F_OK) == 0;
        if (exists || errno != ENOENT)
            throw Error("cannot create " + options.key + ": " +
                        (exists ? std::string("it exists") : std::string(std::strerror(errno))) +
                        " (new never replaces a key file; nothing was changed)");
        Crq crq;
        std::ofstream out;
        prepare_request(crq, options, out);
        return new_tpm_key(options, kind, crq, out);
    }
    const std::string where = pkcs11::redact_url(options.key);
    if (std::string why = pkcs11::url_syntax_error(options.key); !why.empty())
        throw Error(where + ": " + why);
    const std::optional<std::string> label = pkcs11::url_object_label(options.key);
    if (!label || label->empty())
        throw UsageError("KEY must name the new key's label with object=");

    KeyOpener opener(options);
    Secret pin = opener.key_options().pin;
    if (pin.empty())
        throw UsageError("new logs in to the token: give --pin or --pin-source");
    opener.load_modules();
    TokenLogin login(pin);

    // Everything that can be wrong with the request is found before the
    // token changes: the subject, the names, the output file.
    Crq crq;
    std::ofstream out;
    prepare_request(crq, options, out);

    // Never a second key under a label GnuTLSKeyFile may already name. A
    // failed search (a wrong PIN) stops here: the PIN is not tried again.
    const std::string token_and_label = token_url(options.key) + ";object=" + *label;
    {
        gnutls_pkcs11_obj_t* objs = nullptr;
        unsigned n = 0;
        std::string find = token_and_label + ";type=private";
        int rc = gnutls_pkcs11_obj_list_import_url4(&objs, &n, find.c_str(),
                                                    GNUTLS_PKCS11_OBJ_FLAG_PRIVKEY | GNUTLS_PKCS11_OBJ_FLAG_LOGIN);
        if (rc == GNUTLS_E_PKCS11_PIN_ERROR)
            throw Error(where + ": the token refused the PIN (CKR_PIN_INCORRECT); it is not retried");
        check(rc, where + ": cannot search the token");
        for (unsigned i = 0; i < n; ++i)
            gnutls_pkcs11_obj_deinit(objs[i]);
        gnutls_free(objs);
        if (n > 0)
            throw Error(where + ": the token already holds a private key labelled '" + *label +
                        "'; choose another object= (nothing was changed)");
    }

    std::uint8_t id_bytes[16];
    check(gnutls_rnd(GNUTLS_RND_NONCE, id_bytes, sizeof id_bytes), "no random key id");
    gnutls_datum_t id{id_bytes, sizeof id_bytes};
    GnutlsDatum pub_pem;
    int rc = gnutls_pkcs11_privkey_generate3(
        token_and_label.c_str(), kind.pk, kind.bits, label->c_str(), &id, GNUTLS_X509_FMT_PEM, &pub_pem.d,
        GNUTLS_KEY_DIGITAL_SIGNATURE,
        GNUTLS_PKCS11_OBJ_FLAG_LOGIN | GNUTLS_PKCS11_OBJ_FLAG_MARK_SENSITIVE | GNUTLS_PKCS11_OBJ_FLAG_MARK_PRIVATE);
    if (rc == GNUTLS_E_PKCS11_PIN_ERROR)
        throw Error(where + ": the token refused the PIN (CKR_PIN_INCORRECT); it is not retried");
    check(rc, where + ": the token cannot make the key");

    // The new key's URL: found by the id just given to it, exactly once.
    std::string key_url;
    {
        char hex_id[2 * sizeof id_bytes * 3 + 1] = "";
        for (std::size_t i = 0; i < sizeof id_bytes; ++i)
            std::snprintf(hex_id + 3 * i, 4, "%%%02x", id_bytes[i]);
        std::string find = token_url(options.key) + ";id=" + hex_id + ";type=private";
        gnutls_pkcs11_obj_t* objs = nullptr;
        unsigned n = 0;
        check(gnutls_pkcs11_obj_list_import_url4(&objs, &n, find.c_str(),
                                                 GNUTLS_PKCS11_OBJ_FLAG_PRIVKEY | GNUTLS_PKCS11_OBJ_FLAG_LOGIN),
              where + ": cannot find the new key");
        char* url = nullptr;
        if (n == 1 && gnutls_pkcs11_obj_export_url(objs[0], GNUTLS_PKCS11_URL_GENERIC, &url) >= 0) {
            key_url = url;
            gnutls_free(url);
        }
        for (unsigned i = 0; i < n; ++i)
            gnutls_pkcs11_obj_deinit(objs[i]);
        gnutls_free(objs);
        if (key_url.empty())
            throw Error(where + ": the token made the key but does not show it once by its id (" +
                        std::to_string(n) + " found)");
    }

    PubKey pub = new_pubkey();
    check(gnutls_pubkey_import(pub.get(), &pub_pem.d, GNUTLS_X509_FMT_PEM), "the new public key");
    PrivKey priv = new_privkey();
    check(gnutls_privkey_import_url(priv.get(), key_url.c_str(), 0), where + ": cannot open the new key");
    return finish_request(crq, pub.get(), priv.get(), where, options, out,
                          "key: " + key_url +
                              "\n  for GnuTLSKeyFile (with GnuTLSPIN or GnuTLSPINSource); the token will not export it");
}

} // namespace mgs::tool
