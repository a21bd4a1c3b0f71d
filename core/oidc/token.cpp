// POST /oauth/token. Grants of the foundation: client_credentials. (authorization_code,
// refresh_token and password join in the identity work.)

#include "core/crypto/crypto.h"
#include "core/engine_impl.h"
#include "core/mgmt/common.h"
#include "core/oidc/authorize.h"
#include "core/oidc/flow.h"
#include "core/oidc/oidc.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {

std::string sign_token(Ctx& ctx, const Json& claims, std::string_view typ) {
  // The current key changes only by a write of a key (rotation), which makes a new state.
  auto key = ctx.state->memo<ActiveKey>("signing_key", [&] {
    return std::make_shared<const ActiveKey>(ctx.e.keys().signing_key(ctx.tenant));
  });
  return crypto::jws_sign(*key->key, key->kid, claims, ctx.e.rng(), {{"typ", std::string(typ)}});
}

std::optional<std::string> client_secret(EngineImpl& e, std::string_view tenant,
                                         const Json& client) {
  if (!client.contains("_secret")) return std::nullopt;
  return e.open(client["_secret"].get<std::string>(),
                std::string(tenant) + "\n" + client.value("client_id", ""));
}

ClientAuth authenticate_client(Ctx& ctx, const http::Params& form) {
  std::string id, secret, method;
  std::string_view authz = ctx.req.header("authorization");
  if (authz.size() > 6 && (authz.starts_with("Basic ") || authz.starts_with("basic "))) {
    auto decoded = crypto::base64_decode(authz.substr(6));
    if (!decoded) throw OAuthError{401, "invalid_client", "Malformed Basic authorization header"};
    auto colon = decoded->find(':');
    if (colon == std::string::npos)
      throw OAuthError{401, "invalid_client", "Malformed Basic authorization header"};
    auto did = http::url_decode(std::string_view(*decoded).substr(0, colon));
    auto dsec = http::url_decode(std::string_view(*decoded).substr(colon + 1));
    if (!did || !dsec) throw OAuthError{401, "invalid_client", "Malformed Basic credentials"};
    id = *did;
    secret = *dsec;
    method = "client_secret_basic";
    if (form.has("client_secret"))
      throw OAuthError{400, "invalid_request", "Use only one client authentication method"};
    if (auto fid = form.get("client_id"); fid && *fid != id)
      throw OAuthError{400, "invalid_request", "client_id does not match the credentials"};
  } else {
    id = form.get_or("client_id", "");
    if (auto s = form.get("client_secret")) {
      secret = *s;
      method = "client_secret_post";
    } else {
      method = "none";
    }
  }
  if (id.empty()) throw OAuthError{401, "invalid_client", "Client authentication is required"};
  // A client and its opened secret, kept with the tenant's state (a client write makes a new one).
  struct KnownClient {
    Json client;
    std::optional<std::string> secret;
  };
  auto known = ctx.state->memo<KnownClient>("client\n" + id, [&] {
    std::shared_ptr<const KnownClient> out;
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
      if (auto r = tx.get("client", id)) {
        auto secret = client_secret(ctx.e, ctx.tenant, r->data);
        out = std::make_shared<const KnownClient>(KnownClient{std::move(r->data), secret});
      }
    });
    return out;
  });
  if (!known) throw OAuthError{401, "invalid_client", "Unknown client or invalid credentials"};
  if (method != "none" && (!known->secret || !crypto::constant_time_equal(*known->secret, secret)))
    throw OAuthError{401, "invalid_client", "Unknown client or invalid credentials"};
  return {known->client, method};
}

namespace {

bool allows_grant(const Json& client, std::string_view grant) {
  for (const auto& g : client.value("grant_types", Json::array()))
    if (g.is_string() && g.get<std::string>() == grant) return true;
  return false;
}

http::Response client_credentials(Ctx& ctx, const http::Params& form) {
  auto auth = authenticate_client(ctx, form);
  if (auth.method == "none")
    throw OAuthError{401, "invalid_client", "client_credentials requires client authentication"};
  const Json& client = auth.client;
  const std::string client_id = client.value("client_id", "");
  if (!allows_grant(client, "client_credentials"))
    throw OAuthError{403, "unauthorized_client",
                     "Grant type 'client_credentials' not allowed for the client."};

  const Json& settings = ctx.state->settings;
  std::string audience = form.get_or("audience", "");
  if (audience.empty()) audience = default_audience(settings);
  if (audience.empty())
    throw OAuthError{400, "invalid_request",
                     "No audience parameter was provided, and no default audience has been "
                     "configured"};

  // The API and the client's grant to it, kept with the tenant's state when both exist.
  struct Granted {
    std::optional<Json> api, grant;
  };
  std::shared_ptr<const Granted> missing;  // what was read when not both exist
  auto kept = ctx.state->memo<Granted>("grant\n" + client_id + "\n" + audience, [&] {
    auto g = std::make_shared<Granted>();
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
      if (auto r = tx.find("resource_server", audience)) g->api = std::move(r->data);
      if (auto r = tx.find("client_grant", client_id + "\n" + audience))
        g->grant = std::move(r->data);
    });
    if (g->api && g->grant) return std::shared_ptr<const Granted>(std::move(g));
    missing = std::move(g);
    return std::shared_ptr<const Granted>();
  });
  const std::optional<Json>& api = kept ? kept->api : missing->api;
  const std::optional<Json>& grant = kept ? kept->grant : missing->grant;
  if (!api) throw OAuthError{403, "access_denied", "Service not found: " + audience};
  if (!grant)
    throw OAuthError{403, "access_denied",
                     "Client is not authorized to access \"" + audience +
                         "\". You need to create a \"client-grant\" associated to this API."};

  std::vector<std::string> granted;
  for (const auto& s : grant->value("scope", Json::array()))
    granted.push_back(s.get<std::string>());
  std::vector<std::string> scopes;
  if (auto requested = form.get("scope"); requested && !requested->empty()) {
    for (const auto& s : split_scope(*requested))
      if (std::find(granted.begin(), granted.end(), s) != granted.end()) scopes.push_back(s);
  } else {
    scopes = granted;
  }
  const std::string scope = join_scope(scopes);

  const int64_t now = ctx.e.clock().now();
  const int64_t lifetime =
      capped_lifetime(api->value("token_lifetime", int64_t{ctx.e.cfg().access_token_lifetime}),
                      settings, "access_token_lifetime");
  Json claims = {{"iss", ctx.issuer},
                 {"sub", client_id + "@clients"},
                 {"aud", audience},
                 {"azp", client_id},
                 {"scope", scope},
                 {"iat", now},
                 {"exp", now + lifetime},
                 {"jti", ctx.e.rng().token(16)},
                 {"gty", "client-credentials"},
                 {"tenant_id", ctx.tenant}};
  if (!ctx.state->hooks_for(hooks::Trigger::kCredentialsExchange).empty()) {
    Json event = {{"client", hook_client(client)},
                  {"resource_server",
                   {{"id", api->value("id", "")},
                    {"identifier", audience},
                    {"name", api->value("name", "")}}},
                  {"transaction", {{"requested_scopes", scopes}}}};
    auto out = run_hooks(ctx, hooks::Trigger::kCredentialsExchange, std::move(event), "feccft",
                         {{"client_id", client_id}, {"audience", audience}});
    if (out && !out->ok()) throw OAuthError{403, "access_denied", hook_message(*out)};
    if (out) add_hook_claims(claims, out->access_token_claims);
  }
  Json body = {{"access_token", sign_token(ctx, claims, "at+jwt")},
               {"token_type", "Bearer"},
               {"expires_in", lifetime}};
  if (!scope.empty()) body["scope"] = scope;
  auto r = http::Response::json(200, body);
  r.set_header("cache-control", "no-store");
  r.set_header("pragma", "no-cache");
  return r;
}

// Public clients (token_endpoint_auth_method "none") identify themselves with client_id only;
// every other client must authenticate.
ClientAuth authenticate_for_user_grant(Ctx& ctx, const http::Params& form) {
  auto auth = authenticate_client(ctx, form);
  const bool is_public = auth.client.value("token_endpoint_auth_method", "") == "none";
  if (auth.method == "none" && !is_public)
    throw OAuthError{401, "invalid_client", "Client authentication is required"};
  return auth;
}

// Deletes every refresh token of a family (reuse detection, reused codes, revocation).
void revoke_family(Ctx& ctx, store::Tx& tx, const std::string& family) {
  if (family.empty()) return;
  store::ListQuery q;
  q.field = "family";
  q.value = family;
  q.limit = 100000;
  for (const auto& r : tx.list("refresh_token", q)) tx.remove("refresh_token", r.id);
  (void)ctx;
}

http::Response token_response(Json body) {
  auto r = http::Response::json(200, body);
  r.set_header("cache-control", "no-store");
  r.set_header("pragma", "no-cache");
  return r;
}

http::Response authorization_code(Ctx& ctx, const http::Params& form) {
  auto auth = authenticate_for_user_grant(ctx, form);
  const std::string client_id = auth.client.value("client_id", "");
  if (!allows_grant(auth.client, "authorization_code"))
    throw OAuthError{403, "unauthorized_client",
                     "Grant type 'authorization_code' not allowed for the client."};
  const std::string code = form.get_or("code", "");
  if (code.empty()) throw OAuthError{400, "invalid_request", "Missing required parameter: code"};
  const std::string id = token_id(code);
  const int64_t now = ctx.e.clock().now();
  std::optional<Json> rec;
  std::string error;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get("auth_code", id);
    if (!r) {
      error = "Invalid authorization code";
      return;
    }
    Json d = r->data;
    if (d.value("used", false)) {
      // A replayed code: revoke everything it issued.
      revoke_family(ctx, tx, d.value("family", ""));
      tx.remove("auth_code", id);
      error = "Invalid authorization code";
      return;
    }
    if (d.value("expires_at", int64_t{0}) <= now) {
      tx.remove("auth_code", id);
      error = "Invalid authorization code";
      return;
    }
    if (d["grant"].value("client_id", "") != client_id) {
      error = "Invalid authorization code";
      return;
    }
    d["used"] = true;
    d["family"] = ctx.e.rng().token(16);
    tx.update("auth_code", id, d);
    rec = std::move(d);
  });
  if (!rec) throw OAuthError{400, "invalid_grant", error};
  if (form.get_or("redirect_uri", "") != rec->value("redirect_uri", ""))
    throw OAuthError{400, "invalid_grant", "redirect_uri does not match the authorization request"};
  const std::string challenge = rec->value("code_challenge", "");
  if (!challenge.empty()) {
    const std::string verifier = form.get_or("code_verifier", "");
    if (verifier.size() < 43 || verifier.size() > 128 ||
        crypto::base64url_encode(crypto::sha256(verifier)) != challenge)
      throw OAuthError{400, "invalid_grant", "Failed to verify code verifier"};
  } else if (form.has("code_verifier")) {
    throw OAuthError{400, "invalid_grant", "Failed to verify code verifier"};
  }
  Grant g = Grant::from_json((*rec)["grant"]);
  Json body = issue_user_tokens(ctx, auth.client, g, rec->value("family", ""));
  log_event(ctx, "seacft",
            {{"client_id", client_id},
             {"user_id", g.user_id},
             {"description", "Authorization Code for Access Token"}});
  return token_response(std::move(body));
}

http::Response refresh_token(Ctx& ctx, const http::Params& form) {
  auto auth = authenticate_for_user_grant(ctx, form);
  const std::string client_id = auth.client.value("client_id", "");
  if (!allows_grant(auth.client, "refresh_token"))
    throw OAuthError{403, "unauthorized_client",
                     "Grant type 'refresh_token' not allowed for the client."};
  const std::string token = form.get_or("refresh_token", "");
  if (token.empty())
    throw OAuthError{400, "invalid_request", "Missing required parameter: refresh_token"};
  const std::string id = token_id(token);
  const int64_t now = ctx.e.clock().now();
  const bool rotating =
      auth.client.value("refresh_token", Json::object()).value("rotation_type", "rotating") !=
      "non-rotating";
  std::optional<Json> rec;
  bool reused = false;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get("refresh_token", id);
    if (!r || r->data.value("client_id", "") != client_id) return;
    if (r->data.value("used", false)) {
      // Reuse of a rotated token: the whole family goes, the newest token too.
      revoke_family(ctx, tx, r->data.value("family", ""));
      reused = true;
      return;
    }
    if (r->data.value("expires_at", int64_t{0}) <= now) {
      tx.remove("refresh_token", id);
      return;
    }
    if (rotating) {
      Json d = r->data;
      d["used"] = true;
      tx.update("refresh_token", id, d);
    }
    rec = std::move(r->data);
  });
  if (reused) {
    log_event(ctx, "ferrt",
              {{"client_id", client_id},
               {"description", "Reused rotating refresh token: family revoked"}});
    throw OAuthError{400, "invalid_grant", "Unknown or invalid refresh token."};
  }
  if (!rec) {
    log_event(ctx, "ferrt",
              {{"client_id", client_id}, {"description", "Unknown or invalid refresh token"}});
    throw OAuthError{400, "invalid_grant", "Unknown or invalid refresh token."};
  }
  Grant g = Grant::from_json((*rec)["grant"]);
  if (auto org = form.get("organization"); org && *org != g.org_id && *org != g.org_name)
    throw OAuthError{400, "invalid_grant", "A refresh token cannot switch organization"};
  if (auto scope = form.get("scope"); scope && !scope->empty()) {
    for (const auto& s : split_scope(*scope))
      if (!has_scope(g.scope, s))
        throw OAuthError{403, "invalid_scope",
                         "Scope " + s + " was not granted to the refresh token"};
    // Down-scoping keeps offline_access so the new refresh token carries the original grant.
    Grant narrowed = g;
    narrowed.scope = *scope;
    if (has_scope(g.scope, "offline_access") && !has_scope(narrowed.scope, "offline_access"))
      narrowed.scope += " offline_access";
    g = narrowed;
  }
  Json body = issue_user_tokens(ctx, auth.client, g, rec->value("family", ""), rotating);
  if (!rotating) body["refresh_token"] = token;  // non-rotating: the same token stays valid
  log_event(ctx, "sertft",
            {{"client_id", client_id},
             {"user_id", g.user_id},
             {"description", "Refresh Token for Access Token"}});
  return token_response(std::move(body));
}

http::Response password_grant(Ctx& ctx, const http::Params& form) {
  auto auth = authenticate_for_user_grant(ctx, form);
  const std::string client_id = auth.client.value("client_id", "");
  if (!allows_grant(auth.client, "password") &&
      !allows_grant(auth.client, "http://auth0.com/oauth/grant-type/password-realm"))
    throw OAuthError{403, "unauthorized_client",
                     "Grant type 'password' not allowed for the client."};
  const std::string username = form.get_or("username", ""), password = form.get_or("password", "");
  if (username.empty() || password.empty())
    throw OAuthError{400, "invalid_request", "Missing required parameters: username and password"};
  const std::string connection = form.get_or("realm", std::string(kDatabaseConnection));
  std::optional<store::Record> user;
  ctx.e.store().read(ctx.tenant,
                     [&](store::Tx& tx) { user = find_db_user(tx, connection, username); });
  if (!user_password_matches(user, password)) {
    log_event(ctx, user ? "fp" : "fu",
              {{"client_id", client_id},
               {"user_name", username},
               {"description", "Wrong email or password."}});
    throw OAuthError{403, "invalid_grant", "Wrong email or password."};
  }
  if (user->data.value("blocked", false)) throw OAuthError{401, "unauthorized", "user is blocked"};
  Grant g;
  g.user_id = user->id;
  g.client_id = client_id;
  g.scope = form.get_or("scope", "openid");
  g.audience = form.get_or("audience", "");
  g.auth_time = ctx.e.clock().now();
  AuthRequest ar;
  ar.client_id = client_id;
  ar.scope = g.scope;
  ar.audience = g.audience;
  if (auto out = post_login(ctx, ar, auth.client, user->id, g); out && !out->ok())
    throw OAuthError{403, "access_denied", hook_message(*out)};
  Json body = issue_user_tokens(ctx, auth.client, g);
  log_event(ctx, "s",
            {{"client_id", client_id},
             {"user_id", user->id},
             {"user_name", username},
             {"description", "Successful login (password grant)"}});
  return token_response(std::move(body));
}

// kHostUserGrant, only with system authority (Engine::token): the host vouches for the user, so
// no client secret or password is asked; everything else is checked as for a login — the client,
// the user (not blocked), the API, membership of the organization — and post-login hooks run.
http::Response host_user_grant(Ctx& ctx, const http::Params& form) {
  const std::string client_id = form.get_or("client_id", ""), user_id = form.get_or("user_id", "");
  if (client_id.empty() || user_id.empty())
    throw OAuthError{400, "invalid_request", "Missing required parameters: client_id and user_id"};
  std::optional<Json> client, user, org;
  const std::string audience = form.get_or("audience", "");
  const auto organization = form.get("organization");
  bool api = true, member = true;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto r = tx.get("client", client_id)) client = std::move(r->data);
    if (auto r = tx.get("user", user_id)) user = std::move(r->data);
    if (!audience.empty()) api = tx.find("resource_server", audience).has_value();
    if (organization && !organization->empty()) {
      org = find_organization(tx, *organization);
      if (org) member = tx.linked("org_member", org->value("id", ""), user_id);
    }
  });
  if (!client) throw OAuthError{400, "invalid_request", "Unknown client: " + client_id};
  if (!user) throw OAuthError{400, "invalid_grant", "Unknown user: " + user_id};
  if (user->value("blocked", false)) throw OAuthError{401, "unauthorized", "user is blocked"};
  if (!api) throw OAuthError{403, "access_denied", "Service not found: " + audience};
  if (organization && !organization->empty() && !org)
    throw OAuthError{400, "invalid_request", "No organization found by that id or name"};
  if (!member)
    throw OAuthError{403, "access_denied", "User is not a member of the specified organization"};
  Grant g;
  g.user_id = user_id;
  g.client_id = client_id;
  g.scope = form.get_or("scope", "openid");
  g.audience = audience;
  g.auth_time = ctx.e.clock().now();
  AuthRequest ar;
  ar.client_id = client_id;
  ar.scope = g.scope;
  ar.audience = audience;
  if (org) {
    g.org_id = ar.org_id = org->value("id", "");
    g.org_name = ar.org_name = org->value("name", "");
  }
  if (auto out = post_login(ctx, ar, *client, user_id, g); out && !out->ok())
    throw OAuthError{403, "access_denied", hook_message(*out)};
  Json body = issue_user_tokens(ctx, *client, g);
  log_event(ctx, "s",
            {{"client_id", client_id},
             {"user_id", user_id},
             {"description", "Successful login (tokens issued by the host)"}});
  return token_response(std::move(body));
}

}  // namespace
}  // namespace ks::oidc

namespace ks {

void register_token_routes(Routes& r) {
  r.add(
      "POST", "/oauth/token", oidc::with_cors_handler([](Ctx& ctx) -> http::Response {
        try {
          auto ct = ctx.req.header("content-type");
          if (!ct.starts_with("application/x-www-form-urlencoded") &&
              !ct.starts_with("application/json"))
            throw oidc::OAuthError{400, "invalid_request",
                                   "Content-Type must be application/x-www-form-urlencoded or "
                                   "application/json"};
          http::Params form;
          try {
            form = ctx.form_body();
          } catch (const http::HttpError& e) {
            throw oidc::OAuthError{400, "invalid_request", e.message};
          }
          const std::string grant = form.get_or("grant_type", "");
          if (grant.empty()) throw oidc::OAuthError{400, "invalid_request", "Missing grant_type"};
          if (grant == "client_credentials") return oidc::client_credentials(ctx, form);
          if (grant == "authorization_code") return oidc::authorization_code(ctx, form);
          if (grant == "refresh_token") return oidc::refresh_token(ctx, form);
          if (grant == "password" || grant == "http://auth0.com/oauth/grant-type/password-realm")
            return oidc::password_grant(ctx, form);
          if (grant == oidc::kHostUserGrant && ctx.caller.system)
            return oidc::host_user_grant(ctx, form);
          throw oidc::OAuthError{400, "unsupported_grant_type", "Unsupported grant type: " + grant};
        } catch (const oidc::OAuthError& e) {
          return http::Response::oauth_error(e.status, e.error, e.description);
        }
      }));
}

}  // namespace ks
