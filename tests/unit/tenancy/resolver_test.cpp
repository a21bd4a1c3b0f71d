#include "core/tenancy/resolver.h"

#include <gtest/gtest.h>

#include <map>

using ks::Config;
using ks::http::Request;
using ks::tenancy::Resolution;
using ks::tenancy::TenantResolver;

namespace {

struct Fixture {
  Config cfg;
  std::map<std::string, std::string> domains = {{"login.coffeeshop.com", "coffee"}};
  TenantResolver resolver{
      cfg,
      [this](std::string_view h) -> std::optional<std::string> {
        auto it = domains.find(std::string(h));
        if (it == domains.end()) return std::nullopt;
        return it->second;
      },
      [](std::string_view id) { return "https://" + std::string(id) + ".canonical.test/"; }};
  Fixture() {
    cfg.public_url = "http://127.0.0.1:8080";
    cfg.base_domain = "example.com";
  }
};

Request req(std::string host, std::string target) {
  Request r;
  r.method = "GET";
  r.set_target(target);
  if (!host.empty()) r.add_header("host", host);
  return r;
}

}  // namespace

TEST(Resolver, CustomDomain) {
  Fixture f;
  auto r = f.resolver.resolve(req("login.coffeeshop.com", "/authorize"));
  ASSERT_EQ(r.kind, Resolution::Kind::kResolved);
  EXPECT_EQ(r.tenant, "coffee");
  EXPECT_EQ(r.issuer, "http://login.coffeeshop.com/");
  EXPECT_EQ(r.local_path, "/authorize");
  EXPECT_EQ(r.strategy, "domain");
}

TEST(Resolver, SubdomainOneLabelOnly) {
  Fixture f;
  auto r = f.resolver.resolve(req("acme.example.com:8443", "/x"));
  ASSERT_EQ(r.kind, Resolution::Kind::kResolved);
  EXPECT_EQ(r.tenant, "acme");
  EXPECT_EQ(r.issuer, "http://acme.example.com:8443/");
  auto deep = f.resolver.resolve(req("a.b.example.com", "/x"));
  EXPECT_EQ(deep.strategy, "default");  // dev mode falls back to the control plane
  auto reserved = f.resolver.resolve(req("www.example.com", "/x"));
  EXPECT_EQ(reserved.strategy, "default");
}

TEST(Resolver, PathPrefix) {
  Fixture f;
  auto r = f.resolver.resolve(req("127.0.0.1:8080", "/t/acme/.well-known/jwks.json"));
  ASSERT_EQ(r.kind, Resolution::Kind::kResolved);
  EXPECT_EQ(r.tenant, "acme");
  EXPECT_EQ(r.issuer, "http://127.0.0.1:8080/t/acme/");
  EXPECT_EQ(r.local_path, "/.well-known/jwks.json");
  auto bare = f.resolver.resolve(req("127.0.0.1:8080", "/t/acme"));
  EXPECT_EQ(bare.local_path, "/");
  auto bad = f.resolver.resolve(req("127.0.0.1:8080", "/t/Bad!/x"));
  EXPECT_EQ(bad.kind, Resolution::Kind::kInvalid);
}

TEST(Resolver, HeaderUsesCanonicalIssuer) {
  Fixture f;
  auto q = req("127.0.0.1:8080", "/authorize");
  q.add_header("x-tenant-id", "acme");
  auto r = f.resolver.resolve(q);
  ASSERT_EQ(r.kind, Resolution::Kind::kResolved);
  EXPECT_EQ(r.tenant, "acme");
  EXPECT_EQ(r.issuer, "https://acme.canonical.test/");
  auto bad = req("127.0.0.1:8080", "/");
  bad.add_header("tenant-id", "UPPER");
  EXPECT_EQ(f.resolver.resolve(bad).kind, Resolution::Kind::kInvalid);
}

TEST(Resolver, OrderIsConfigurable) {
  Fixture f;
  f.cfg.resolution = {"header", "path"};
  auto q = req("127.0.0.1:8080", "/t/acme/x");
  q.add_header("tenant-id", "other");
  EXPECT_EQ(f.resolver.resolve(q).tenant, "other");
  f.cfg.resolution = {"path", "header"};
  EXPECT_EQ(f.resolver.resolve(q).tenant, "acme");
}

TEST(Resolver, ProdModeRefusesUnresolvedButServesPublicUrl) {
  Fixture f;
  f.cfg.mode = "prod";
  EXPECT_EQ(f.resolver.resolve(req("unknown.host", "/x")).kind, Resolution::Kind::kUnresolved);
  auto home = f.resolver.resolve(req("127.0.0.1:8080", "/x"));
  ASSERT_EQ(home.kind, Resolution::Kind::kResolved);
  EXPECT_EQ(home.tenant, "control_plane");
}

TEST(Resolver, TenantOfIssuer) {
  Fixture f;
  EXPECT_EQ(f.resolver.tenant_of_issuer("http://127.0.0.1:8080/t/acme/"), "acme");
  EXPECT_EQ(f.resolver.tenant_of_issuer("https://acme.example.com/"), "acme");
  EXPECT_EQ(f.resolver.tenant_of_issuer("https://login.coffeeshop.com/"), "coffee");
  EXPECT_EQ(f.resolver.tenant_of_issuer("http://127.0.0.1:8080/"), "control_plane");
  EXPECT_EQ(f.resolver.tenant_of_issuer("http://127.0.0.1:8080/t/acme/extra"), std::nullopt);
  EXPECT_EQ(f.resolver.tenant_of_issuer("ftp://x/"), std::nullopt);
  EXPECT_EQ(f.resolver.tenant_of_issuer("http://127.0.0.1:8080/t/acme"), std::nullopt);
}
