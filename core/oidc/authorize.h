#pragma once
// The authorization endpoint and the completion of a login transaction.
#include <optional>
#include <string>

#include "core/engine_impl.h"
#include "core/json.h"
#include "core/oidc/flow.h"

namespace ks::oidc {

// A validated /authorize request, stored as a login transaction while the user signs in.
struct AuthRequest {
  std::string client_id;
  std::string redirect_uri;
  std::string response_mode;  // query | fragment | form_post | web_message
  std::string scope;
  std::string state;
  std::string nonce;
  std::string code_challenge;
  std::string audience;
  std::string org_id;  // resolved organization
  std::string org_name;
  std::string prompt;
  std::string login_hint;
  std::string screen_hint;
  std::string connection;
  int64_t max_age = -1;
  // Federated logins (federated.cpp): the nonce and PKCE verifier sent to the upstream identity
  // provider, and token_id of the cookie that binds the login to the browser that started it.
  std::string upstream_nonce;
  std::string upstream_verifier;
  std::string upstream_binding;

  Json to_json() const;
  static AuthRequest from_json(const Json& j);
};

// Sends the result to the client: code (or error) by response_mode.
http::Response respond(Ctx& ctx, const AuthRequest& ar, const Json& client, const Json& params);
http::Response respond_error(Ctx& ctx, const AuthRequest& ar, const Json& client,
                             std::string_view error, std::string_view description);

// The user is authenticated (session_id names the session): checks the organization,
// issues the code and answers the client. extra_headers (Set-Cookie) are added.
// Runs the tenant's post-login hooks for a user who just authenticated: their custom claims go
// into `g`, their metadata changes into the user. nullopt when the tenant has none; a result that
// is not ok() (denied, failed) must end the login with access_denied.
std::optional<hooks::Outcome> post_login(Ctx& ctx, const AuthRequest& ar, const Json& client,
                                         const std::string& user_id, Grant& g);

http::Response complete_authorization(Ctx& ctx, const AuthRequest& ar, const Json& client,
                                      const std::string& user_id, int64_t auth_time,
                                      const std::string& session_id,
                                      const std::vector<http::Header>& extra_headers = {});

// Login transactions (the `state` of /u/login).
std::string save_login_tx(Ctx& ctx, const AuthRequest& ar, std::string& csrf);
struct LoginTx {
  std::string id;
  std::string csrf;
  AuthRequest ar;
  Json client;
};
std::optional<LoginTx> load_login_tx(Ctx& ctx, std::string_view id);
void drop_login_tx(Ctx& ctx, std::string_view id);

// ---- federated connections (federated.cpp) -------------------------------------------------

// True for the strategies that log in at an upstream identity provider: oidc, oauth2,
// google-oauth2, github.
bool is_federated_strategy(std::string_view strategy);
// /authorize with a federated `connection`: saves a login transaction and redirects to the
// upstream authorization endpoint (errors go back to the client's validated redirect_uri).
http::Response federated_redirect(Ctx& ctx, const AuthRequest& ar, const Json& client,
                                  const Json& connection);
// The "Continue with …" links of the hosted login page: one per federated connection enabled
// for the transaction's client; empty when there is none.
std::string federated_buttons_html(Ctx& ctx, const LoginTx& tx);

}  // namespace ks::oidc
