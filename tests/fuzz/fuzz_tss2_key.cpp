// The TSS2 PRIVATE KEY reader (tpm/key_file.h) on arbitrary bytes: once as
// the file's bytes (PEM detection and armour), once as the DER inside a
// "TSS2 PRIVATE KEY" armour made here, so that the DER reader is reached.
// mgs::Error is how a bad file is refused; anything else is a bug.
#include "tpm/key_file.h"

#include "keystore/error.h"

#include <gnutls/gnutls.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void parse(std::span<const std::uint8_t> file, std::size_t der_size)
{
    try {
        mgs::tpm::Tss2KeyFile key = mgs::tpm::parse_tss2_key(file, "fuzz.key");
        if (key.type_oid != mgs::tpm::loadable_key_oid || key.has_policy)
            std::abort(); // only loadable keys without policy are accepted
        if (key.public_area.size() + key.private_area.size() + key.description.size() > der_size)
            std::abort();
    } catch (const mgs::Error&) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::span<const std::uint8_t> bytes(data, size);
    bool pem = mgs::tpm::is_tss2_pem(bytes);
    if (pem != (std::string_view(reinterpret_cast<const char*>(data), size).find("-----BEGIN TSS2 PRIVATE KEY-----") !=
                std::string_view::npos))
        std::abort();
    parse(bytes, size);

    gnutls_datum_t der{const_cast<unsigned char*>(data), static_cast<unsigned>(size)};
    gnutls_datum_t armoured{};
    if (gnutls_pem_base64_encode2("TSS2 PRIVATE KEY", &der, &armoured) < 0)
        return 0;
    std::span<const std::uint8_t> file(armoured.data, armoured.size);
    if (!mgs::tpm::is_tss2_pem(file))
        std::abort();
    parse(file, size);
    gnutls_free(armoured.data);
    return 0;
}
