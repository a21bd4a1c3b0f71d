#pragma once
// OpenID Connect / OAuth 2.0 endpoints of a tenant.
#include <optional>
#include <string>
#include <string_view>

#include "core/engine_impl.h"

namespace ks::oidc {

// Signs claims with the request tenant's current key. typ is "JWT" for ID tokens, "at+jwt" for
// access tokens.
std::string sign_token(Ctx& ctx, const Json& claims, std::string_view typ);

// Client authentication at the token endpoint (client_secret_basic or client_secret_post).
// Returns the client record or throws an OAuth error response via OAuthError.
struct OAuthError {
  int status;
  std::string error;
  std::string description;
};

struct ClientAuth {
  Json client;
  std::string method;  // client_secret_basic | client_secret_post | none
};
ClientAuth authenticate_client(Ctx& ctx, const http::Params& form);

// The client's stored secret, decrypted.
std::optional<std::string> client_secret(EngineImpl& e, std::string_view tenant,
                                         const Json& client);

// Adds CORS headers for origins registered by the tenant's clients.
Handler with_cors_handler(Handler h);

void register_authorize_routes(Routes& r);
void register_page_routes(Routes& r);
void register_endpoint_routes(Routes& r);
// /login/callback and /login/federated (federated.cpp).
void register_federated_routes(Routes& r);
// /u/reset-password, /u/reset-password/confirm, /u/email-verification (email_flows.cpp).
void register_email_flow_routes(Routes& r);

}  // namespace ks::oidc
