// Hosted email flows: /u/reset-password (ask for a link), /u/reset-password/confirm (choose a
// new password with the link's ticket), /u/email-verification (the link of "Verify your email"),
// and the tickets and messages behind them. See email_flows.h for the log event types.
#include "core/oidc/email_flows.h"

#include "core/crypto/crypto.h"
#include "core/email/delivery.h"
#include "core/http/form.h"
#include "core/model/user.h"
#include "core/oidc/authorize.h"
#include "core/oidc/flow.h"
#include "core/oidc/oidc.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {
namespace {

constexpr size_t kMaxTokenLength = 128;

// ---- helpers ------------------------------------------------------------------------------------

std::string tenant_name(Ctx& ctx) { return ctx.state->friendly_name(); }

// The host of the issuer URL, without port: "no-reply@<host>" is the last-resort sender.
std::string issuer_host(const std::string& issuer) {
  auto scheme = issuer.find("://");
  size_t b = scheme == std::string::npos ? 0 : scheme + 3;
  size_t e;
  if (b < issuer.size() && issuer[b] == '[') {
    e = issuer.find(']', b);
    e = e == std::string::npos ? issuer.size() : e + 1;
  } else {
    e = issuer.find_first_of(":/", b);
    if (e == std::string::npos) e = issuer.size();
  }
  return issuer.substr(b, e - b);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool plausible_email(const std::string& email) {
  auto at = email.find('@');
  return at != std::string::npos && at > 0 && at + 1 < email.size() && email.size() <= 320 &&
         email.find_first_of(" \t\r\n<>\"") == std::string::npos &&
         email.find('@', at + 1) == std::string::npos;
}

std::string connection_of(const Json& user) {
  const Json ids = user.value("identities", Json::array());
  if (ids.is_array() && !ids.empty() && ids[0].is_object())
    return ids[0].value("connection", std::string(kDatabaseConnection));
  return std::string(kDatabaseConnection);
}

std::string user_key(const Json& user) {
  return model::user_key(connection_of(user), user.value("email", ""));
}

std::string lifetime_text(int64_t s) {
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  if (s >= 86400 && s % 86400 == 0) return plural(s / 86400, "day");
  if (s >= 3600 && s % 3600 == 0) return plural(s / 3600, "hour");
  return plural(std::max<int64_t>(1, s / 60), "minute");
}

// Pages carrying a ticket in their URL must not leak it through Referer.
http::Response no_referrer(http::Response r) {
  r.set_header("referrer-policy", "no-referrer");
  return r;
}

// ---- messages
// -------------------------------------------------------------------------------------

std::string html_mail(std::string_view heading, std::string_view intro_html, const std::string& url,
                      std::string_view button, std::string_view outro) {
  return "<!doctype html><html><head><meta charset=\"utf-8\"></head>"
         "<body style=\"font-family:system-ui,sans-serif;color:#222;max-width:520px;margin:auto\">"
         "<h1 style=\"font-size:20px\">" +
         html_escape(heading) + "</h1><p>" + std::string(intro_html) + "</p><p><a href=\"" +
         html_escape(url) +
         "\" style=\"display:inline-block;padding:10px 18px;background:#0059d6;color:#fff;"
         "text-decoration:none;border-radius:4px\">" +
         html_escape(button) + "</a></p><p style=\"font-size:13px;color:#555\">" +
         html_escape(outro) +
         "</p><p style=\"font-size:12px;color:#777\">If the button does not work, open this "
         "link: " +
         html_escape(url) + "</p></body></html>";
}

void queue_email(Ctx& ctx, const std::string& to, std::string subject, std::string text,
                 std::string html, std::string_view success_type, Json log_fields) {
  email::Delivery d;
  d.tenant = ctx.tenant;
  d.message.to = to;
  d.message.subject = std::move(subject);
  d.message.text = std::move(text);
  d.message.html = std::move(html);
  d.fallback_from = "no-reply@" + issuer_host(ctx.issuer);
  d.success_type = std::string(success_type);
  log_fields["user_name"] = to;
  log_fields["ip"] = ctx.req.remote_addr;
  log_fields["user_agent"] = std::string(ctx.req.header("user-agent"));
  log_fields["hostname"] = std::string(ctx.req.header("host"));
  d.log_fields = std::move(log_fields);
  ctx.e.mail_queue().enqueue(std::move(d));
}

void queue_reset_email(Ctx& ctx, const std::string& to, const std::string& url, Json log_fields) {
  const std::string name = tenant_name(ctx);
  const std::string expires = lifetime_text(kResetLinkLifetime);
  const std::string outro = "The link works once and expires in " + expires +
                            ". If you did not ask for it, ignore this email: your password "
                            "stays unchanged.";
  std::string text = "Hello,\n\nSomeone asked to reset the password of your " + name +
                     " account (" + to + "). To choose a new password, open this link:\n\n" + url +
                     "\n\n" + outro + "\n";
  std::string html = html_mail("Reset your password",
                               "Someone asked to reset the password of your " + html_escape(name) +
                                   " account (" + html_escape(to) + ").",
                               url, "Choose a new password", outro);
  queue_email(ctx, to, "Reset your password", std::move(text), std::move(html), "scpr",
              std::move(log_fields));
}

// ---- tickets
// --------------------------------------------------------------------------------------

struct TicketCheck {
  bool ok = false;
  std::string id;
  std::string reason;  // when !ok: why, for the user
  Json data;           // the ticket, when one was found
  Json user;
};

TicketCheck check_ticket(store::Tx& tx, std::string_view token, std::string_view type,
                         int64_t now) {
  TicketCheck c;
  c.reason = "This link is invalid. Ask for a new one.";
  if (token.empty() || token.size() > kMaxTokenLength) return c;
  c.id = token_id(token);
  auto r = tx.get(kTicketKind, c.id);
  if (!r || r->data.value("type", "") != type) return c;
  c.data = r->data;
  if (c.data.value("used", false)) {
    c.reason = "This link was already used. Ask for a new one.";
    return c;
  }
  if (c.data.value("expires_at", int64_t{0}) <= now) {
    c.reason = "This link has expired. Ask for a new one.";
    return c;
  }
  auto u = tx.get("user", c.data.value("user_id", ""));
  if (!u) {
    c.reason = "The account of this link no longer exists.";
    return c;
  }
  if (u->data.value("email", "") != c.data.value("email", "")) {
    c.reason = "The email address of the account changed since this link was sent.";
    return c;
  }
  c.user = std::move(u->data);
  c.ok = true;
  return c;
}

TicketCheck read_ticket(Ctx& ctx, std::string_view token, std::string_view type) {
  TicketCheck c;
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { c = check_ticket(tx, token, type, now); });
  return c;
}

// After success: the ticket's result_url (with success=true&message=…), else a hosted page.
http::Response ticket_done(Ctx& ctx, const Json& ticket, const Json& user, std::string_view title,
                           std::string_view message) {
  std::string url = ticket.value("result_url", "");
  if (url.empty())
    return no_referrer(page(
        ctx, 200, title, "<h1>" + html_escape(title) + "</h1><p>" + html_escape(message) + "</p>"));
  std::string fragment;
  if (auto h = url.find('#'); h != std::string::npos) {
    fragment = url.substr(h);
    url.resize(h);
  }
  url += url.find('?') == std::string::npos ? "?" : "&";
  url += "success=true&message=" + http::url_encode(message);
  if (ticket.value("include_email_in_redirect", false))
    url += "&email=" + http::url_encode(user.value("email", ""));
  return no_referrer(http::Response::redirect(url + fragment));
}

// ---- /u/reset-password
// ----------------------------------------------------------------------------

std::optional<LoginTx> page_tx(Ctx& ctx, const http::Params& p, http::Response* err) {
  auto tx = load_login_tx(ctx, p.get_or("state", ""));
  if (!tx)
    *err = error_page(
        ctx, 400, "invalid_request",
        "This login page has expired or is invalid. Go back to the application and try again.");
  return tx;
}

std::string back_to_login(Ctx& ctx, const LoginTx& tx) {
  return "<p class=\"alt\"><a href=\"" + html_escape(ctx.issuer) +
         "u/login?state=" + html_escape(http::url_encode(tx.id)) + "\">Back to log in</a></p>";
}

http::Response render_forgot(Ctx& ctx, const LoginTx& tx, int status, std::string_view error,
                             std::string_view email) {
  std::string h =
      "<h1>Forgot your password?</h1><p>Enter your email address and we will send you a link "
      "to reset your password.</p>";
  if (!error.empty()) h += "<p class=\"error\" role=\"alert\">" + html_escape(error) + "</p>";
  h += "<form method=\"post\" action=\"" + html_escape(ctx.issuer) +
       "u/reset-password\"><input type=\"hidden\" name=\"state\" value=\"" + html_escape(tx.id) +
       "\"><input type=\"hidden\" name=\"_csrf\" value=\"" + html_escape(tx.csrf) +
       "\"><label for=\"email\">Email address</label><input id=\"email\" name=\"email\" "
       "type=\"email\" autocomplete=\"username\" required value=\"" +
       html_escape(email) + "\"><button type=\"submit\">Continue</button></form>";
  h += back_to_login(ctx, tx);
  return page(ctx, status, "Reset your password", h);
}

// The database connection the transaction's client may use for passwords.
std::optional<Json> database_connection(Ctx& ctx, const Json& client) {
  std::optional<Json> con;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    con = tenancy::effective_connection(*ctx.state, tx, kDatabaseConnection);
  });
  if (!con) return std::nullopt;
  const Json enabled = con->value("enabled_clients", Json::array());
  if (enabled.is_array() && !enabled.empty()) {
    bool ok = false;
    for (const auto& c : enabled) ok = ok || c == client.value("client_id", "");
    if (!ok) return std::nullopt;
  }
  return con;
}

http::Response forgot_get(Ctx& ctx) {
  http::Response err;
  auto tx = page_tx(ctx, ctx.query, &err);
  if (!tx) return err;
  return render_forgot(ctx, *tx, 200, {}, tx->ar.login_hint);
}

http::Response forgot_post(Ctx& ctx) {
  const http::Params form = ctx.form_body();
  http::Response err;
  auto tx = page_tx(ctx, form, &err);
  if (!tx) return err;
  if (tx->csrf.empty() || !crypto::constant_time_equal(form.get_or("_csrf", ""), tx->csrf))
    return error_page(ctx, 403, "invalid_request", "Invalid CSRF token");
  const std::string email = lower(form.get_or("email", form.get_or("username", "")));
  if (!plausible_email(email))
    return render_forgot(ctx, *tx, 400, "Enter a valid email address.", email);

  Json log_base = {{"client_id", tx->ar.client_id},
                   {"client_name", tx->client.value("name", "")},
                   {"connection", std::string(kDatabaseConnection)},
                   {"user_name", email}};
  std::string refused;
  std::optional<store::Record> user;
  if (!database_connection(ctx, tx->client)) {
    refused = "This application cannot use password logins.";
  } else {
    ctx.e.store().read(ctx.tenant,
                       [&](store::Tx& t) { user = find_db_user(t, kDatabaseConnection, email); });
    if (!user)
      refused = "The user does not exist.";
    else if (user->data.value("blocked", false))
      refused = "user is blocked";
  }
  if (refused.empty()) {
    TicketSpec spec;
    spec.type = std::string(kTicketPasswordChange);
    spec.user_id = user->id;
    spec.ttl = kResetLinkLifetime;
    spec.client_id = tx->ar.client_id;
    const std::string url = create_ticket(ctx, spec);
    Json f = log_base;
    f["user_id"] = user->id;
    queue_reset_email(ctx, user->data.value("email", email), url, std::move(f));
  } else {
    // The page says the same either way: no account enumeration.
    Json f = log_base;
    if (user) f["user_id"] = user->id;
    f["description"] = refused;
    log_event(ctx, "fcpr", std::move(f));
  }
  return page(ctx, 200, "Check your email",
              "<h1>Check your email</h1><p>If an account exists for <strong>" + html_escape(email) +
                  "</strong>, we sent an email with a link to reset your password. The link "
                  "expires in " +
                  lifetime_text(kResetLinkLifetime) + ".</p>" + back_to_login(ctx, *tx));
}

// ---- /u/reset-password/confirm ------------------------------------------------------------------

http::Response render_new_password(Ctx& ctx, const std::string& token, const TicketCheck& t,
                                   int status, std::string_view error) {
  std::string h = "<h1>Choose a new password</h1><p>For <strong>" +
                  html_escape(t.user.value("email", "")) + "</strong></p>";
  if (!error.empty()) h += "<p class=\"error\" role=\"alert\">" + html_escape(error) + "</p>";
  h += "<form method=\"post\" action=\"" + html_escape(ctx.issuer) +
       "u/reset-password/confirm\"><input type=\"hidden\" name=\"ticket\" value=\"" +
       html_escape(token) + "\"><input type=\"hidden\" name=\"_csrf\" value=\"" +
       html_escape(t.data.value("csrf", "")) +
       "\"><label for=\"password\">New password</label><input id=\"password\" "
       "name=\"password\" type=\"password\" autocomplete=\"new-password\" required>"
       "<label for=\"password_confirm\">Confirm the new password</label><input "
       "id=\"password_confirm\" name=\"password_confirm\" type=\"password\" "
       "autocomplete=\"new-password\" required><button type=\"submit\">Reset password</button>"
       "</form>";
  return no_referrer(page(ctx, status, "Choose a new password", h));
}

http::Response bad_link(Ctx& ctx, const TicketCheck& t, std::string_view log_type) {
  if (!t.data.is_null()) {
    Json f = {{"user_id", t.data.value("user_id", "")},
              {"user_name", t.data.value("email", "")},
              {"description", t.reason}};
    if (!t.data.value("client_id", "").empty()) f["client_id"] = t.data.value("client_id", "");
    log_event(ctx, log_type, std::move(f));
  }
  return no_referrer(error_page(ctx, 400, "invalid_request", t.reason));
}

http::Response confirm_get(Ctx& ctx) {
  const std::string token = ctx.query.get_or("ticket", "");
  auto t = read_ticket(ctx, token, kTicketPasswordChange);
  if (!t.ok) return no_referrer(error_page(ctx, 400, "invalid_request", t.reason));
  return render_new_password(ctx, token, t, 200, {});
}

http::Response confirm_post(Ctx& ctx) {
  const http::Params form = ctx.form_body();
  const std::string token = form.get_or("ticket", "");
  auto t = read_ticket(ctx, token, kTicketPasswordChange);
  if (!t.ok) return bad_link(ctx, t, "fcp");
  const std::string csrf = t.data.value("csrf", "");
  if (csrf.empty() || !crypto::constant_time_equal(form.get_or("_csrf", ""), csrf))
    return no_referrer(error_page(ctx, 403, "invalid_request", "Invalid CSRF token"));
  const std::string password = form.get_or("password", "");
  if (form.has("password_confirm") && form.get_or("password_confirm", "") != password)
    return render_new_password(ctx, token, t, 400, "The passwords do not match.");
  Json connection = Json::object();
  const std::string con_name = connection_of(t.user);
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto c = tenancy::effective_connection(*ctx.state, tx, con_name))
      connection = std::move(*c);
  });
  if (auto problem = password_policy_error(connection, ctx.state->settings, password))
    return render_new_password(ctx, token, t, 400, *problem);

  const std::string hash = crypto::password_hash(password, ctx.e.rng());
  const int64_t now = ctx.e.clock().now();
  const std::string user_id = t.data.value("user_id", "");
  TicketCheck again;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    // Checked again inside the write: two concurrent posts cannot both use the ticket.
    again = check_ticket(tx, token, kTicketPasswordChange, now);
    if (!again.ok) return;
    Json ticket = again.data;
    ticket["used"] = true;
    ticket["used_at"] = now;
    tx.update(kTicketKind, again.id, ticket);
    Json user = again.user;
    user["_password"] = hash;
    if (ticket.value("mark_email_as_verified", false)) user["email_verified"] = true;
    user["last_password_reset"] = iso8601(ctx.e.clock().now_ms());
    user["updated_at"] = user["last_password_reset"];
    tx.update("user", user_id, user, user_key(user));
    // Every session and refresh token of the user ends; brute-force blocks are lifted.
    store::ListQuery q;
    q.field = "user_id";
    q.value = user_id;
    q.limit = 100000;
    for (const char* kind : {"session", "refresh_token", "login_failures"})
      for (const auto& r : tx.list(kind, q)) tx.remove(kind, r.id);
  });
  if (!again.ok) return bad_link(ctx, again, "fcp");
  Json f = {{"user_id", user_id},
            {"user_name", t.user.value("email", "")},
            {"connection", con_name},
            {"description", "Password changed with a password-change link"}};
  if (!t.data.value("client_id", "").empty()) f["client_id"] = t.data.value("client_id", "");
  log_event(ctx, "scp", std::move(f));
  return ticket_done(ctx, again.data, again.user, "Password changed",
                     "Your password has been changed. You can now log in with the new password.");
}

// ---- /u/email-verification --------------------------------------------------------------------

http::Response verify_get(Ctx& ctx) {
  const std::string token = ctx.query.get_or("ticket", "");
  // Link checkers probe with HEAD: that must not use the ticket.
  if (ctx.req.method == "HEAD") return no_referrer(page(ctx, 200, "Verify your email", ""));
  const int64_t now = ctx.e.clock().now();
  TicketCheck t;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    t = check_ticket(tx, token, kTicketEmailVerification, now);
    if (!t.ok) return;
    Json ticket = t.data;
    ticket["used"] = true;
    ticket["used_at"] = now;
    tx.update(kTicketKind, t.id, ticket);
    Json user = t.user;
    user["email_verified"] = true;
    user["updated_at"] = iso8601(ctx.e.clock().now_ms());
    tx.update("user", ticket.value("user_id", ""), user, user_key(user));
  });
  if (!t.ok) return bad_link(ctx, t, "fv");
  Json f = {{"user_id", t.data.value("user_id", "")},
            {"user_name", t.user.value("email", "")},
            {"connection", connection_of(t.user)},
            {"description", "Email verified"}};
  if (!t.data.value("client_id", "").empty()) f["client_id"] = t.data.value("client_id", "");
  log_event(ctx, "sv", std::move(f));
  return ticket_done(ctx, t.data, t.user, "Email verified",
                     "Your email was verified. You can continue using the application.");
}

}  // namespace

std::string create_ticket(Ctx& ctx, const TicketSpec& spec) {
  const std::string token = ctx.e.rng().token(32);
  const std::string csrf = ctx.e.rng().token(24);
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto u = tx.get("user", spec.user_id);
    if (!u) throw http::HttpError{404, "The user does not exist.", "inexistent_user"};
    // Used and expired tickets of the user go now: tickets do not pile up.
    store::ListQuery q;
    q.field = "user_id";
    q.value = spec.user_id;
    q.limit = 10000;
    for (const auto& r : tx.list(kTicketKind, q))
      if (r.data.value("used", false) || r.data.value("expires_at", int64_t{0}) <= now)
        tx.remove(kTicketKind, r.id);
    tx.insert(kTicketKind, token_id(token),
              {{"type", spec.type},
               {"user_id", spec.user_id},
               {"email", u->data.value("email", "")},
               {"created_at", now},
               {"expires_at", now + spec.ttl},
               {"used", false},
               {"result_url", spec.result_url},
               {"mark_email_as_verified", spec.mark_email_as_verified},
               {"include_email_in_redirect", spec.include_email_in_redirect},
               {"client_id", spec.client_id},
               {"csrf", csrf}});
  });
  const char* path =
      spec.type == kTicketPasswordChange ? "u/reset-password/confirm" : "u/email-verification";
  return ctx.issuer + path + "?ticket=" + http::url_encode(token);
}

void queue_verification_email(Ctx& ctx, std::string_view user_id, std::string_view client_id) {
  std::optional<Json> user;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto u = tx.get("user", user_id)) user = std::move(u->data);
  });
  if (!user || user->value("email", "").empty() || user->value("email_verified", false)) return;
  const std::string to = user->value("email", "");
  TicketSpec spec;
  spec.type = std::string(kTicketEmailVerification);
  spec.user_id = std::string(user_id);
  spec.client_id = std::string(client_id);
  const std::string url = create_ticket(ctx, spec);
  const std::string name = tenant_name(ctx);
  const std::string outro = "The link expires in " + lifetime_text(spec.ttl) +
                            ". If you did not create this account, ignore this email.";
  std::string text = "Welcome to " + name + "!\n\nPlease confirm that " + to +
                     " is your email address by opening this link:\n\n" + url + "\n\n" + outro +
                     "\n";
  std::string html = html_mail("Verify your email",
                               "Welcome to " + html_escape(name) + "! Please confirm that " +
                                   html_escape(to) + " is your email address.",
                               url, "Verify my email", outro);
  Json f = {{"user_id", std::string(user_id)}, {"connection", connection_of(*user)}};
  if (!client_id.empty()) f["client_id"] = std::string(client_id);
  queue_email(ctx, to, "Verify your email", std::move(text), std::move(html), "svr", std::move(f));
}

void register_email_flow_routes(Routes& r) {
  r.add("GET", "/u/reset-password", forgot_get);
  r.add("POST", "/u/reset-password", forgot_post);
  r.add("GET", "/u/reset-password/confirm", confirm_get);
  r.add("POST", "/u/reset-password/confirm", confirm_post);
  r.add("GET", "/u/email-verification", verify_get);
}

}  // namespace ks::oidc
