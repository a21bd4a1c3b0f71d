// PublicKey::from_jwk: RFC 7515 Appendix A known answers, round trips with SigningKey, and
// refusal of everything that is not a usable RS256/ES256 public signing key.
#include <gtest/gtest.h>

#include "core/crypto/crypto.h"
#include "tests/unit/crypto/test_keys.h"

using ks::Json;
using ks::crypto::Alg;
using ks::crypto::base64url_decode;
using ks::crypto::base64url_encode;
using ks::crypto::PublicKey;

namespace {

// RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): the payload, public keys and signatures.
constexpr const char* kPayloadB64 =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
    "fQ";
constexpr const char* kRsaN =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4"
    "d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5re"
    "xMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxX"
    "FvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
constexpr const char* kRsaSig =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
    "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb"
    "1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QO"
    "YEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr const char* kEcX = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr const char* kEcY = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
constexpr const char* kEcSig =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

Json rsa_jwk() { return {{"kty", "RSA"}, {"n", kRsaN}, {"e", "AQAB"}}; }
Json ec_jwk() { return {{"kty", "EC"}, {"crv", "P-256"}, {"x", kEcX}, {"y", kEcY}}; }

std::string sig(const char* b64) { return *base64url_decode(b64); }

}  // namespace

TEST(PublicKeyJwk, Rfc7515RsaExampleVerifies) {
  auto key = PublicKey::from_jwk(rsa_jwk());
  ASSERT_TRUE(key);
  EXPECT_EQ(key->alg(), Alg::RS256);
  const std::string input = std::string("eyJhbGciOiJSUzI1NiJ9.") + kPayloadB64;
  EXPECT_TRUE(key->verify(input, sig(kRsaSig)));
  EXPECT_FALSE(key->verify(input + "x", sig(kRsaSig)));
  std::string bad = sig(kRsaSig);
  bad[10] ^= 1;
  EXPECT_FALSE(key->verify(input, bad));
  EXPECT_FALSE(key->verify(input, sig(kRsaSig).substr(1)));
  EXPECT_FALSE(key->verify(input, ""));
}

TEST(PublicKeyJwk, Rfc7515EcExampleVerifies) {
  auto key = PublicKey::from_jwk(ec_jwk());
  ASSERT_TRUE(key);
  EXPECT_EQ(key->alg(), Alg::ES256);
  const std::string input = std::string("eyJhbGciOiJFUzI1NiJ9.") + kPayloadB64;
  EXPECT_TRUE(key->verify(input, sig(kEcSig)));
  EXPECT_FALSE(key->verify(input + "x", sig(kEcSig)));
  std::string bad = sig(kEcSig);
  bad[40] ^= 1;
  EXPECT_FALSE(key->verify(input, bad));
  EXPECT_FALSE(key->verify(input, sig(kEcSig) + "0"));
  // An RSA signature never verifies with an EC key, and the other way round.
  EXPECT_FALSE(key->verify(input, sig(kRsaSig)));
  EXPECT_FALSE(PublicKey::from_jwk(rsa_jwk())->verify(input, sig(kEcSig)));
}

TEST(PublicKeyJwk, OptionalMembersMustAgree) {
  Json j = rsa_jwk();
  j["use"] = "sig";
  j["alg"] = "RS256";
  j["kid"] = "k1";
  EXPECT_TRUE(PublicKey::from_jwk(j));
  j["use"] = "enc";
  EXPECT_FALSE(PublicKey::from_jwk(j));
  j["use"] = "sig";
  for (const char* alg : {"RS384", "PS256", "ES256", "none", "HS256"}) {
    j["alg"] = alg;
    EXPECT_FALSE(PublicKey::from_jwk(j)) << alg;
  }
  Json e = ec_jwk();
  e["alg"] = "ES256";
  EXPECT_TRUE(PublicKey::from_jwk(e));
  e["alg"] = "RS256";
  EXPECT_FALSE(PublicKey::from_jwk(e));
  e["alg"] = 7;
  EXPECT_FALSE(PublicKey::from_jwk(e));
}

TEST(PublicKeyJwk, RefusesUnusableKeys) {
  EXPECT_FALSE(PublicKey::from_jwk(Json()));
  EXPECT_FALSE(PublicKey::from_jwk(Json::array()));
  EXPECT_FALSE(PublicKey::from_jwk(Json::object()));
  EXPECT_FALSE(PublicKey::from_jwk({{"kty", "oct"}, {"k", "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ"}}));
  EXPECT_FALSE(PublicKey::from_jwk({{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", kEcX}}));

  Json r = rsa_jwk();
  r.erase("e");
  EXPECT_FALSE(PublicKey::from_jwk(r));
  r = rsa_jwk();
  r["n"] = 12345;
  EXPECT_FALSE(PublicKey::from_jwk(r));
  r = rsa_jwk();
  r["n"] = "not base64url!";
  EXPECT_FALSE(PublicKey::from_jwk(r));
  // 1024-bit modulus: too small.
  r = rsa_jwk();
  r["n"] = base64url_encode(base64url_decode(kRsaN)->substr(0, 128));
  EXPECT_FALSE(PublicKey::from_jwk(r));
  // Even exponent.
  r = rsa_jwk();
  r["e"] = "AQAA";
  EXPECT_FALSE(PublicKey::from_jwk(r));

  Json e = ec_jwk();
  e["crv"] = "P-384";
  EXPECT_FALSE(PublicKey::from_jwk(e));
  e = ec_jwk();
  e.erase("crv");
  EXPECT_FALSE(PublicKey::from_jwk(e));
  // Coordinates must be exactly 32 bytes.
  e = ec_jwk();
  e["x"] = base64url_encode(base64url_decode(kEcX)->substr(1));
  EXPECT_FALSE(PublicKey::from_jwk(e));
  // A point that is not on the curve.
  e = ec_jwk();
  std::string y = *base64url_decode(kEcY);
  y[31] ^= 1;
  e["y"] = base64url_encode(y);
  EXPECT_FALSE(PublicKey::from_jwk(e));
}

class PublicKeyRoundTrip : public ::testing::TestWithParam<Alg> {};

TEST_P(PublicKeyRoundTrip, VerifiesWhatTheSigningKeySigned) {
  const auto& signer =
      GetParam() == Alg::RS256 ? ks::crypto::testing::rsa_key() : ks::crypto::testing::ec_key();
  const auto& other =
      GetParam() == Alg::RS256 ? ks::crypto::testing::ec_key() : ks::crypto::testing::rsa_key();
  auto key = PublicKey::from_jwk(signer.public_jwk("kid-1"));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->alg(), GetParam());
  auto rng = ks::crypto::seeded_random(7);
  const std::string s = signer.sign("header.payload", *rng);
  EXPECT_TRUE(key->verify("header.payload", s));
  EXPECT_FALSE(key->verify("header.payload2", s));
  EXPECT_FALSE(key->verify("header.payload", other.sign("header.payload", *rng)));
  // Through compact JWS, as an ID token would arrive.
  const std::string jws = ks::crypto::jws_sign(signer, "kid-1", {{"sub", "x"}}, *rng);
  auto parsed = ks::crypto::jws_parse(jws);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(key->verify(parsed->signing_input, parsed->signature));
}

INSTANTIATE_TEST_SUITE_P(Algs, PublicKeyRoundTrip, ::testing::Values(Alg::RS256, Alg::ES256),
                         [](const auto& info) { return std::string(alg_name(info.param)); });
