#pragma once
// Identifier formats (Auth0-compatible where Auth0 defines them) and id validation.
#include <string>
#include <string_view>

#include "core/crypto/crypto.h"

namespace ks::model {

std::string new_user_id(crypto::Random& rng);  // auth0|<24 hex>
// prefix + "_" + 16 alphanumerics: rol_, org_, con_, api_, cgr_, inv_
std::string new_prefixed_id(std::string_view prefix, crypto::Random& rng);
std::string new_client_id(crypto::Random& rng);      // 32 alphanumerics
std::string new_client_secret(crypto::Random& rng);  // 64 alphanumerics

// ^[a-z0-9][a-z0-9_-]{0,62}$
bool valid_tenant_id(std::string_view id);

}  // namespace ks::model
