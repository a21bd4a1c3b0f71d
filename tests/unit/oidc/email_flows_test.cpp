// Email flows end to end through Engine::handle with a recording Mailer: forgot password,
// password-change links (single use, expiring), verification on signup, the email provider API
// (write-only secrets, control-plane fallback) and the tickets API.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <regex>
#include <stdexcept>

#include "core/email/delivery.h"
#include "core/email/mailer.h"
#include "core/engine_impl.h"
#include "tests/unit/support/engine_fixture.h"

using ks::Json;
using ks::http::Request;
using ks::http::Response;
using ks::test::EngineTest;

using ks::test::header;
using ks::test::input_value;
using ks::test::query_of;
using ks::test::query_param;

namespace {

constexpr const char* kOldPassword = "correct horse battery";
constexpr const char* kNewPassword = "a brand new passphrase";

class RecordingMailer final : public ks::email::Mailer {
 public:
  struct Sent {
    Json config;
    ks::email::EmailMessage message;
  };

  void send(const Json& config, const ks::email::EmailMessage& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail) throw std::runtime_error("550 5.1.1 mailbox unavailable");
    sent_.push_back({config, m});
  }
  std::vector<Sent> sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    sent_.clear();
  }
  std::atomic<bool> fail{false};

 private:
  std::mutex mu_;
  std::vector<Sent> sent_;
};

// The first link of a message body that carries a ticket.
std::string ticket_link(const std::string& text) {
  std::regex re(R"(https?://\S+\?ticket=[A-Za-z0-9_%-]+)");
  std::smatch m;
  return std::regex_search(text, m, re) ? std::string(m[0]) : std::string();
}

std::string local(const std::string& url) {
  const std::string base = "http://id.test";
  return url.starts_with(base) ? url.substr(base.size()) : url;
}

class EmailFlows : public EngineTest {
 public:
  void SetUp() override {
    EngineTest::SetUp();
    reopen("dev");
  }

  // A fresh engine (new in-memory store) with the recording mailer.
  void reopen(const std::string& mode) {
    open_engine([&](ks::Config& cfg, ks::Engine::Deps& deps) {
      cfg.mode = mode;
      deps.mailer = mailer_;
    });
    admin_ = admin();
    client_id_ = make_client("");
    user_id_ = make_user("", "alice@example.com");
  }

  std::string make_client(const std::string& prefix) {
    auto c = call("POST", prefix + "/api/v2/clients",
                  {{"name", "SPA"},
                   {"app_type", "spa"},
                   {"callbacks", {"https://app.test/cb"}},
                   {"grant_types", {"authorization_code", "refresh_token"}}},
                  admin_);
    EXPECT_EQ(c.status, 201) << c.body;
    return Json::parse(c.body).value("client_id", "");
  }

  std::string make_user(const std::string& prefix, const std::string& email) {
    auto u = call("POST", prefix + "/api/v2/users",
                  {{"email", email},
                   {"password", kOldPassword},
                   {"connection", "Username-Password-Authentication"}},
                  admin_);
    EXPECT_EQ(u.status, 201) << u.body;
    return Json::parse(u.body).value("user_id", "");
  }

  static std::string verifier() { return std::string(43, 'v'); }

  std::string authorize_url(const std::string& prefix, const std::string& client_id,
                            const std::string& extra = "") {
    return prefix + "/authorize?response_type=code&client_id=" + client_id +
           "&redirect_uri=" + ks::http::url_encode("https://app.test/cb") +
           "&scope=openid%20email%20offline_access&state=st4te&code_challenge=" +
           ks::crypto::base64url_encode(ks::crypto::sha256(verifier())) +
           "&code_challenge_method=S256" + extra;
  }

  // /authorize with prompt=login: the login page of a fresh transaction.
  Response login_page(const std::string& prefix = "", std::string client_id = "") {
    if (client_id.empty()) client_id = client_id_;
    auto a = send("GET", authorize_url(prefix, client_id, "&prompt=login"));
    EXPECT_EQ(a.status, 302) << a.body;
    auto page = send("GET", local(header(a, "location")));
    EXPECT_EQ(page.status, 200) << page.body;
    return page;
  }

  // The hosted login; returns the callback URL or "status:N".
  std::string login(const std::string& email, const std::string& password) {
    auto page = login_page();
    auto post = send("POST", "/u/login",
                     "state=" + ks::http::url_encode(input_value(page.body, "state")) +
                         "&_csrf=" + ks::http::url_encode(input_value(page.body, "_csrf")) +
                         "&username=" + ks::http::url_encode(email) +
                         "&password=" + ks::http::url_encode(password));
    if (post.status != 302) return "status:" + std::to_string(post.status);
    return header(post, "location");
  }

  // From the login page's "Forgot password?" link to the "Check your email" answer.
  Response request_reset(const std::string& email, const std::string& prefix = "",
                         const std::string& client_id = "") {
    auto login = login_page(prefix, client_id);
    std::regex re("href=\"http://id.test(" + prefix + "/u/reset-password\\?state=[^\"]+)\"");
    std::smatch m;
    EXPECT_TRUE(std::regex_search(login.body, m, re)) << login.body;
    auto form = send("GET", m[1]);
    EXPECT_EQ(form.status, 200) << form.body;
    return send("POST", prefix + "/u/reset-password",
                "state=" + ks::http::url_encode(input_value(form.body, "state")) +
                    "&_csrf=" + ks::http::url_encode(input_value(form.body, "_csrf")) +
                    "&email=" + ks::http::url_encode(email));
  }

  std::vector<RecordingMailer::Sent> delivered() {
    engine_->impl().mail_queue().drain();
    return mailer_->sent();
  }

  Response set_password(const std::string& link, const std::string& password,
                        const std::string& confirm = "") {
    auto form = send("GET", local(link));
    if (form.status != 200) return form;
    return send("POST", local(link).substr(0, local(link).find('?')),
                "ticket=" + ks::http::url_encode(input_value(form.body, "ticket")) +
                    "&_csrf=" + ks::http::url_encode(input_value(form.body, "_csrf")) +
                    "&password=" + ks::http::url_encode(password) + "&password_confirm=" +
                    ks::http::url_encode(confirm.empty() ? password : confirm));
  }

  std::vector<std::string> log_types(const std::string& prefix = "") {
    auto r = call("GET", prefix + "/api/v2/logs?per_page=100", nullptr, admin_);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    for (const auto& l : Json::parse(r.body)) out.push_back(l.value("type", ""));
    return out;
  }

  Json find_log(const std::string& type, const std::string& prefix = "") {
    auto r = call("GET", prefix + "/api/v2/logs?per_page=100", nullptr, admin_);
    for (const auto& l : Json::parse(r.body))
      if (l.value("type", "") == type) return l;
    return nullptr;
  }

  Json get_user(const std::string& id, const std::string& prefix = "") {
    return Json::parse(
        call("GET", prefix + "/api/v2/users/" + ks::http::url_encode(id), nullptr, admin_).body);
  }

  std::shared_ptr<RecordingMailer> mailer_ = std::make_shared<RecordingMailer>();
  std::string admin_;
  std::string client_id_;
  std::string user_id_;
};

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

const Json kSmtp = {{"name", "smtp"},
                    {"default_from_address", "accounts@mail.example.com"},
                    {"credentials",
                     {{"smtp_host", "smtp.example.com"},
                      {"smtp_port", 587},
                      {"smtp_user", "mailer"},
                      {"smtp_pass", "s3cret-password-123"}}},
                    {"settings", {{"tls", "starttls"}}}};

}  // namespace

TEST_F(EmailFlows, ForgotPasswordResetsThePasswordOnce) {
  // A session and a refresh token from before the reset.
  auto cb = login("alice@example.com", kOldPassword);
  ASSERT_TRUE(cb.starts_with("https://app.test/cb?code=")) << cb;
  auto tokens = send("POST", "/oauth/token",
                     "grant_type=authorization_code&client_id=" + client_id_ +
                         "&code=" + query_param(cb, "code") +
                         "&redirect_uri=" + ks::http::url_encode("https://app.test/cb") +
                         "&code_verifier=" + verifier());
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  const std::string rt = Json::parse(tokens.body).value("refresh_token", "");
  ASSERT_FALSE(rt.empty());

  auto answer = request_reset("Alice@Example.com");
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_NE(answer.body.find("If an account exists"), std::string::npos);

  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  const auto& m = sent[0].message;
  EXPECT_EQ(m.to, "alice@example.com");
  EXPECT_EQ(m.subject, "Reset your password");
  EXPECT_EQ(m.from, "no-reply@id.test");  // no provider anywhere: dev outbox, tenant host
  EXPECT_EQ(sent[0].config["name"], "dev");
  const std::string link = ticket_link(m.text);
  ASSERT_TRUE(link.starts_with("http://id.test/u/reset-password/confirm?ticket=")) << m.text;
  EXPECT_NE(m.html.find(link), std::string::npos);

  auto form = send("GET", local(link));
  ASSERT_EQ(form.status, 200) << form.body;
  EXPECT_EQ(header(form, "referrer-policy"), "no-referrer");
  EXPECT_NE(form.body.find("alice@example.com"), std::string::npos);

  EXPECT_EQ(set_password(link, kNewPassword, "something else entirely").status, 400);
  auto weak = set_password(link, "short");
  EXPECT_EQ(weak.status, 400);
  EXPECT_NE(weak.body.find("Password is too weak"), std::string::npos);
  auto forged = send("POST", "/u/reset-password/confirm",
                     "ticket=" + query_param(link, "ticket") +
                         "&_csrf=forged&password=" + ks::http::url_encode(kNewPassword));
  EXPECT_EQ(forged.status, 403);

  auto done = set_password(link, kNewPassword);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_NE(done.body.find("Your password has been changed"), std::string::npos);

  // Sessions and refresh tokens of the user ended.
  auto refreshed = send("POST", "/oauth/token",
                        "grant_type=refresh_token&client_id=" + client_id_ +
                            "&refresh_token=" + ks::http::url_encode(rt));
  EXPECT_EQ(refreshed.status, 400) << refreshed.body;
  auto silent = send("GET", authorize_url("", client_id_, "&prompt=none"));
  EXPECT_EQ(query_param(header(silent, "location"), "error"), "login_required");

  EXPECT_EQ(login("alice@example.com", kOldPassword), "status:401");
  EXPECT_TRUE(login("alice@example.com", kNewPassword).starts_with("https://app.test/cb?code="));

  // Single use.
  EXPECT_EQ(send("GET", local(link)).status, 400);
  EXPECT_EQ(set_password(link, "yet another passphrase").status, 400);
  EXPECT_TRUE(login("alice@example.com", kNewPassword).starts_with("https://app.test/cb?code="));

  auto types = log_types();
  EXPECT_TRUE(contains(types, "scpr"));
  EXPECT_TRUE(contains(types, "scp"));
  EXPECT_FALSE(get_user(user_id_).contains("_password"));
}

TEST_F(EmailFlows, UnknownEmailGetsTheSameAnswerAndNoMail) {
  auto known = request_reset("alice@example.com");
  auto unknown = request_reset("nobody@example.com");
  ASSERT_EQ(unknown.status, 200);
  EXPECT_NE(unknown.body.find("If an account exists"), std::string::npos);
  EXPECT_EQ(known.status, unknown.status);
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].message.to, "alice@example.com");
  auto fcpr = find_log("fcpr");
  ASSERT_TRUE(fcpr.is_object());
  EXPECT_EQ(fcpr["user_name"], "nobody@example.com");
  // A bad email or a forged CSRF token does not send anything either.
  auto page = login_page();
  EXPECT_EQ(send("POST", "/u/reset-password",
                 "state=" + ks::http::url_encode(input_value(page.body, "state")) +
                     "&_csrf=forged&email=alice%40example.com")
                .status,
            403);
  EXPECT_EQ(delivered().size(), 1u);
}

TEST_F(EmailFlows, ExpiredResetLinkFails) {
  request_reset("alice@example.com");
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  const std::string link = ticket_link(sent[0].message.text);
  clock_->advance(24 * 3600 + 1);
  auto r = send("GET", local(link));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("expired"), std::string::npos);
  EXPECT_EQ(send("GET", "/u/reset-password/confirm?ticket=not-a-ticket").status, 400);
  EXPECT_TRUE(login("alice@example.com", kOldPassword).starts_with("https://app.test/cb?code="));
}

TEST_F(EmailFlows, SignupSendsAVerificationEmail) {
  auto a = send("GET", authorize_url("", client_id_, "&screen_hint=signup"));
  auto page = send("GET", local(header(a, "location")));
  ASSERT_EQ(page.status, 200);
  auto ok = send("POST", "/u/signup",
                 "state=" + ks::http::url_encode(input_value(page.body, "state")) +
                     "&_csrf=" + ks::http::url_encode(input_value(page.body, "_csrf")) +
                     "&username=bob%40example.com&password=long+enough+pw");
  ASSERT_EQ(ok.status, 302) << ok.body;
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].message.to, "bob@example.com");
  EXPECT_EQ(sent[0].message.subject, "Verify your email");
  const std::string link = ticket_link(sent[0].message.text);
  ASSERT_TRUE(link.starts_with("http://id.test/u/email-verification?ticket=")) << link;

  auto users = Json::parse(
      call("GET", "/api/v2/users-by-email?email=bob%40example.com", nullptr, admin_).body);
  ASSERT_EQ(users.size(), 1u);
  const std::string bob = users[0]["user_id"];
  EXPECT_EQ(users[0]["email_verified"], false);

  // A HEAD (link checkers) does not use the link.
  EXPECT_EQ(send("HEAD", local(link)).status, 200);
  auto verified = send("GET", local(link));
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_NE(verified.body.find("Your email was verified"), std::string::npos);
  EXPECT_EQ(get_user(bob)["email_verified"], true);
  EXPECT_EQ(send("GET", local(link)).status, 400);

  auto types = log_types();
  EXPECT_TRUE(contains(types, "svr"));
  EXPECT_TRUE(contains(types, "sv"));
  EXPECT_TRUE(contains(types, "fv"));
}

TEST_F(EmailFlows, DeliveryFailureIsLoggedAsFn) {
  mailer_->fail = true;
  request_reset("alice@example.com");
  EXPECT_TRUE(delivered().empty());
  auto fn = find_log("fn");
  ASSERT_TRUE(fn.is_object());
  EXPECT_NE(fn.value("description", "").find("550 5.1.1"), std::string::npos);
  EXPECT_EQ(fn["user_id"], user_id_);
  EXPECT_FALSE(contains(log_types(), "scpr"));
}

TEST_F(EmailFlows, ProdWithoutAnyProviderLogsFn) {
  reopen("prod");
  request_reset("alice@example.com");
  EXPECT_TRUE(delivered().empty());
  auto fn = find_log("fn");
  ASSERT_TRUE(fn.is_object());
  EXPECT_NE(fn.value("description", "").find("no email provider"), std::string::npos);
}

TEST_F(EmailFlows, ProviderSecretsAreWriteOnly) {
  EXPECT_EQ(call("GET", "/api/v2/emails/provider", nullptr, admin_).status, 404);
  EXPECT_EQ(call("PATCH", "/api/v2/emails/provider", {{"enabled", true}}, admin_).status, 404);
  auto created = call("POST", "/api/v2/emails/provider", kSmtp, admin_);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body.find("s3cret"), std::string::npos);
  auto body = Json::parse(created.body);
  EXPECT_EQ(body["name"], "smtp");
  EXPECT_EQ(body["enabled"], true);
  EXPECT_FALSE(body["credentials"].contains("smtp_pass"));
  EXPECT_EQ(body["credentials"]["smtp_pass_hint"], "****-123");
  EXPECT_EQ(body["credentials"]["smtp_host"], "smtp.example.com");
  EXPECT_FALSE(body.contains("_secrets"));
  auto got = call("GET", "/api/v2/emails/provider", nullptr, admin_);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body.find("s3cret"), std::string::npos);
  EXPECT_EQ(Json::parse(got.body), body);
  EXPECT_EQ(call("POST", "/api/v2/emails/provider", kSmtp, admin_).status, 409);

  // PATCH merges credentials; the password is kept and still write-only.
  auto patched = call("PATCH", "/api/v2/emails/provider",
                      {{"credentials", {{"smtp_host", "mail2.example.com"}}}}, admin_);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(Json::parse(patched.body)["credentials"]["smtp_pass_hint"], "****-123");
  EXPECT_EQ(Json::parse(patched.body)["credentials"]["smtp_host"], "mail2.example.com");

  // Sending gets the decrypted secret.
  request_reset("alice@example.com");
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].config["name"], "smtp");
  EXPECT_EQ(sent[0].config["credentials"]["smtp_pass"], "s3cret-password-123");
  EXPECT_EQ(sent[0].config["credentials"]["smtp_host"], "mail2.example.com");
  EXPECT_EQ(sent[0].config["credentials"]["smtp_user"], "mailer");
  EXPECT_EQ(sent[0].config["settings"]["tls"], "starttls");
  EXPECT_EQ(sent[0].message.from, "accounts@mail.example.com");

  // Validation.
  for (const Json& bad :
       {Json{{"name", "sendgrid"}},
        Json{{"name", "smtp"}, {"credentials", {{"smtp_host", "h"}, {"smtp_port", 70000}}}},
        Json{{"name", "dev"}, {"settings", {{"tls", "maybe"}}}},
        Json{{"name", "dev"}, {"default_from_address", "a@b\r\nBcc: x@y"}},
        Json{{"name", "dev"}, {"credentials", {{"api_key", "k"}}}}}) {
    EXPECT_EQ(call("PATCH", "/api/v2/emails/provider", bad, admin_).status, 400) << bad.dump();
  }

  EXPECT_EQ(call("DELETE", "/api/v2/emails/provider", nullptr, admin_).status, 204);
  EXPECT_EQ(call("GET", "/api/v2/emails/provider", nullptr, admin_).status, 404);
  EXPECT_EQ(call("DELETE", "/api/v2/emails/provider", nullptr, admin_).status, 404);
  EXPECT_EQ(call("POST", "/api/v2/emails/provider",
                 {{"name", "smtp"}, {"credentials", {{"smtp_host", "h"}}}}, admin_)
                .status,
            400);
}

TEST_F(EmailFlows, ChildTenantFallsBackToTheControlPlaneProvider) {
  ASSERT_EQ(call("POST", "/api/v2/emails/provider", kSmtp, admin_).status, 201);
  auto t = call("POST", "/api/v2/tenants", {{"id", "acme"}, {"friendly_name", "Acme"}}, admin_);
  ASSERT_EQ(t.status, 201) << t.body;
  // Nothing is copied to the child.
  EXPECT_EQ(call("GET", "/t/acme/api/v2/emails/provider", nullptr, admin_).status, 404);
  const std::string acme_client = make_client("/t/acme");
  make_user("/t/acme", "carol@example.com");

  ASSERT_EQ(request_reset("carol@example.com", "/t/acme", acme_client).status, 200);
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].config["name"], "smtp");
  EXPECT_EQ(sent[0].config["tenant"], "acme");
  EXPECT_EQ(sent[0].config["credentials"]["smtp_pass"], "s3cret-password-123");
  EXPECT_EQ(sent[0].message.to, "carol@example.com");
  const std::string link = ticket_link(sent[0].message.text);
  EXPECT_TRUE(link.starts_with("http://id.test/t/acme/u/reset-password/confirm?ticket=")) << link;
  EXPECT_TRUE(contains(log_types("/t/acme"), "scpr"));

  // The child's own provider wins once it has one.
  auto own = call("POST", "/t/acme/api/v2/emails/provider",
                  {{"name", "dev"}, {"default_from_address", "hello@acme.test"}}, admin_);
  ASSERT_EQ(own.status, 201) << own.body;
  mailer_->clear();
  request_reset("carol@example.com", "/t/acme", acme_client);
  sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].config["name"], "dev");
  EXPECT_EQ(sent[0].message.from, "hello@acme.test");
  EXPECT_FALSE(sent[0].config["credentials"].contains("smtp_pass"));

  // A link of one tenant means nothing on another.
  EXPECT_EQ(send("GET", local(link).substr(std::string("/t/acme").size())).status, 400);
}

TEST_F(EmailFlows, TicketsApi) {
  auto r = call("POST", "/api/v2/tickets/password-change",
                {{"user_id", user_id_},
                 {"result_url", "https://app.test/done"},
                 {"mark_email_as_verified", true}},
                admin_);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string link = Json::parse(r.body)["ticket"];
  EXPECT_TRUE(link.starts_with("http://id.test/u/reset-password/confirm?ticket=")) << link;
  EXPECT_TRUE(delivered().empty());  // the API returns the link; it sends nothing
  auto done = set_password(link, kNewPassword);
  ASSERT_EQ(done.status, 302) << done.body;
  EXPECT_TRUE(header(done, "location").starts_with("https://app.test/done?success=true&message="))
      << header(done, "location");
  EXPECT_EQ(get_user(user_id_)["email_verified"], true);
  EXPECT_TRUE(login("alice@example.com", kNewPassword).starts_with("https://app.test/cb?code="));

  // By email and connection id.
  auto cons = Json::parse(
      call("GET", "/api/v2/connections?name=Username-Password-Authentication", nullptr, admin_)
          .body);
  ASSERT_EQ(cons.size(), 1u);
  auto by_email = call("POST", "/api/v2/tickets/password-change",
                       {{"email", "ALICE@example.com"}, {"connection_id", cons[0]["id"]}}, admin_);
  EXPECT_EQ(by_email.status, 201) << by_email.body;

  EXPECT_EQ(call("POST", "/api/v2/tickets/password-change", Json::object(), admin_).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/tickets/password-change",
                 {{"user_id", user_id_}, {"email", "alice@example.com"}}, admin_)
                .status,
            400);
  EXPECT_EQ(
      call("POST", "/api/v2/tickets/password-change", {{"user_id", "auth0|nobody"}}, admin_).status,
      404);
  EXPECT_EQ(call("POST", "/api/v2/tickets/password-change",
                 {{"user_id", user_id_}, {"result_url", "javascript:alert(1)"}}, admin_)
                .status,
            400);
  EXPECT_EQ(call("POST", "/api/v2/tickets/password-change",
                 {{"user_id", user_id_}, {"ttl_sec", 99999999}}, admin_)
                .status,
            400);

  // Email verification: expiring, then used once with a redirect.
  auto v = call("POST", "/api/v2/tickets/email-verification",
                {{"user_id", make_user("", "dave@example.com")},
                 {"result_url", "https://app.test/verified#x"},
                 {"ttl_sec", 60},
                 {"includeEmailInRedirect", true}},
                admin_);
  ASSERT_EQ(v.status, 201) << v.body;
  clock_->advance(61);
  EXPECT_EQ(send("GET", local(Json::parse(v.body)["ticket"])).status, 400);
  auto users = Json::parse(
      call("GET", "/api/v2/users-by-email?email=dave%40example.com", nullptr, admin_).body);
  const std::string dave = users[0]["user_id"];
  v = call("POST", "/api/v2/tickets/email-verification",
           {{"user_id", dave},
            {"result_url", "https://app.test/verified#x"},
            {"includeEmailInRedirect", true}},
           admin_);
  ASSERT_EQ(v.status, 201);
  auto verified = send("GET", local(Json::parse(v.body)["ticket"]));
  ASSERT_EQ(verified.status, 302) << verified.body;
  const std::string loc = header(verified, "location");
  EXPECT_TRUE(loc.starts_with("https://app.test/verified?success=true&message=")) << loc;
  EXPECT_NE(loc.find("&email=dave%40example.com#x"), std::string::npos) << loc;
  EXPECT_EQ(get_user(dave)["email_verified"], true);

  // Scope create:user_tickets.
  auto c = Json::parse(call("POST", "/api/v2/clients",
                            {{"name", "reader"},
                             {"app_type", "non_interactive"},
                             {"grant_types", {"client_credentials"}}},
                            admin_)
                           .body);
  ASSERT_EQ(call("POST", "/api/v2/client-grants",
                 {{"client_id", c["client_id"]},
                  {"audience", "urn:keystead:management"},
                  {"scope", {"read:users"}}},
                 admin_)
                .status,
            201);
  const std::string reader =
      token("", c["client_id"].get<std::string>(), c["client_secret"].get<std::string>());
  EXPECT_EQ(call("POST", "/api/v2/tickets/email-verification", {{"user_id", dave}}, reader).status,
            403);
  EXPECT_EQ(call("GET", "/api/v2/emails/provider", nullptr, reader).status, 403);
}

TEST(EmailOutbox, DevProviderAppendsJsonLines) {
  char tmpl[] = "/tmp/ks-outbox-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto mailer = ks::email::make_mailer(dir + "/outbox.jsonl");
  mailer->send({{"name", "dev"}, {"tenant", "acme"}},
               {"a@example.com", "b@example.com", "Hi", "text body", "<p>html</p>"});
  mailer->send({{"name", "dev"}}, {"c@example.com", "b@example.com", "Two", "t", ""});
  EXPECT_THROW(mailer->send({{"name", "carrier-pigeon"}}, {}), std::runtime_error);
  FILE* f = std::fopen((dir + "/outbox.jsonl").c_str(), "r");
  ASSERT_NE(f, nullptr);
  char line[4096];
  std::vector<Json> lines;
  while (std::fgets(line, sizeof line, f)) lines.push_back(Json::parse(line));
  std::fclose(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["to"], "a@example.com");
  EXPECT_EQ(lines[0]["tenant"], "acme");
  EXPECT_EQ(lines[0]["subject"], "Hi");
  EXPECT_EQ(lines[0]["html"], "<p>html</p>");
  EXPECT_EQ(lines[1]["to"], "c@example.com");
  std::string cmd = "rm -rf " + dir;
  (void)std::system(cmd.c_str());
}

TEST(EmailSmtp, RefusesHeaderInjectionAndReportsConnectionErrors) {
  auto smtp = ks::email::smtp_mailer();
  const Json cfg = {{"name", "smtp"},
                    {"credentials", {{"smtp_host", "127.0.0.1"}, {"smtp_port", 1}}},
                    {"settings", {{"tls", "none"}}}};
  EXPECT_THROW(smtp->send(cfg, {"a@example.com\r\nBcc: x@y", "b@example.com", "s", "t", ""}),
               std::runtime_error);
  EXPECT_THROW(smtp->send(cfg, {"a@example.com", "b@example.com", "s\r\nBcc: x@y", "t", ""}),
               std::runtime_error);
  try {
    smtp->send(cfg, {"a@example.com", "b@example.com", "s", "t", ""});
    ADD_FAILURE() << "port 1 accepted a message";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("SMTP delivery via smtp://127.0.0.1:1 failed"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(EmailFlows, CreateUserWithVerifyEmailSendsOne) {
  auto quiet = call("POST", "/api/v2/users",
                    {{"email", "quiet@example.com"},
                     {"password", "long enough pw"},
                     {"connection", "Username-Password-Authentication"}},
                    admin_);
  ASSERT_EQ(quiet.status, 201) << quiet.body;
  EXPECT_TRUE(delivered().empty());
  auto loud = call("POST", "/api/v2/users",
                   {{"email", "loud@example.com"},
                    {"password", "long enough pw"},
                    {"connection", "Username-Password-Authentication"},
                    {"verify_email", true}},
                   admin_);
  ASSERT_EQ(loud.status, 201) << loud.body;
  auto sent = delivered();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].message.to, "loud@example.com");
  EXPECT_EQ(sent[0].message.subject, "Verify your email");
}
