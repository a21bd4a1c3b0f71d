#include "core/http/http.h"

#include <gtest/gtest.h>

#include "core/http/form.h"
#include "core/http/router.h"

using namespace ks::http;

TEST(Request, SplitsTargetAndFindsHeadersCaseInsensitively) {
  Request r;
  r.set_target("/a/b?x=1&y=2");
  EXPECT_EQ(r.path, "/a/b");
  EXPECT_EQ(r.query, "x=1&y=2");
  r.add_header("Content-Type", "text/plain");
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.header("CONTENT-TYPE"), "text/plain");
  EXPECT_TRUE(r.has_header("Content-type"));
  EXPECT_EQ(r.header("missing"), "");
  r.set_target("/only");
  EXPECT_EQ(r.path, "/only");
  EXPECT_EQ(r.query, "");
}

TEST(Response, ErrorHasAuth0Shape) {
  auto r = Response::error(400, "Bad thing", "invalid_body");
  EXPECT_EQ(r.status, 400);
  auto j = ks::Json::parse(r.body);
  EXPECT_EQ(j["statusCode"], 400);
  EXPECT_EQ(j["error"], "Bad Request");
  EXPECT_EQ(j["message"], "Bad thing");
  EXPECT_EQ(j["errorCode"], "invalid_body");
  EXPECT_EQ(r.header("content-type"), "application/json; charset=utf-8");
  auto r2 = Response::error(404, "Nope");
  EXPECT_FALSE(ks::Json::parse(r2.body).contains("errorCode"));
}

TEST(Response, OAuthErrorIsRfc6749) {
  auto r = Response::oauth_error(401, "invalid_client", "no");
  auto j = ks::Json::parse(r.body);
  EXPECT_EQ(j["error"], "invalid_client");
  EXPECT_EQ(j["error_description"], "no");
  EXPECT_EQ(r.header("cache-control"), "no-store");
  EXPECT_FALSE(r.header("www-authenticate").empty());
}

TEST(Response, SetHeaderReplaces) {
  Response r;
  r.set_header("X-A", "1");
  r.set_header("x-a", "2");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.header("X-A"), "2");
}

TEST(Form, DecodesPercentAndPlus) {
  EXPECT_EQ(*url_decode("a%20b+c"), "a b c");
  EXPECT_EQ(*url_decode("a+b", false), "a+b");
  EXPECT_FALSE(url_decode("%"));
  EXPECT_FALSE(url_decode("%4"));
  EXPECT_FALSE(url_decode("%zz"));
  EXPECT_EQ(*url_decode("%e2%82%ac"), "\xe2\x82\xac");
}

TEST(Form, EncodeRoundTrips) {
  std::string s = "a b&c=d/é?";
  EXPECT_EQ(*url_decode(url_encode(s)), s);
  EXPECT_EQ(url_encode("AZaz09-_.~"), "AZaz09-_.~");
}

TEST(Form, ParsesParamsAndSkipsMalformed) {
  auto p = Params::parse("a=1&b=two+words&c=&d&=x&e=%zz&a=2");
  EXPECT_EQ(p.get("a"), "1");
  EXPECT_EQ(p.get("b"), "two words");
  EXPECT_EQ(p.get("c"), "");
  EXPECT_EQ(p.get("d"), "");
  EXPECT_FALSE(p.has("e"));
  EXPECT_FALSE(p.has(""));
  EXPECT_EQ(p.get_or("zz", "dflt"), "dflt");
  EXPECT_EQ(Params::parse(p.encode()).items(), p.items());
}

TEST(Form, ParsesCookies) {
  auto c = parse_cookies("a=1; b = two ; c=\"q\";bad; =x");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(c[1], (std::pair<std::string, std::string>{"b", "two"}));
  EXPECT_EQ(c[2], (std::pair<std::string, std::string>{"c", "q"}));
}

TEST(Router, MatchesParamsAndMethods) {
  Router<int> r;
  r.add("GET", "/api/v2/users", 1);
  r.add("GET", "/api/v2/users/:id", 2);
  r.add("DELETE", "/api/v2/users/:id", 3);
  r.add("GET", "/api/v2/users/:id/roles", 4);
  const int* h = nullptr;
  PathParams p;
  EXPECT_EQ(r.match("GET", "/api/v2/users", &h, &p), Router<int>::Match::kFound);
  EXPECT_EQ(*h, 1);
  EXPECT_EQ(r.match("GET", "/api/v2/users/auth0%7C12", &h, &p), Router<int>::Match::kFound);
  EXPECT_EQ(*h, 2);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].first, "id");
  EXPECT_EQ(p[0].second, "auth0|12");
  EXPECT_EQ(r.match("DELETE", "/api/v2/users/x", &h, &p), Router<int>::Match::kFound);
  EXPECT_EQ(*h, 3);
  EXPECT_EQ(r.match("HEAD", "/api/v2/users/x", &h, &p), Router<int>::Match::kFound);
  EXPECT_EQ(*h, 2);
  EXPECT_EQ(r.match("PUT", "/api/v2/users/x", &h, &p), Router<int>::Match::kMethodNotAllowed);
  EXPECT_EQ(r.match("GET", "/api/v2/nothing", &h, &p), Router<int>::Match::kNotFound);
  EXPECT_EQ(r.match("GET", "/api/v2/users/x/roles/y", &h, &p), Router<int>::Match::kNotFound);
  EXPECT_EQ(r.match("GET", "/api/v2/users/%zz", &h, &p), Router<int>::Match::kNotFound);
}

TEST(ReasonPhrase, KnownCodes) {
  EXPECT_EQ(reason_phrase(413), "Payload Too Large");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(299), "OK");
}
