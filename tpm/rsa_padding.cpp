#include "tpm/rsa_padding.h"

#include "keystore/error.h"

#include <gnutls/crypto.h>

namespace mgs::tpm {

Bytes digest_of(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> data)
{
    Bytes out(gnutls_hash_get_len(hash));
    if (int rc = gnutls_hash_fast(hash, data.data(), data.size(), out.data()); rc < 0)
        throw_gnutls("hashing failed", rc);
    return out;
}

namespace {

Bytes mgf1(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> seed, std::size_t len)
{
    Bytes out;
    for (std::uint32_t counter = 0; out.size() < len; ++counter) {
        Bytes in(seed.begin(), seed.end());
        for (int shift = 24; shift >= 0; shift -= 8)
            in.push_back(static_cast<std::uint8_t>(counter >> shift));
        Bytes h = digest_of(hash, in);
        out.insert(out.end(), h.begin(), h.end());
    }
    out.resize(len);
    return out;
}

} // namespace

Bytes pkcs1_v15_block(std::span<const std::uint8_t> t, std::size_t k)
{
    if (k < t.size() + 11)
        throw Error("the RSA key is too small for this signature");
    Bytes em(k, 0xff);
    em[0] = 0x00;
    em[1] = 0x01;
    em[k - t.size() - 1] = 0x00;
    std::copy(t.begin(), t.end(), em.end() - static_cast<std::ptrdiff_t>(t.size()));
    return em;
}

Bytes digest_info(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> digest)
{
    gnutls_datum_t d{const_cast<unsigned char*>(digest.data()), static_cast<unsigned>(digest.size())};
    gnutls_datum_t out{};
    if (int rc = gnutls_encode_ber_digest_info(hash, &d, &out); rc < 0)
        throw_gnutls("cannot encode the DigestInfo", rc);
    Bytes b(out.data, out.data + out.size);
    gnutls_free(out.data);
    return b;
}

Bytes pss_block(gnutls_digest_algorithm_t hash, std::span<const std::uint8_t> m_hash, unsigned modulus_bits)
{
    const std::size_t h_len = gnutls_hash_get_len(hash);
    const std::size_t s_len = h_len;
    const unsigned em_bits = modulus_bits - 1;
    const std::size_t em_len = (em_bits + 7) / 8;
    if (m_hash.size() != h_len || em_len < h_len + s_len + 2)
        throw Error("cannot PSS-encode this digest for this key");

    Bytes salt(s_len);
    if (int rc = gnutls_rnd(GNUTLS_RND_NONCE, salt.data(), salt.size()); rc < 0)
        throw_gnutls("no random salt", rc);
    Bytes m_prime(8, 0);
    m_prime.insert(m_prime.end(), m_hash.begin(), m_hash.end());
    m_prime.insert(m_prime.end(), salt.begin(), salt.end());
    Bytes h = digest_of(hash, m_prime);

    Bytes db(em_len - h_len - 1, 0);
    db[em_len - s_len - h_len - 2] = 0x01;
    std::copy(salt.begin(), salt.end(), db.end() - static_cast<std::ptrdiff_t>(s_len));
    Bytes mask = mgf1(hash, h, db.size());
    for (std::size_t i = 0; i < db.size(); ++i)
        db[i] ^= mask[i];
    db[0] &= static_cast<std::uint8_t>(0xff >> (8 * em_len - em_bits));

    Bytes em = std::move(db);
    em.insert(em.end(), h.begin(), h.end());
    em.push_back(0xbc);
    // The RSA input is as long as the modulus; em is one byte shorter when
    // the modulus length is a multiple of 8 plus one bit.
    const std::size_t k = (modulus_bits + 7) / 8;
    if (em.size() < k)
        em.insert(em.begin(), k - em.size(), 0);
    return em;
}

} // namespace mgs::tpm
