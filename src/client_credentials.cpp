#include "src/client_credentials.h"

#include "keystore/error.h"
#include "src/credentials_binding.h"

namespace mgs {

ClientCredentials::ClientCredentials(const std::string& ca_file, const std::string& crl_file,
                                     std::optional<CertificateChain> chain, std::shared_ptr<Signer> signer)
    : signer_(std::move(signer)), creds_(new_certificate_credentials())
{
    if (!ca_file.empty())
        load_trust_file(creds_.get(), ca_file, false);
    if (!crl_file.empty())
        load_crl_file(creds_.get(), crl_file);
    if (chain && signer_)
        bind_chain_and_key(creds_.get(), *chain, *signer_, "proxy client");
}

} // namespace mgs
