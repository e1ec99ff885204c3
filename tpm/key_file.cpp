#include "tpm/key_file.h"

#include "keystore/error.h"

#include <gnutls/gnutls.h>

#include <string_view>

namespace mgs::tpm {

namespace {

constexpr std::string_view pem_begin = "-----BEGIN TSS2 PRIVATE KEY-----";

// A minimal DER reader: the key format is small and fixed, so a full ASN.1
// library would add more than it checks.
class Der {
public:
    Der(std::span<const std::uint8_t> data, const std::string& source) : data_(data), source_(source) {}

    bool at_end() const { return pos_ >= data_.size(); }
    std::uint8_t peek_tag() const
    {
        need(1);
        return data_[pos_];
    }

    // Returns the contents of the next element, which must carry `tag`.
    std::span<const std::uint8_t> take(std::uint8_t tag, const char* what)
    {
        need(2);
        if (data_[pos_] != tag)
            fail(std::string("expected ") + what);
        ++pos_;
        std::size_t len = data_[pos_++];
        if (len & 0x80) {
            unsigned n = len & 0x7f;
            if (n == 0 || n > 4)
                fail("bad length");
            need(n);
            len = 0;
            for (unsigned i = 0; i < n; ++i)
                len = (len << 8) | data_[pos_++];
        }
        need(len);
        auto out = data_.subspan(pos_, len);
        pos_ += len;
        return out;
    }

    [[noreturn]] void fail(const std::string& why) const
    {
        throw Error(source_ + " is not a valid TSS2 PRIVATE KEY: " + why);
    }

private:
    void need(std::size_t n) const
    {
        if (pos_ + n > data_.size())
            fail("truncated");
    }

    std::span<const std::uint8_t> data_;
    const std::string& source_;
    std::size_t pos_ = 0;
};

std::string oid_text(std::span<const std::uint8_t> v)
{
    if (v.empty())
        return {};
    std::string out = std::to_string(v[0] / 40) + "." + std::to_string(v[0] % 40);
    unsigned long arc = 0;
    for (std::size_t i = 1; i < v.size(); ++i) {
        arc = (arc << 7) | (v[i] & 0x7f);
        if (!(v[i] & 0x80)) {
            out += "." + std::to_string(arc);
            arc = 0;
        }
    }
    return out;
}

bool der_bool(Der& outer, const char* what)
{
    auto v = outer.take(0x01, what);
    return !v.empty() && v[0] != 0;
}

} // namespace

bool is_tss2_pem(std::span<const std::uint8_t> data)
{
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    return text.find(pem_begin) != std::string_view::npos;
}

Tss2KeyFile parse_tss2_key(std::span<const std::uint8_t> pem, const std::string& source)
{
    gnutls_datum_t in{const_cast<unsigned char*>(pem.data()), static_cast<unsigned>(pem.size())};
    gnutls_datum_t der{};
    if (int rc = gnutls_pem_base64_decode2("TSS2 PRIVATE KEY", &in, &der); rc < 0)
        throw Error(source + " is not a valid TSS2 PRIVATE KEY: " + gnutls_error_text(rc));
    Bytes bytes(der.data, der.data + der.size);
    gnutls_free(der.data);

    Tss2KeyFile key;
    Der top(bytes, source);
    Der seq(top.take(0x30, "a SEQUENCE"), source);
    key.type_oid = oid_text(seq.take(0x06, "the key type OID"));
    // Optional explicitly tagged fields [0]..[5], in order.
    while (!seq.at_end() && (seq.peek_tag() & 0xe0) == 0xa0) {
        std::uint8_t tag = seq.peek_tag();
        Der field(seq.take(tag, "a tagged field"), source);
        switch (tag & 0x1f) {
        case 0: key.empty_auth = der_bool(field, "emptyAuth BOOLEAN"); break;
        case 1: key.has_policy = true; break;
        case 2: key.has_secret = true; break;
        case 3: key.has_policy = true; break; // authPolicy: also policy sessions
        case 4: {
            auto d = field.take(0x0c, "description UTF8String");
            key.description.assign(d.begin(), d.end());
            break;
        }
        case 5: key.rsa_parent = der_bool(field, "rsaParent BOOLEAN"); break;
        default: break; // a later addition this reader does not know: ignore
        }
    }
    auto parent = seq.take(0x02, "the parent INTEGER");
    // Lenient as GnuTLS: a leading zero byte (5-byte INTEGER) is fine.
    std::uint64_t p = 0;
    for (auto b : parent)
        p = (p << 8) | b;
    if (parent.size() > 5 || p > 0xffffffffULL)
        seq.fail("parent handle out of range");
    key.parent = static_cast<std::uint32_t>(p);
    auto pub = seq.take(0x04, "the public OCTET STRING");
    auto priv = seq.take(0x04, "the private OCTET STRING");
    key.public_area.assign(pub.begin(), pub.end());
    key.private_area.assign(priv.begin(), priv.end());
    gnutls_memset(bytes.data(), 0, bytes.size());

    if (key.type_oid == importable_key_oid)
        throw Error(source + " is an importable TPM key (" + key.type_oid +
                    "); only loadable keys (2.23.133.10.1.3) are supported: load it with tpm2-openssl and "
                    "re-export it");
    if (key.type_oid == sealed_data_oid)
        throw Error(source + " holds TPM sealed data, not a private key");
    if (key.type_oid != loadable_key_oid)
        throw Error(source + " is a TSS2 key of unknown type " + key.type_oid);
    if (key.has_policy)
        throw Error(source + " is bound to a TPM policy; policy sessions are not supported, use a key "
                             "authorized by a password (or none)");
    return key;
}

} // namespace mgs::tpm
