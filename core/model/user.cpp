#include "core/model/user.h"

namespace ks::model {

Json new_user(const NewUser& u) {
  const auto bar = u.user_id.find('|');
  const std::string local_id = bar == std::string::npos ? u.user_id : u.user_id.substr(bar + 1);
  const std::string nickname = u.email.empty() ? local_id : u.email.substr(0, u.email.find('@'));
  Json user = {{"user_id", u.user_id},
               {"email_verified", false},
               {"name", u.email.empty() ? nickname : u.email},
               {"nickname", nickname},
               {"blocked", false},
               {"user_metadata", Json::object()},
               {"app_metadata", Json::object()},
               {"identities",
                {{{"connection", u.connection},
                  {"user_id", local_id},
                  {"provider", u.provider},
                  {"isSocial", u.is_social}}}},
               {"logins_count", 0},
               {"created_at", u.now},
               {"updated_at", u.now}};
  if (!u.email.empty()) user["email"] = u.email;
  return user;
}

std::string user_key(std::string_view connection, std::string_view email) {
  if (email.empty()) return {};
  return std::string(connection) + "\n" + std::string(email);
}

}  // namespace ks::model
