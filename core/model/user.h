#pragma once
// The stored shape of a user (Auth0's user object), built in one place for every way a user comes
// to exist: the Management API (POST /users), hosted signup, and a first federated login.
#include <string>
#include <string_view>

#include "core/json.h"

namespace ks::model {

struct NewUser {
  std::string user_id;     // "{provider}|{id}", e.g. "auth0|65f0…", "google-oauth2|1234"
  std::string connection;  // the connection's name
  std::string provider;    // the connection's strategy
  bool is_social = false;
  std::string email;  // lower-cased; empty when the user has none
  std::string now;    // ISO 8601, for created_at/updated_at
};

// A new user document: one identity, name and nickname derived from the email (or the id), not
// blocked, empty metadata, no logins, timestamps. Callers add what they know on top.
Json new_user(const NewUser& u);

// The unique key a user is stored under: "connection\nemail"; empty when there is no email.
std::string user_key(std::string_view connection, std::string_view email);

}  // namespace ks::model
