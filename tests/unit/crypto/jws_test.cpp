#include <gtest/gtest.h>

#include <stdexcept>

#include "core/crypto/crypto.h"
#include "tests/unit/crypto/test_keys.h"

namespace ks::crypto {
namespace {

using testing::ec_key;
using testing::rsa_key;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

class JwsTest : public ::testing::TestWithParam<Alg> {
 protected:
  const SigningKey& key() const { return GetParam() == Alg::RS256 ? rsa_key() : ec_key(); }
};

TEST_P(JwsTest, SignParseVerify) {
  auto rng = seeded_random(20);
  Json payload = {{"sub", "user-1"}, {"iat", 1700000000}, {"scope", "openid profile"}};
  std::string token = jws_sign(key(), "kid-1", payload, *rng);
  auto parts = split(token);
  ASSERT_EQ(parts.size(), 3u);

  auto jws = jws_parse(token);
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->header["alg"], alg_name(GetParam()));
  EXPECT_EQ(jws->header["typ"], "JWT");
  EXPECT_EQ(jws->header["kid"], "kid-1");
  EXPECT_EQ(jws->header.size(), 3u);
  EXPECT_EQ(jws->payload, payload);
  EXPECT_EQ(jws->signing_input, parts[0] + "." + parts[1]);
  EXPECT_EQ(jws->signature, base64url_decode(parts[2]));
  EXPECT_TRUE(key().verify(jws->signing_input, jws->signature));
}

TEST_P(JwsTest, ExtraHeaderIsMergedAndWins) {
  auto rng = seeded_random(21);
  std::string token =
      jws_sign(key(), "kid-2", {{"sub", "x"}}, *rng, {{"typ", "at+jwt"}, {"x5t", "abc"}});
  auto jws = jws_parse(token);
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->header["typ"], "at+jwt");
  EXPECT_EQ(jws->header["x5t"], "abc");
  EXPECT_EQ(jws->header["kid"], "kid-2");
  EXPECT_EQ(jws->header["alg"], alg_name(GetParam()));
  EXPECT_TRUE(key().verify(jws->signing_input, jws->signature));
}

TEST_P(JwsTest, TamperedTokenFailsVerification) {
  auto rng = seeded_random(22);
  std::string token = jws_sign(key(), "k", {{"sub", "alice"}, {"admin", false}}, *rng);
  auto parts = split(token);
  std::string forged_payload = base64url_encode(Json({{"sub", "alice"}, {"admin", true}}).dump());
  auto forged = jws_parse(parts[0] + "." + forged_payload + "." + parts[2]);
  ASSERT_TRUE(forged);
  EXPECT_FALSE(key().verify(forged->signing_input, forged->signature));

  // Swapping the header for one naming another algorithm also breaks the signature.
  std::string other_header = base64url_encode(Json({{"alg", "HS256"}, {"typ", "JWT"}}).dump());
  auto swapped = jws_parse(other_header + "." + parts[1] + "." + parts[2]);
  ASSERT_TRUE(swapped);
  EXPECT_FALSE(key().verify(swapped->signing_input, swapped->signature));
}

INSTANTIATE_TEST_SUITE_P(Algs, JwsTest, ::testing::Values(Alg::RS256, Alg::ES256),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

TEST(Jws, SignRejectsNonObjects) {
  auto rng = seeded_random(23);
  EXPECT_THROW(jws_sign(ec_key(), "k", Json::array(), *rng), std::invalid_argument);
  EXPECT_THROW(jws_sign(ec_key(), "k", Json("str"), *rng), std::invalid_argument);
  EXPECT_THROW(jws_sign(ec_key(), "k", Json::object(), *rng, Json::array()), std::invalid_argument);
}

TEST(Jws, ParseRejectsGarbage) {
  std::string obj = base64url_encode("{}");
  std::string arr = base64url_encode("[]");
  std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "abc",
      "a.b",
      "a.b.c.d",
      obj + "." + obj,
      obj + "." + obj + "." + ".",
      "." + obj + ".",
      obj + "..",
      "!!!." + obj + ".",
      obj + "." + obj + ".***",
      obj + "=." + obj + ".",  // padding is not base64url
      arr + "." + obj + ".",   // header must be an object
      obj + "." + arr + ".",   // payload must be an object
      obj + "." + base64url_encode("null") + ".",
      obj + "." + base64url_encode("42") + ".",
      base64url_encode("not json") + "." + obj + ".",
      base64url_encode("{\"alg\":") + "." + obj + ".",
      base64url_encode("{} {}") + "." + obj + ".",
      base64url_encode("{\"a\":\"\xff\xfe\"}") + "." + obj + ".",  // invalid UTF-8
      base64url_encode(std::string(100000, '[')) + "." + obj + ".",
      base64url_encode(std::string("{\"a\":1}\0", 8)) + "." + obj + ".",
      obj + "." + base64url_encode(std::string("{}\0garbage", 10)) + ".",
  };
  for (const auto& token : bad) {
    std::optional<Jws> result;
    EXPECT_NO_THROW(result = jws_parse(token)) << token.substr(0, 80);
    EXPECT_FALSE(result.has_value()) << token.substr(0, 80);
  }
}

TEST(Jws, ParseAcceptsUnsignedShapeButItNeverVerifies) {
  std::string obj = base64url_encode(R"({"alg":"none"})");
  auto jws = jws_parse(obj + "." + base64url_encode("{}") + ".");
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->signature, "");
  EXPECT_FALSE(rsa_key().verify(jws->signing_input, jws->signature));
  EXPECT_FALSE(ec_key().verify(jws->signing_input, jws->signature));
}

TEST(Jws, ParseNeverThrowsOnRandomInput) {
  auto rng = seeded_random(24);
  static constexpr char kChars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=";
  std::string good = jws_sign(ec_key(), "k", {{"sub", "x"}}, *rng);
  for (int i = 0; i < 2000; ++i) {
    std::string token;
    if (i % 2 == 0) {
      std::string r = rng->bytes(1 + i % 120);
      for (char c : r) token.push_back(kChars[static_cast<uint8_t>(c) % (sizeof(kChars) - 1)]);
    } else {
      token = good;  // mutate a real token
      std::string r = rng->bytes(3);
      token[static_cast<uint8_t>(r[0]) % token.size()] = kChars[static_cast<uint8_t>(r[1]) % 65];
    }
    std::optional<Jws> result;
    EXPECT_NO_THROW(result = jws_parse(token));
    if (result && token != good) {
      EXPECT_FALSE(ec_key().verify(result->signing_input, result->signature)) << token;
    }
  }
}

}  // namespace
}  // namespace ks::crypto
