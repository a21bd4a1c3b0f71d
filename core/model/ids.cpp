#include "core/model/ids.h"

namespace ks::model {

std::string new_user_id(crypto::Random& rng) { return "auth0|" + rng.hex(24); }

std::string new_prefixed_id(std::string_view prefix, crypto::Random& rng) {
  return std::string(prefix) + "_" + rng.alnum(16);
}

std::string new_client_id(crypto::Random& rng) { return rng.alnum(32); }

std::string new_client_secret(crypto::Random& rng) { return rng.alnum(64); }

bool valid_tenant_id(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(id[0])) return false;
  for (char c : id.substr(1))
    if (!lower_alnum(c) && c != '_' && c != '-') return false;
  return true;
}

}  // namespace ks::model
