#pragma once
// An engine over an in-memory store with a manual clock and a seeded random source, driven
// through Engine::handle exactly as the server drives it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "core/crypto/crypto.h"
#include "core/engine.h"
#include "core/http/form.h"

namespace ks::test {

using http::Request;
using http::Response;

// Reading responses and hosted pages.
inline std::string header(const Response& r, std::string_view name) {
  return std::string(r.header(name));
}
// The query (or fragment) parameters of a URL.
inline http::Params query_of(const std::string& url) {
  auto q = url.find_first_of("?#");
  return q == std::string::npos ? http::Params() : http::Params::parse(url.substr(q + 1));
}
inline std::string query_param(const std::string& url, const std::string& name) {
  return query_of(url).get_or(name, "");
}
// The value of the input `name` of an HTML form.
inline std::string input_value(const std::string& html, const std::string& name) {
  std::regex re("name=\"" + name + "\" value=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(html, m, re) ? std::string(m[1]) : std::string();
}

inline constexpr const char* kBootId = "boot-client";
inline constexpr const char* kBootSecret = "boot-secret-0123456789abcdef";

class EngineTest : public ::testing::Test {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/ks-engine-XXXXXX";
    dir_ = mkdtemp(tmpl);
    clock_ = std::make_shared<ks::ManualClock>(1'800'000'000);
    open_engine();
  }

  // (Re)opens the engine on a fresh in-memory store: the standard test configuration, then
  // `adjust` for what one suite needs on top (a setting, a mailer, an HTTP client).
  void open_engine(const std::function<void(ks::Config&, ks::Engine::Deps&)>& adjust = {}) {
    engine_.reset();
    cookies_.clear();
    ks::Config cfg;
    cfg.data_dir = dir_;
    cfg.public_url = "http://id.test";
    cfg.master_key = std::string(64, 'a');
    cfg.bootstrap_client_id = kBootId;
    cfg.bootstrap_client_secret = kBootSecret;
    ks::Engine::Deps deps;
    deps.store = ks::store::open_sqlite(":memory:");
    deps.clock = clock_;
    deps.random = ks::crypto::seeded_random(42);
    if (adjust) adjust(cfg, deps);
    engine_ = ks::Engine::open(cfg, std::move(deps));
  }
  void TearDown() override {
    engine_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }

  Response call(const std::string& method, const std::string& target, const Json& body = nullptr,
                const std::string& token = "", const std::string& content_type = "") {
    Request r;
    r.method = method;
    r.set_target(target);
    r.add_header("host", "id.test");
    if (!token.empty()) r.add_header("authorization", "Bearer " + token);
    if (!body.is_null()) {
      r.body = body.is_string() ? body.get<std::string>() : body.dump();
      r.add_header("content-type", content_type.empty() ? "application/json" : content_type);
    }
    return engine_->handle(r);
  }

  std::string token(const std::string& prefix, const std::string& id, const std::string& secret,
                    const std::string& audience = "urn:keystead:management") {
    auto r = call("POST", prefix + "/oauth/token",
                  "grant_type=client_credentials&client_id=" + ks::http::url_encode(id) +
                      "&client_secret=" + ks::http::url_encode(secret) +
                      "&audience=" + ks::http::url_encode(audience),
                  "", "application/x-www-form-urlencoded");
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body).value("access_token", "");
  }

  std::string admin() { return token("", kBootId, kBootSecret); }

  static Json body(const Response& r) { return Json::parse(r.body); }

  // A browser-like request: sends and keeps cookies (Set-Cookie with an empty value deletes).
  Response send(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& content_type = "application/x-www-form-urlencoded") {
    Request r;
    r.method = method;
    r.set_target(target);
    r.add_header("host", "id.test");
    r.remote_addr = "10.0.0.1";
    std::string cookie;
    for (const auto& [k, v] : cookies_) cookie += (cookie.empty() ? "" : "; ") + k + "=" + v;
    if (!cookie.empty()) r.add_header("cookie", cookie);
    if (!body.empty()) {
      r.body = body;
      r.add_header("content-type", content_type);
    }
    auto res = engine_->handle(r);
    for (const auto& h : res.headers) {
      if (h.name != "set-cookie") continue;
      auto eq = h.value.find('='), semi = h.value.find(';');
      std::string k = h.value.substr(0, eq), v = h.value.substr(eq + 1, semi - eq - 1);
      if (v.empty())
        cookies_.erase(k);
      else
        cookies_[k] = v;
    }
    return res;
  }

  // The engine's internals (store, services), for tests that look behind the HTTP surface.
  ks::EngineImpl& impl() { return engine_->impl(); }

  std::string dir_;
  std::shared_ptr<ks::ManualClock> clock_;
  std::unique_ptr<ks::Engine> engine_;
  std::map<std::string, std::string> cookies_;
};

}  // namespace ks::test
