// Hosted pages: /u/login and /u/signup. Plain HTML forms that work without JavaScript, bound to
// a login transaction (`state`) and protected by its CSRF token.
#include "core/crypto/crypto.h"
#include "core/http/form.h"
#include "core/model/ids.h"
#include "core/model/user.h"
#include "core/oidc/authorize.h"
#include "core/oidc/email_flows.h"
#include "core/oidc/flow.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {
namespace {

std::string form_html(const LoginTx& tx, std::string_view action, std::string_view title,
                      std::string_view button, std::string_view error, std::string_view email,
                      std::string_view alt_html) {
  std::string h = "<h1>" + html_escape(title) + "</h1>";
  if (!error.empty()) h += "<p class=\"error\" role=\"alert\">" + html_escape(error) + "</p>";
  h += "<form method=\"post\" action=\"" + html_escape(action) +
       "\">"
       "<input type=\"hidden\" name=\"state\" value=\"" +
       html_escape(tx.id) +
       "\">"
       "<input type=\"hidden\" name=\"_csrf\" value=\"" +
       html_escape(tx.csrf) +
       "\">"
       "<label for=\"username\">Email address</label>"
       "<input id=\"username\" name=\"username\" type=\"email\" autocomplete=\"username\" required "
       "value=\"" +
       html_escape(email) +
       "\">"
       "<label for=\"password\">Password</label>"
       "<input id=\"password\" name=\"password\" type=\"password\" "
       "autocomplete=\"current-password\" required>"
       "<button type=\"submit\">" +
       html_escape(button) + "</button></form>";
  h += alt_html;
  return h;
}

// The database connection a login uses: the default one (with the control plane's options of its
// strategy under it), if the client may use it.
std::optional<Json> database_connection(Ctx& ctx, const Json& client) {
  std::optional<Json> con;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    con = tenancy::effective_connection(*ctx.state, tx, kDatabaseConnection);
  });
  if (!con) return std::nullopt;
  const Json& enabled = (*con)["enabled_clients"];
  if (enabled.is_array() && !enabled.empty()) {
    bool ok = false;
    for (const auto& c : enabled) ok = ok || c == client.value("client_id", "");
    if (!ok) return std::nullopt;
  }
  return con;
}

http::Response render_login(Ctx& ctx, const LoginTx& tx, int status, std::string_view error,
                            std::string_view email) {
  std::string alt;
  auto con = database_connection(ctx, tx.client);
  if (con && !(*con)["options"].value("disable_signup", false))
    alt = "<p class=\"alt\">Don't have an account? <a href=\"" + html_escape(ctx.issuer) +
          "u/signup?state=" + html_escape(http::url_encode(tx.id)) + "\">Sign up</a></p>";
  alt += "<p class=\"alt\"><a href=\"" + html_escape(ctx.issuer) +
         "u/reset-password?state=" + html_escape(http::url_encode(tx.id)) +
         "\">Forgot password?</a></p>";
  alt += federated_buttons_html(ctx, tx);
  return page(
      ctx, status, "Log in",
      form_html(tx, ctx.issuer + "u/login",
                "Log in to " + tx.client.value("name", std::string("the application")), "Continue",
                error, email.empty() ? std::string_view(tx.ar.login_hint) : email, alt));
}

http::Response render_signup(Ctx& ctx, const LoginTx& tx, int status, std::string_view error,
                             std::string_view email) {
  std::string alt = "<p class=\"alt\">Already have an account? <a href=\"" +
                    html_escape(ctx.issuer) +
                    "u/login?state=" + html_escape(http::url_encode(tx.id)) + "\">Log in</a></p>";
  return page(
      ctx, status, "Sign up",
      form_html(tx, ctx.issuer + "u/signup", "Create your account", "Sign up", error, email, alt));
}

// Resolves the transaction of a hosted-page request; nullopt with an error page in *err.
std::optional<LoginTx> page_tx(Ctx& ctx, const http::Params& p, http::Response* err) {
  auto tx = load_login_tx(ctx, p.get_or("state", ""));
  if (!tx) {
    *err = error_page(
        ctx, 400, "invalid_request",
        "This login page has expired or is invalid. Go back to the application and try again.");
    return std::nullopt;
  }
  return tx;
}

bool csrf_ok(const LoginTx& tx, const http::Params& form) {
  return crypto::constant_time_equal(form.get_or("_csrf", ""), tx.csrf) && !tx.csrf.empty();
}

std::string block_id(std::string_view user_id, std::string_view ip) {
  return std::string(user_id) + "\n" + std::string(ip);
}

http::Response finish(Ctx& ctx, const LoginTx& tx, const std::string& user_id) {
  std::string session_id;
  const std::string cookie = start_session(ctx, user_id, session_id);
  drop_login_tx(ctx, tx.id);
  return complete_authorization(ctx, tx.ar, tx.client, user_id, ctx.e.clock().now(), session_id,
                                {{"set-cookie", cookie}});
}

http::Response login_get(Ctx& ctx) {
  http::Response err;
  auto tx = page_tx(ctx, ctx.query, &err);
  if (!tx) return err;
  return render_login(ctx, *tx, 200, {}, {});
}

http::Response login_post(Ctx& ctx) {
  const http::Params form = ctx.form_body();
  http::Response err;
  auto tx = page_tx(ctx, form, &err);
  if (!tx) return err;
  if (!csrf_ok(*tx, form)) return error_page(ctx, 403, "invalid_request", "Invalid CSRF token");
  const std::string email = form.get_or("username", "");
  const std::string password = form.get_or("password", "");
  const Json log_base = {{"client_id", tx->ar.client_id},
                         {"client_name", tx->client.value("name", "")},
                         {"connection", std::string(kDatabaseConnection)},
                         {"user_name", email}};
  auto con = database_connection(ctx, tx->client);
  if (!con)
    return render_login(ctx, *tx, 400, "This application cannot use password logins.", email);

  std::optional<store::Record> user;
  std::optional<Json> block;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& t) {
    user = find_db_user(t, kDatabaseConnection, email);
    if (user) {
      if (auto b = t.get("login_failures", block_id(user->id, ctx.req.remote_addr)))
        block = std::move(b->data);
    }
  });
  const Json& settings = ctx.state->settings;
  const int64_t max_attempts = max_login_attempts(settings);
  if (user && block && block->value("count", 0) >= max_attempts) {
    Json f = log_base;
    f["user_id"] = user->id;
    f["description"] = "Account blocked after too many failed logins from this IP";
    log_event(ctx, "limit_wu", f);
    return render_login(ctx, *tx, 429,
                        "Your account has been blocked after multiple consecutive login attempts.",
                        email);
  }
  if (!user_password_matches(user, password)) {
    Json f = log_base;
    if (user) {
      f["user_id"] = user->id;
      f["description"] = "Wrong email or password.";
      const std::string bid = block_id(user->id, ctx.req.remote_addr);
      ctx.e.store().write(ctx.tenant, [&](store::Tx& t) {
        auto b = t.get("login_failures", bid);
        Json d =
            b ? b->data : Json{{"user_id", user->id}, {"ip", ctx.req.remote_addr}, {"count", 0}};
        d["count"] = d.value("count", 0) + 1;
        d["last_at"] = ctx.e.clock().now();
        if (b)
          t.update("login_failures", bid, d);
        else
          t.insert("login_failures", bid, d);
      });
      log_event(ctx, "fp", f);
    } else {
      f["description"] = "Wrong email or password.";
      log_event(ctx, "fu", f);
    }
    return render_login(ctx, *tx, 401, "Wrong email or password.", email);
  }
  if (user->data.value("blocked", false)) {
    Json f = log_base;
    f["user_id"] = user->id;
    f["description"] = "user is blocked";
    log_event(ctx, "f", f);
    return render_login(ctx, *tx, 403, "Your account is blocked. Contact the administrator.",
                        email);
  }
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& t) {
    t.remove("login_failures", block_id(user->id, ctx.req.remote_addr));
    if (auto u = t.get("user", user->id)) {
      Json d = u->data;
      d["logins_count"] = d.value("logins_count", 0) + 1;
      d["last_login"] = iso8601(now * 1000);
      d["last_ip"] = ctx.req.remote_addr;
      t.update("user", u->id, d, std::string(kDatabaseConnection) + "\n" + d.value("email", ""));
    }
  });
  Json f = log_base;
  f["user_id"] = user->id;
  f["description"] = "Successful login";
  log_event(ctx, "s", f);
  return finish(ctx, *tx, user->id);
}

http::Response signup_get(Ctx& ctx) {
  http::Response err;
  auto tx = page_tx(ctx, ctx.query, &err);
  if (!tx) return err;
  auto con = database_connection(ctx, tx->client);
  if (!con || (*con)["options"].value("disable_signup", false))
    return render_login(ctx, *tx, 403, "Sign up is disabled for this application.", {});
  return render_signup(ctx, *tx, 200, {}, tx->ar.login_hint);
}

http::Response signup_post(Ctx& ctx) {
  const http::Params form = ctx.form_body();
  http::Response err;
  auto tx = page_tx(ctx, form, &err);
  if (!tx) return err;
  if (!csrf_ok(*tx, form)) return error_page(ctx, 403, "invalid_request", "Invalid CSRF token");
  auto con = database_connection(ctx, tx->client);
  if (!con || (*con)["options"].value("disable_signup", false))
    return render_login(ctx, *tx, 403, "Sign up is disabled for this application.", {});
  std::string email = form.get_or("username", "");
  for (auto& c : email) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string password = form.get_or("password", "");
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= email.size() || email.size() > 320 ||
      email.find_first_of(" \t\r\n<>") != std::string::npos)
    return render_signup(ctx, *tx, 400, "Enter a valid email address.", email);
  if (auto problem = password_policy_error(*con, ctx.state->settings, password))
    return render_signup(ctx, *tx, 400, *problem, email);
  const Json connection = {{"name", std::string(kDatabaseConnection)}, {"strategy", "auth0"}};
  // Before the (costly) hash: pre-user-registration hooks may refuse the signup or set metadata.
  std::optional<hooks::Outcome> pre;
  if (!ctx.state->hooks_for(hooks::Trigger::kPreUserRegistration).empty()) {
    Json event = {
        {"user",
         {{"email", email}, {"app_metadata", Json::object()}, {"user_metadata", Json::object()}}},
        {"client", hook_client(tx->client)},
        {"connection", connection},
        {"transaction", {{"requested_scopes", split_scope(tx->ar.scope)}}}};
    pre = run_hooks(ctx, hooks::Trigger::kPreUserRegistration, std::move(event), "fs",
                    {{"client_id", tx->ar.client_id}, {"user_name", email}});
    if (pre && !pre->ok()) return render_signup(ctx, *tx, 403, hook_message(*pre), email);
  }
  const std::string hash = crypto::password_hash(password, ctx.e.rng());
  const std::string user_id = model::new_user_id(ctx.e.rng());
  const std::string now = iso8601(ctx.e.clock().now_ms());
  bool exists = false;
  std::optional<Json> created;  // for post-user-registration hooks
  ctx.e.store().write(ctx.tenant, [&](store::Tx& t) {
    if (find_db_user(t, kDatabaseConnection, email)) {
      exists = true;
      return;
    }
    Json user =
        model::new_user({user_id, std::string(kDatabaseConnection), "auth0", false, email, now});
    user["logins_count"] = 1;
    user["last_login"] = now;
    user["_password"] = hash;
    if (pre) apply_hook_metadata(user, *pre);
    t.insert("user", user_id, user, model::user_key(kDatabaseConnection, email));
    if (!ctx.state->hooks_for(hooks::Trigger::kPostUserRegistration).empty()) created = user;
  });
  if (exists) {
    log_event(ctx, "fs",
              {{"client_id", tx->ar.client_id},
               {"user_name", email},
               {"description", "The user already exists."}});
    return render_signup(ctx, *tx, 409, "The user already exists.", email);
  }
  log_event(ctx, "ss",
            {{"client_id", tx->ar.client_id},
             {"user_id", user_id},
             {"user_name", email},
             {"connection", std::string(kDatabaseConnection)},
             {"description", "Successful signup"}});
  if (created) {
    // The user exists whatever these do; a failure is logged as a warning ("w").
    run_hooks(ctx, hooks::Trigger::kPostUserRegistration,
              {{"user", hook_user(*created)},
               {"client", hook_client(tx->client)},
               {"connection", connection}},
              "w", {{"client_id", tx->ar.client_id}, {"user_id", user_id}});
  }
  queue_verification_email(ctx, user_id, tx->ar.client_id);
  return finish(ctx, *tx, user_id);
}

}  // namespace

void register_page_routes(Routes& r) {
  r.add("GET", "/u/login", login_get);
  r.add("POST", "/u/login", login_post);
  r.add("GET", "/u/signup", signup_get);
  r.add("POST", "/u/signup", signup_post);
}

}  // namespace ks::oidc
