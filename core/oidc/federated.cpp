// Federated connections: logins at an upstream identity provider.
//
//   /authorize?connection=X  or  /login/federated?state=&connection=X (the login page's buttons)
//     → 302 to the upstream authorization endpoint, `state` = a new login transaction
//   /login/callback?code&state  (GET; POST for form_post upstreams)
//     → code exchanged server-side (client_secret_post), identity taken from the validated ID
//       token (oidc, google-oauth2) or the profile endpoint (oauth2, github), the user
//       `{strategy}|{sub}` found or created, session started, code sent to the client.
//
// Strategies: oidc (discovery or explicit endpoints), oauth2 (authorizationURL, tokenURL,
// userinfo_url), google-oauth2 and github (fixed endpoints). Upstream discovery documents and
// JWKS are cached in memory for kDocumentTtl, keyed by URL; an unknown `kid` refetches the
// JWKS once.
#include <algorithm>

#include "core/crypto/crypto.h"
#include "core/http/form.h"
#include "core/model/user.h"
#include "core/net/http_client.h"
#include "core/oidc/authorize.h"
#include "core/oidc/flow.h"
#include "core/oidc/oidc.h"
#include "core/oidc/verify.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {
namespace {

constexpr int64_t kDocumentTtl = 600;  // seconds: upstream discovery documents and JWKS
constexpr int64_t kClockSkew = 60;     // seconds of leeway for upstream nbf/iat
constexpr size_t kMaxSubLength = 255;
constexpr size_t kMaxDescription = 200;
constexpr std::string_view kBindingCookie = "ks_fed_";

constexpr const char* kGoogleAuthorize = "https://accounts.google.com/o/oauth2/v2/auth";
constexpr const char* kGoogleToken = "https://oauth2.googleapis.com/token";
constexpr const char* kGoogleJwks = "https://www.googleapis.com/oauth2/v3/certs";
constexpr const char* kGoogleIssuer = "https://accounts.google.com";
constexpr const char* kGithubAuthorize = "https://github.com/login/oauth/authorize";
constexpr const char* kGithubToken = "https://github.com/login/oauth/access_token";
constexpr const char* kGithubUser = "https://api.github.com/user";
constexpr const char* kGithubEmails = "https://api.github.com/user/emails";

// A failure of the upstream leg, answered to the client as an OAuth error.
struct UpstreamError {
  std::string error;  // access_denied | temporarily_unavailable | server_error
  std::string description;
};

[[noreturn]] void fail(std::string error, std::string description) {
  throw UpstreamError{std::move(error), std::move(description)};
}

// What the engine needs to know about one upstream, resolved from the connection.
struct Upstream {
  std::string strategy;
  std::string client_id;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string jwks_uri;
  std::string userinfo_endpoint;
  std::vector<std::string> issuers;  // accepted `iss` of ID tokens; the first is canonical
  std::string scope;
  bool id_token = false;  // oidc, google-oauth2: the identity is the validated ID token
  bool pkce = false;
};

std::string str_opt(const Json& options, const char* key) {
  auto it = options.find(key);
  return it != options.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string first_of(std::initializer_list<std::string> values) {
  for (const auto& v : values)
    if (!v.empty()) return v;
  return {};
}

std::string without_trailing_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool http_url(std::string_view url) {
  return url.starts_with("https://") || url.starts_with("http://");
}

// options.scope as a string or an array of strings, else the strategy's default.
std::string scope_of(const Json& options, std::string_view dflt) {
  auto it = options.find("scope");
  if (it == options.end()) return std::string(dflt);
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::vector<std::string> parts;
    for (const auto& s : *it)
      if (s.is_string() && !s.get<std::string>().empty()) parts.push_back(s.get<std::string>());
    return join_scope(parts);
  }
  return std::string(dflt);
}

// Printable ASCII only, bounded: upstream text that ends up in our redirects and logs.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxDescription) break;
    if (c >= 0x20 && c < 0x7f) out.push_back(c);
  }
  return out;
}

Json parse_body(const net::HttpResult& r) {
  std::string_view ct;
  for (const auto& h : r.headers)
    if (h.name == "content-type") ct = h.value;
  Json j = Json::parse(r.body, nullptr, false);
  if (j.is_object()) return j;
  if (ct.starts_with("application/x-www-form-urlencoded")) {
    Json out = Json::object();
    const http::Params form = http::Params::parse(r.body);
    for (const auto& [k, v] : form.items()) out[k] = v;
    return out;
  }
  return Json();
}

net::HttpResult fetch(Ctx& ctx, std::string_view method, const std::string& url,
                      std::vector<http::Header> headers, const std::string& body = {}) {
  if (!http_url(url)) fail("server_error", "The connection has an invalid URL");
  auto r = ctx.e.http().fetch(method, url, headers, body);
  if (r.status == 0 || r.status >= 500)
    fail("temporarily_unavailable", "The identity provider could not be reached");
  return r;
}

// A JSON document (discovery, JWKS) through the engine's cache.
Json cached_document(Ctx& ctx, const std::string& url, bool refresh = false) {
  const int64_t now = ctx.e.clock().now();
  if (!refresh)
    if (auto hit = ctx.e.http_cache().get(url, now)) return *hit;
  auto r = fetch(ctx, "GET", url, {{"accept", "application/json"}});
  Json doc = parse_body(r);
  if (r.status != 200 || !doc.is_object())
    fail("temporarily_unavailable", "The identity provider's metadata could not be loaded");
  ctx.e.http_cache().put(url, doc, now + kDocumentTtl, now);
  return doc;
}

Upstream resolve(Ctx& ctx, const Json& con) {
  const Json options =
      con.contains("options") && con["options"].is_object() ? con["options"] : Json::object();
  Upstream u;
  u.strategy = con.value("strategy", "");
  u.client_id = str_opt(options, "client_id");
  if (u.strategy == "google-oauth2") {
    u.authorization_endpoint = kGoogleAuthorize;
    u.token_endpoint = kGoogleToken;
    u.jwks_uri = kGoogleJwks;
    u.issuers = {kGoogleIssuer, "accounts.google.com"};
    u.scope = scope_of(options, "openid profile email");
    u.id_token = true;
    u.pkce = true;
  } else if (u.strategy == "github") {
    u.authorization_endpoint = kGithubAuthorize;
    u.token_endpoint = kGithubToken;
    u.userinfo_endpoint = kGithubUser;
    u.scope = scope_of(options, "read:user user:email");
  } else if (u.strategy == "oauth2") {
    u.authorization_endpoint = first_of(
        {str_opt(options, "authorizationURL"), str_opt(options, "authorization_endpoint")});
    u.token_endpoint = first_of({str_opt(options, "tokenURL"), str_opt(options, "token_endpoint")});
    u.userinfo_endpoint =
        first_of({str_opt(options, "userinfo_url"), str_opt(options, "userinfo_endpoint")});
    u.scope = scope_of(options, "");
    u.pkce = options.contains("pkce") && options["pkce"] == true;
  } else if (u.strategy == "oidc") {
    const std::string issuer = str_opt(options, "issuer");
    std::string discovery = str_opt(options, "discovery_url");
    if (discovery.empty() && !issuer.empty())
      discovery = without_trailing_slash(issuer) + "/.well-known/openid-configuration";
    u.authorization_endpoint = str_opt(options, "authorization_endpoint");
    u.token_endpoint = str_opt(options, "token_endpoint");
    u.jwks_uri = str_opt(options, "jwks_uri");
    std::string iss = issuer;
    const bool explicit_all = !u.authorization_endpoint.empty() && !u.token_endpoint.empty() &&
                              !u.jwks_uri.empty() && !issuer.empty();
    if (!explicit_all && !discovery.empty()) {
      const Json doc = cached_document(ctx, discovery);
      const std::string doc_iss = str_opt(doc, "issuer");
      if (!issuer.empty() && without_trailing_slash(doc_iss) != without_trailing_slash(issuer))
        fail("server_error", "The identity provider's issuer does not match the connection");
      if (!doc_iss.empty()) iss = doc_iss;
      if (u.authorization_endpoint.empty())
        u.authorization_endpoint = str_opt(doc, "authorization_endpoint");
      if (u.token_endpoint.empty()) u.token_endpoint = str_opt(doc, "token_endpoint");
      if (u.jwks_uri.empty()) u.jwks_uri = str_opt(doc, "jwks_uri");
    }
    if (!iss.empty()) u.issuers = {iss};
    u.scope = scope_of(options, "openid profile email");
    u.id_token = true;
    u.pkce = !(options.contains("pkce") && options["pkce"] == false);
  } else {
    fail("invalid_request", "Unsupported connection strategy: " + u.strategy);
  }
  if (u.client_id.empty()) fail("server_error", "The connection has no client_id");
  if (!http_url(u.authorization_endpoint) || !http_url(u.token_endpoint) ||
      (u.id_token && (!http_url(u.jwks_uri) || u.issuers.empty())) ||
      (!u.id_token && !http_url(u.userinfo_endpoint)))
    fail("server_error", "The connection's endpoints are not configured");
  return u;
}

// The connection's client secret: the child's own, else (runtime fallback) the control plane's,
// each opened with the associated data of the tenant that sealed it.
std::string connection_secret(Ctx& ctx, const Json& con) {
  return str_opt(tenancy::open_connection_secrets(ctx.e, ctx.tenant, con), "client_secret");
}

bool enabled_for(const Json& con, const Json& client) {
  const Json& enabled = con.contains("enabled_clients") ? con["enabled_clients"] : Json();
  if (!enabled.is_array() || enabled.empty()) return true;
  const std::string id = client.value("client_id", "");
  return std::any_of(enabled.begin(), enabled.end(), [&](const Json& c) { return c == id; });
}

// The connection as the login sees it (runtime fallback from the control plane included).
std::optional<Json> connection_named(Ctx& ctx, std::string_view name) {
  std::optional<Json> con;
  if (name.empty()) return con;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    con = tenancy::effective_connection(*ctx.state, tx, name);
  });
  return con;
}

// ---- browser binding --------------------------------------------------------------------------

// The cookie that ties a federated login to the browser that started it (login CSRF): its name
// is derived from the transaction, its value's token_id is stored in the transaction.
std::string binding_cookie_name(std::string_view tx_id) {
  return std::string(kBindingCookie) + token_id(tx_id).substr(0, 16);
}

std::string binding_cookie(const Ctx& ctx, std::string_view tx_id, std::string_view value,
                           int64_t max_age) {
  auto scheme = ctx.issuer.find("://");
  auto slash = ctx.issuer.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const std::string base = slash == std::string::npos ? "/" : ctx.issuer.substr(slash);
  // Upstreams answering with form_post come back by a cross-site POST: SameSite=None (which
  // browsers accept only with Secure) over https; Lax over plain http.
  const bool secure = ctx.issuer.starts_with("https://");
  return binding_cookie_name(tx_id) + "=" + std::string(value) + "; Path=" + base +
         "login/callback; HttpOnly; Max-Age=" + std::to_string(max_age) +
         (secure ? "; SameSite=None; Secure" : "; SameSite=Lax");
}

std::string request_cookie(const Ctx& ctx, const std::string& name) {
  std::string value;
  for (const auto& h : ctx.req.headers) {
    if (h.name != "cookie") continue;
    for (auto& [k, v] : http::parse_cookies(h.value))
      if (k == name) value = v;
  }
  return value;
}

// ---- the upstream leg -------------------------------------------------------------------------

Json exchange_code(Ctx& ctx, const Upstream& u, const std::string& code, const std::string& secret,
                   const std::string& verifier) {
  http::Params form;
  form.add("grant_type", "authorization_code");
  form.add("code", code);
  form.add("redirect_uri", ctx.issuer + "login/callback");
  form.add("client_id", u.client_id);
  if (!secret.empty()) form.add("client_secret", secret);
  if (!verifier.empty()) form.add("code_verifier", verifier);
  auto r =
      fetch(ctx, "POST", u.token_endpoint,
            {{"content-type", "application/x-www-form-urlencoded"}, {"accept", "application/json"}},
            form.encode());
  Json body = parse_body(r);
  if (r.status != 200 || !body.is_object() || body.contains("error")) {
    std::string why = body.is_object() ? str_opt(body, "error") : std::string();
    fail("access_denied", "The identity provider refused the authorization code" +
                              (why.empty() ? std::string() : ": " + sanitize(why)));
  }
  if (!body.contains("access_token") || !body["access_token"].is_string())
    fail("access_denied", "The identity provider returned no access token");
  if (u.id_token && (!body.contains("id_token") || !body["id_token"].is_string()))
    fail("access_denied", "The identity provider returned no ID token");
  return body;
}

// The verification keys of a JWKS that may have signed a token with this kid and alg.
std::vector<std::unique_ptr<crypto::PublicKey>> candidate_keys(const Json& jwks,
                                                               const std::string& kid,
                                                               crypto::Alg alg) {
  std::vector<std::unique_ptr<crypto::PublicKey>> out;
  const Json keys = jwks.value("keys", Json::array());
  if (!keys.is_array()) return out;
  for (const auto& k : keys) {
    if (!k.is_object()) continue;
    if (!kid.empty() && str_opt(k, "kid") != kid) continue;
    auto key = crypto::PublicKey::from_jwk(k);
    if (key && key->alg() == alg) out.push_back(std::move(key));
  }
  return out;
}

// The upstream ID token's claims once signature, iss, aud, azp, exp, nbf and nonce check out.
Json validate_id_token(Ctx& ctx, const Upstream& u, const std::string& token,
                       const std::string& nonce) {
  auto jws = crypto::jws_parse(token);
  if (!jws) fail("access_denied", "The identity provider returned a malformed ID token");
  const Json& h = jws->header;
  const std::string alg_name = str_opt(h, "alg");
  const auto alg = crypto::alg_from_name(alg_name);  // RS256 or ES256 only: no none, no HS*
  if (!alg) fail("access_denied", "Unsupported ID token algorithm: " + sanitize(alg_name));
  const std::string kid = str_opt(h, "kid");
  auto keys = candidate_keys(cached_document(ctx, u.jwks_uri), kid, *alg);
  if (keys.empty() && !kid.empty())  // the upstream may have rotated its keys: refetch once
    keys = candidate_keys(cached_document(ctx, u.jwks_uri, true), kid, *alg);
  const bool signed_ok = std::any_of(keys.begin(), keys.end(), [&](const auto& k) {
    return k->verify(jws->signing_input, jws->signature);
  });
  if (!signed_ok) fail("access_denied", "The ID token signature is invalid");

  const Json& c = jws->payload;
  const std::string iss = str_opt(c, "iss");
  if (std::find(u.issuers.begin(), u.issuers.end(), iss) == u.issuers.end())
    fail("access_denied", "The ID token was issued by another issuer");
  if (!audience_has(c.value("aud", Json()), u.client_id))
    fail("access_denied", "The ID token is meant for another audience");
  if (c.contains("azp") && c["azp"] != u.client_id)
    fail("access_denied", "The ID token was issued to another party");
  const int64_t now = ctx.e.clock().now();
  if (!c.contains("exp") || !c["exp"].is_number() || c["exp"].get<int64_t>() <= now)
    fail("access_denied", "The ID token has expired");
  if (c.contains("nbf") && c["nbf"].is_number() && c["nbf"].get<int64_t>() > now + kClockSkew)
    fail("access_denied", "The ID token is not valid yet");
  const std::string got_nonce = str_opt(c, "nonce");
  if (got_nonce.empty() || !crypto::constant_time_equal(got_nonce, nonce))
    fail("access_denied", "The ID token nonce does not match");
  return c;
}

Json bearer_get(Ctx& ctx, const std::string& url, const std::string& access_token,
                std::string_view accept) {
  auto r = fetch(ctx, "GET", url,
                 {{"authorization", "Bearer " + access_token}, {"accept", std::string(accept)}});
  if (r.status != 200) fail("access_denied", "The identity provider refused the profile request");
  Json j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded()) fail("access_denied", "The identity provider returned a malformed profile");
  return j;
}

// The upstream profile (oauth2, github), in OIDC claim names.
Json fetch_profile(Ctx& ctx, const Upstream& u, const std::string& access_token) {
  const bool github = u.strategy == "github";
  const std::string accept = github ? "application/vnd.github+json" : "application/json";
  Json p = bearer_get(ctx, u.userinfo_endpoint, access_token, accept);
  if (!p.is_object()) fail("access_denied", "The identity provider returned a malformed profile");
  Json c = Json::object();
  for (const char* k : {"sub", "id"}) {
    if (!p.contains(k)) continue;
    if (p[k].is_string() && !p[k].get<std::string>().empty()) {
      c["sub"] = p[k];
      break;
    }
    if (p[k].is_number_integer()) {
      c["sub"] = std::to_string(p[k].get<int64_t>());
      break;
    }
  }
  for (const char* k :
       {"email", "email_verified", "name", "nickname", "picture", "given_name", "family_name"})
    if (p.contains(k)) c[k] = p[k];
  if (github) {
    if (p.contains("login")) c["nickname"] = p["login"];
    if (p.contains("avatar_url")) c["picture"] = p["avatar_url"];
    if (!p.contains("name") || !p["name"].is_string())
      c["name"] = p.contains("login") ? p["login"] : Json();
    c["email_verified"] = false;
    if (has_scope(u.scope, "user:email")) {
      // The public profile's email may be absent or unverified: the primary address decides.
      try {
        Json emails = bearer_get(ctx, kGithubEmails, access_token, accept);
        for (const auto& e : emails.is_array() ? emails : Json::array()) {
          if (!e.is_object() || !e.contains("primary") || e["primary"] != true) continue;
          c["email"] = e.contains("email") ? e["email"] : Json();
          c["email_verified"] = e.contains("verified") && e["verified"] == true;
        }
      } catch (const UpstreamError&) {
        // Keep the public profile's email, unverified.
      }
    }
  }
  return c;
}

// ---- users ------------------------------------------------------------------------------------

// The profile attributes we keep, validated and bounded like the Management API's.
Json profile_attributes(const Json& claims) {
  Json p = Json::object();
  auto take = [&](const char* k, size_t max) {
    if (claims.contains(k) && claims[k].is_string()) {
      const std::string v = claims[k].get<std::string>();
      if (!v.empty() && v.size() <= max) p[k] = v;
    }
  };
  take("name", 300);
  take("nickname", 300);
  take("given_name", 150);
  take("family_name", 150);
  take("picture", 2048);
  if (claims.contains("email") && claims["email"].is_string()) {
    std::string e = claims["email"].get<std::string>();
    for (auto& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto at = e.find('@');
    if (at != std::string::npos && at > 0 && at + 1 < e.size() && e.size() <= 320 &&
        e.find('@', at + 1) == std::string::npos &&
        e.find_first_of(" \t\r\n<>\"") == std::string::npos)
      p["email"] = e;
  }
  if (p.contains("email")) {
    const Json& v = claims.contains("email_verified") ? claims["email_verified"] : Json();
    p["email_verified"] = v == true || v == "true";
  }
  return p;
}

enum class UserOutcome { kOk, kBlocked, kForeign };

// Finds `{strategy}|{sub}` (never links by email: an upstream's email is not proof of owning a
// local account) or creates it; counts the login.
UserOutcome upsert_user(Ctx& ctx, const Json& con, const Json& claims, std::string& user_id) {
  const std::string strategy = con.value("strategy", "");
  const std::string connection = con.value("name", "");
  const std::string sub = claims["sub"].get<std::string>();
  user_id = strategy + "|" + sub;
  const Json attrs = profile_attributes(claims);
  const bool first_login_only =
      con.contains("options") && con["options"].is_object() &&
      str_opt(con["options"], "set_user_root_attributes") == "on_first_login";
  const std::string now = iso8601(ctx.e.clock().now_ms());
  UserOutcome outcome = UserOutcome::kOk;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    // The email key (connection + email, as the Management API keeps it) is set unless another
    // account of the same connection holds it already.
    auto email_key = [&](const Json& user) {
      const std::string email = user.value("email", "");
      if (email.empty()) return std::string();
      const std::string key = connection + "\n" + email;
      auto holder = tx.find("user", key);
      return holder && holder->id != user_id ? std::string() : key;
    };
    if (auto existing = tx.get("user", user_id)) {
      Json d = existing->data;
      bool ours = false;
      const Json ids = d.contains("identities") ? d["identities"] : Json();
      for (const auto& i : ids.is_array() ? ids : Json::array())
        ours = ours || (i.is_object() && str_opt(i, "provider") == strategy &&
                        str_opt(i, "user_id") == sub && str_opt(i, "connection") == connection);
      if (!ours) {
        outcome = UserOutcome::kForeign;
        return;
      }
      if (d.value("blocked", false)) {
        outcome = UserOutcome::kBlocked;
        return;
      }
      if (!first_login_only)
        for (auto it = attrs.begin(); it != attrs.end(); ++it) d[it.key()] = *it;
      d["logins_count"] = d.value("logins_count", 0) + 1;
      d["last_login"] = now;
      d["last_ip"] = ctx.req.remote_addr;
      d["updated_at"] = now;
      tx.update("user", user_id, d, email_key(d));
      return;
    }
    // Auth0: oidc is an enterprise connection, the others social.
    Json d = model::new_user(
        {user_id, connection, strategy, strategy != "oidc", attrs.value("email", ""), now});
    for (auto it = attrs.begin(); it != attrs.end(); ++it) d[it.key()] = *it;
    d["logins_count"] = 1;
    d["last_login"] = now;
    d["last_ip"] = ctx.req.remote_addr;
    tx.insert("user", user_id, d, email_key(d));
  });
  return outcome;
}

// ---- handlers ---------------------------------------------------------------------------------

http::Response callback(Ctx& ctx) {
  const http::Params params = ctx.req.method == "POST" ? ctx.form_body() : ctx.query;
  const std::string state = params.get_or("state", "");
  auto tx = load_login_tx(ctx, state);
  if (!tx || tx->ar.upstream_nonce.empty() || tx->ar.upstream_binding.empty())
    return error_page(ctx, 400, "invalid_request",
                      "This login has expired or is invalid. Go back to the application and try "
                      "again.");
  const std::string binding = request_cookie(ctx, binding_cookie_name(tx->id));
  if (binding.empty() || !crypto::constant_time_equal(token_id(binding), tx->ar.upstream_binding))
    return error_page(ctx, 400, "invalid_request",
                      "This login was started in another browser or has expired. Go back to the "
                      "application and try again.");
  drop_login_tx(ctx, tx->id);  // single use, whatever happens next
  const AuthRequest& ar = tx->ar;
  const Json& client = tx->client;
  const std::string clear = binding_cookie(ctx, tx->id, "", 0);
  auto to_client = [&](http::Response r) {
    r.add_header("set-cookie", clear);
    return r;
  };
  Json log = {{"client_id", ar.client_id},
              {"client_name", client.value("name", "")},
              {"connection", ar.connection}};
  auto deny = [&](const std::string& error, const std::string& description) {
    Json f = log;
    f["description"] = description;
    log_event(ctx, "f", f);
    return to_client(respond_error(ctx, ar, client, error, description));
  };

  if (auto err = params.get("error")) {
    const std::string desc = sanitize(params.get_or("error_description", *err));
    return deny("access_denied", desc.empty() ? "The identity provider denied the login" : desc);
  }
  const std::string code = params.get_or("code", "");
  if (code.empty()) return deny("access_denied", "The identity provider returned no code");
  auto con = connection_named(ctx, ar.connection);
  if (!con || !is_federated_strategy(con->value("strategy", "")) || !enabled_for(*con, client))
    return deny("access_denied", "The connection is not available for this application");
  log["strategy"] = con->value("strategy", "");

  Json claims;
  try {
    const Upstream u = resolve(ctx, *con);
    const Json tokens =
        exchange_code(ctx, u, code, connection_secret(ctx, *con), ar.upstream_verifier);
    claims = u.id_token ? validate_id_token(ctx, u, tokens["id_token"].get<std::string>(),
                                            ar.upstream_nonce)
                        : fetch_profile(ctx, u, tokens["access_token"].get<std::string>());
  } catch (const UpstreamError& e) {
    return deny(e.error, e.description);
  } catch (const Json::exception&) {
    return deny("access_denied", "The identity provider returned a malformed response");
  }
  if (!claims.contains("sub") || !claims["sub"].is_string() ||
      claims["sub"].get<std::string>().empty() ||
      claims["sub"].get<std::string>().size() > kMaxSubLength)
    return deny("access_denied", "The identity provider returned no usable user id");

  std::string user_id;
  switch (upsert_user(ctx, *con, claims, user_id)) {
    case UserOutcome::kBlocked:
      log["user_id"] = user_id;
      return deny("access_denied", "user is blocked");
    case UserOutcome::kForeign:
      log["user_id"] = user_id;
      return deny("access_denied", "The user id belongs to another connection");
    case UserOutcome::kOk:
      break;
  }
  Json s = log;
  s["user_id"] = user_id;
  s["user_name"] = first_of({str_opt(claims, "email"), str_opt(claims, "nickname")});
  s["description"] = "Successful login";
  log_event(ctx, "s", s);
  std::string session_id;
  const std::string cookie = start_session(ctx, user_id, session_id);
  return complete_authorization(ctx, ar, client, user_id, ctx.e.clock().now(), session_id,
                                {{"set-cookie", cookie}, {"set-cookie", clear}});
}

// A button of the login page: the transaction continues at the upstream.
http::Response federated_start(Ctx& ctx) {
  auto tx = load_login_tx(ctx, ctx.query.get_or("state", ""));
  if (!tx)
    return error_page(
        ctx, 400, "invalid_request",
        "This login page has expired or is invalid. Go back to the application and try again.");
  const std::string name = ctx.query.get_or("connection", "");
  auto con = connection_named(ctx, name);
  if (!con || !is_federated_strategy(con->value("strategy", "")) || !enabled_for(*con, tx->client))
    return error_page(ctx, 400, "invalid_request",
                      "The connection is not available for this application");
  AuthRequest ar = tx->ar;
  ar.connection = name;
  return federated_redirect(ctx, ar, tx->client, *con);
}

}  // namespace

bool is_federated_strategy(std::string_view s) {
  return s == "oidc" || s == "oauth2" || s == "google-oauth2" || s == "github";
}

http::Response federated_redirect(Ctx& ctx, const AuthRequest& ar, const Json& client,
                                  const Json& connection) {
  const std::string name = connection.value("name", "");
  if (!enabled_for(connection, client))
    return respond_error(ctx, ar, client, "invalid_request",
                         "the connection is not enabled for this application");
  Upstream u;
  try {
    u = resolve(ctx, connection);
  } catch (const UpstreamError& e) {
    log_event(ctx, "f",
              {{"client_id", ar.client_id},
               {"client_name", client.value("name", "")},
               {"connection", name},
               {"description", e.description}});
    return respond_error(ctx, ar, client, e.error, e.description);
  }
  AuthRequest t = ar;
  t.connection = name;
  t.upstream_nonce = ctx.e.rng().token(24);
  t.upstream_verifier = u.pkce ? ctx.e.rng().token(32) : std::string();
  const std::string binding = ctx.e.rng().token(24);
  t.upstream_binding = token_id(binding);
  std::string csrf;
  const std::string state = save_login_tx(ctx, t, csrf);

  http::Params p;
  p.add("response_type", "code");
  p.add("client_id", u.client_id);
  p.add("redirect_uri", ctx.issuer + "login/callback");
  if (!u.scope.empty()) p.add("scope", u.scope);
  p.add("state", state);
  if (u.id_token) p.add("nonce", t.upstream_nonce);
  if (u.pkce) {
    p.add("code_challenge", crypto::base64url_encode(crypto::sha256(t.upstream_verifier)));
    p.add("code_challenge_method", "S256");
  }
  const char sep = u.authorization_endpoint.find('?') == std::string::npos ? '?' : '&';
  auto r = http::Response::redirect(u.authorization_endpoint + sep + p.encode());
  r.add_header("set-cookie", binding_cookie(ctx, state, binding, kLoginTxLifetime));
  r.set_header("cache-control", "no-store");
  return r;
}

std::string federated_buttons_html(Ctx& ctx, const LoginTx& tx) {
  std::vector<Json> cons;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& t) {
    for (auto& c : tenancy::effective_connections(*ctx.state, t))
      if (is_federated_strategy(c.value("strategy", "")) && enabled_for(c, tx.client) &&
          c.value("show_as_button", true) != false)
        cons.push_back(std::move(c));
  });
  if (cons.empty()) return {};
  std::string h = "<div class=\"federated\">";
  for (const auto& c : cons) {
    const std::string name = c.value("name", "");
    std::string label = c.value("display_name", Json(name)).is_string()
                            ? c.value("display_name", Json(name)).get<std::string>()
                            : name;
    if (label.empty()) label = name;
    h += "<p class=\"alt\"><a class=\"button\" href=\"" + html_escape(ctx.issuer) +
         "login/federated?state=" + html_escape(http::url_encode(tx.id)) +
         "&amp;connection=" + html_escape(http::url_encode(name)) + "\">Continue with " +
         html_escape(label) + "</a></p>";
  }
  return h + "</div>";
}

void register_federated_routes(Routes& r) {
  r.add("GET", "/login/callback", callback);
  r.add("POST", "/login/callback", callback);
  r.add("GET", "/login/federated", federated_start);
}

}  // namespace ks::oidc
