#include "src/client_credentials.h"

#include "keystore/error.h"
#include "src/credentials_binding.h"

namespace mgs {

ClientCredentials::ClientCredentials(std::optional<CertificateChain> chain, std::shared_ptr<Signer> signer)
    : signer_(std::move(signer)), creds_(new_certificate_credentials())
{
    if (chain && signer_)
        bind_chain_and_key(creds_.get(), *chain, *signer_, "proxy client");
}

void ClientCredentials::trust_cas(const std::string& ca_file) { load_trust_file(creds_.get(), ca_file, false); }

void ClientCredentials::add_crls(const std::string& crl_file) { load_crl_file(creds_.get(), crl_file); }

} // namespace mgs
