#include <gtest/gtest.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "core/crypto/crypto.h"
#include "core/crypto/providers.h"
#include "tests/unit/crypto/test_keys.h"

namespace ks::crypto {
namespace {

using testing::ec_key;
using testing::rsa_key;

// Generated and signed with the OpenSSL command line (an independent implementation):
//   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048      (PKCS#8)
//   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256    (PKCS#8)
//   openssl dgst -sha256 -sign key.pem msg   (ECDSA DER converted to raw r||s)
constexpr char kOpensslRsaPkcs8[] = R"(-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCtvyX+4mIi+sRq
gJlhHZxdDCXYhE38h8V6LXJ3I26+GyL2ajW2biCY0CYs9cgLN62zOS1f4T3zoDjh
3I1ONc7PQP9JksyjGp/nlY7bmMNj4+BFM4t+GFfQDOuXRmEIIFyPw2xO0mG37qYO
6fWiC+LVsxHyIcJAttN6/x5R3QdcCTMlInnqmJKRYr2tPcoYjbwyXfRmt6J+EUTc
GXTd3V42+QY13SVtFptrRZpOt3wBeI++SX29DVv9buVaiXoNxGgdUiYJhDtO44yy
Mdr40xWoSXs82syWUhxH/VbmuSU8QG0qDxmx7u5YJEe/67Bh25IqUE5OwArLcU+p
aHVkg67JAgMBAAECggEADuaQRyI6IV7ZPnsF7G7CLLawfjemioxIUtiX8wC+bB5e
qrxkG9+o+wIK7BsuC0w8oNy79/eUvRKWHkSwd68kq+CapEArPae4Y/+PD2U0CJqP
7s9jXK6QxV5+S+x0wOIpngi3/rCLQd99LVVCRCH507L2TIo5oxwq2ecMPiATFADv
ydAUNoVBKQCPMtW8ej17qgRyowZa4aJVPkcFNvm4kch5lGcfiZebGC5xRujO+Gy0
EeKez/8KIFf4lXIUHkD8qJx/HnUD7jyBFPa5X/X8pc3pFfN2baqwg10lEAxFtaf7
G3GLcOwzGMroh5FvRFixtzzR0YjevlUWWzaD2WbZ2wKBgQDZKCzZ7nnRP69fXPhG
kja+O9ouQyMtpNQChd6r4PU3em/DisnkhoFBhOQB+GEh9qji4GoucXYv3SGq2ySb
Lhho3mnRHRdVdwyRpROV9LueasCAcLlbI7chZfKZp03lqqDaQu67wnOzgaRYzxot
oAhVbgoEoiQ/cgGaWeUtr8sXtwKBgQDM0yz2yz/E1l7kLsBjBxTt/56A3MbQQ1Uh
sm26+3PGeLa+80gXZaePytiXBetSCbuidH1ITGTzW0IvwJCvN0FIe1G9tTFfTpXP
drTPxKZ1FhxsDsO2N/UiGNQV5bKh4vCXR2Je3uVJUoaF6Lw/YSb5PLG7XhlJtjlz
2FfwU6ZtfwKBgQCMRu6KLQnWCNyhrq3W8JaaVpF/NvFfh81If++yehQNrXLLDzmR
/O08RLsBJtCgHvVD8ZHFxJeDHcak1wETmTg9bgdPBQrQs6GT5936DWixUeZeUfL6
k9y1n2SSq0efp5RWycvr0BXrjEB8+fPAK1OW1Al2qsLdlSjB63YnCBsaiwKBgQCh
uTPNgVnOb3zpKkjZZ+QMr0JVePy5wBBd1OZzNsuJMBMK3khTwP32uTEevZu6YNj4
QoYRKdCjnbC6x4716ejv8/7sjT54hDIhZxcI3bqYxGaYo2fAXpp826HJ0F2lGOzi
ZYi0Y8YiiLiSztqkKG9/Z37l9Dx/SRQ/9dgpd8L2vQKBgGBtNo2F0EYWV0cAZDzm
6AV39Ph5OsF685j3JHtu4i2WXXgx+/x5pEi/jaJxeomwRAulAZg5W2rS+B8cItW0
rK8m+OfioGnKzd1uObDCnsHnk4RKWnTJsv1xVQN8zh/Lkg0f4WuUK3HQVStALhts
RGghejmSXcmlSOHfNT8OtXbo
-----END PRIVATE KEY-----
)";
constexpr char kOpensslEcPkcs8[] = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgx+YtALcdG3o92vqN
y5l3ixMd9pmmCamJT5WnvQ8fAuChRANCAAQZE6udYx8dQMs/KHEcKfM0Bz6/QdQr
/wgHChorPcQa8frNwRFpo6897I1GTucGqLF6Kd9WE2hFpNx521Ltth2T
-----END PRIVATE KEY-----
)";
constexpr char kOpensslMessage[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
constexpr char kOpensslRsaSig[] =
    "aarJvdIl6MbAVeiY1_Sq-InzfmHNraZKlwtlvXcu416gXqLu3cnKyf7sWiM9PAHPz32k9IV-GwOy4MXLYc05j_"
    "vlCQu7IIfOaA9hjW1mWbQOI-Ly3AaL5i0Ff67_4TTRIFdjj8xSMspqJvqfSZAwvCVjKAA0ayPBSSSjzj_"
    "3CmuEk0dYC9fVaGfrflQW2kq32wF-UMWH3IcgT6VYFcMlpVioP4_RQB0z_EEjiQcMHRIbr9ReK5wbMXuSvEBe-"
    "pwFPYf4uFqgszXtJg3geOdhq5cag_oI1jrr6Sqc4ClZJWltKDqpWWsRcOyLoBf3vkZnV6kY0BG8mH3M_Sv6yli5iA";
constexpr char kOpensslEcSigHex[] =
    "A9E9AC6E6A9A8EB321BE6E1013B898B11098CE1A062E0FDA4A7AA8684294D54666AAC3F22BE1C6E5F4B7BDF0634D61"
    "F0513FB2A6F47FCC5E2DAAA1CAB04B8D31";

std::string flip(std::string s, size_t i) {
  s[i] = static_cast<char>(s[i] ^ 0x01);
  return s;
}

TEST(Alg, Names) {
  EXPECT_EQ(alg_name(Alg::RS256), "RS256");
  EXPECT_EQ(alg_name(Alg::ES256), "ES256");
  EXPECT_EQ(alg_from_name("RS256"), Alg::RS256);
  EXPECT_EQ(alg_from_name("ES256"), Alg::ES256);
  EXPECT_EQ(alg_from_name("HS256"), std::nullopt);
  EXPECT_EQ(alg_from_name("none"), std::nullopt);
  EXPECT_EQ(alg_from_name("rs256"), std::nullopt);
}

class SignVerify : public ::testing::TestWithParam<Alg> {
 protected:
  const SigningKey& key() const { return GetParam() == Alg::RS256 ? rsa_key() : ec_key(); }
  size_t sig_len() const { return GetParam() == Alg::RS256 ? 256 : 64; }
};

TEST_P(SignVerify, SignsAndVerifies) {
  auto rng = seeded_random(5);
  EXPECT_EQ(key().alg(), GetParam());
  std::string sig = key().sign("header.payload", *rng);
  EXPECT_EQ(sig.size(), sig_len());
  EXPECT_TRUE(key().verify("header.payload", sig));
  EXPECT_TRUE(key().verify("header.payload", key().sign("header.payload", *rng)));
  std::string empty_sig = key().sign("", *rng);
  EXPECT_TRUE(key().verify("", empty_sig));
}

TEST_P(SignVerify, RejectsModifiedInputOrSignature) {
  auto rng = seeded_random(6);
  std::string sig = key().sign("header.payload", *rng);
  EXPECT_FALSE(key().verify("header.payloaD", sig));
  EXPECT_FALSE(key().verify("header.payload ", sig));
  EXPECT_FALSE(key().verify("", sig));
  for (size_t i = 0; i < sig.size(); i += 7) {
    EXPECT_FALSE(key().verify("header.payload", flip(sig, i))) << i;
  }
  EXPECT_FALSE(key().verify("header.payload", flip(sig, sig.size() - 1)));
  EXPECT_FALSE(key().verify("header.payload", ""));
  EXPECT_FALSE(key().verify("header.payload", sig.substr(1)));
  EXPECT_FALSE(key().verify("header.payload", sig + '\0'));
  EXPECT_FALSE(key().verify("header.payload", std::string(sig.size(), '\0')));
  EXPECT_FALSE(key().verify("header.payload", std::string(sig.size(), '\xff')));
}

TEST_P(SignVerify, OtherKeyDoesNotVerify) {
  auto rng = seeded_random(77);
  auto other = GetParam() == Alg::RS256 ? SigningKey::from_pem(kOpensslRsaPkcs8)
                                        : SigningKey::generate(Alg::ES256, *rng);
  std::string sig = key().sign("msg", *rng);
  EXPECT_FALSE(other->verify("msg", sig));
  EXPECT_FALSE(key().verify("msg", other->sign("msg", *rng)));
}

TEST_P(SignVerify, PemRoundTrip) {
  auto rng = seeded_random(8);
  std::string pem = key().private_pem();
  EXPECT_NE(pem.find(GetParam() == Alg::RS256 ? "-----BEGIN RSA PRIVATE KEY-----"
                                              : "-----BEGIN EC PRIVATE KEY-----"),
            std::string::npos);
  auto copy = SigningKey::from_pem(pem);
  EXPECT_EQ(copy->alg(), GetParam());
  EXPECT_EQ(copy->public_jwk("k"), key().public_jwk("k"));
  EXPECT_EQ(copy->private_pem(), pem);
  EXPECT_TRUE(key().verify("m", copy->sign("m", *rng)));
  EXPECT_TRUE(copy->verify("m", key().sign("m", *rng)));
}

TEST_P(SignVerify, ConcurrentSignAndVerify) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto rng = seeded_random(1000 + t);
      for (int i = 0; i < (GetParam() == Alg::RS256 ? 5 : 20); ++i) {
        std::string msg = "thread " + std::to_string(t) + " msg " + std::to_string(i);
        std::string sig = key().sign(msg, *rng);
        if (!key().verify(msg, sig)) ++failures;
        if (key().verify(msg + "!", sig)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Algs, SignVerify, ::testing::Values(Alg::RS256, Alg::ES256),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

TEST(SigningKey, KeygenFollowsRngAndRsaSignaturesAreDeterministic) {
  auto r1 = seeded_random(9);
  auto r2 = seeded_random(9);
  auto k1 = SigningKey::generate(Alg::ES256, *r1);
  auto k2 = SigningKey::generate(Alg::ES256, *r2);
  EXPECT_EQ(k1->public_jwk("x"), k2->public_jwk("x"));
  auto k3 = SigningKey::generate(Alg::ES256, *r1);
  EXPECT_NE(k1->public_jwk("x"), k3->public_jwk("x"));
  EXPECT_EQ(rsa_key().sign("m", *r1), rsa_key().sign("m", *r2));
#if defined(KS_WITH_OPENSSL)
  // OpenSSL 3.0 draws ECDSA nonces from its own DRBG: signatures differ, both verify.
  EXPECT_EQ(signing_provider(), "openssl");
  const std::string a = k1->sign("m", *r1), b = k1->sign("m", *r2);
  EXPECT_NE(a, b);
  EXPECT_TRUE(k1->verify("m", a));
  EXPECT_TRUE(k1->verify("m", b));
#else
  // RFC 6979 nonces: the same message gives the same signature whatever the blinding RNG.
  EXPECT_EQ(signing_provider(), "mbedtls");
  EXPECT_EQ(k1->sign("m", *r1), k1->sign("m", *r2));
#endif
}

#if defined(KS_WITH_OPENSSL)
// The two providers read the same stored keys and accept each other's signatures; RS256
// (PKCS#1 v1.5) signatures are byte-identical.
TEST(SigningKey, ProvidersInteroperate) {
  auto rng = seeded_random(14);
  for (const SigningKey* key : {&rsa_key(), &ec_key()}) {
    const std::string pem = key->private_pem();
    auto mbed = mbedtls_from_pem(pem);
    auto ossl = openssl_signing_key(mbedtls_from_pem(pem));
    EXPECT_EQ(ossl->public_jwk("k"), mbed->public_jwk("k"));
    EXPECT_EQ(ossl->private_pem(), pem);
    for (const char* msg : {"", "a.b", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0"}) {
      const std::string by_ossl = ossl->sign(msg, *rng), by_mbed = mbed->sign(msg, *rng);
      EXPECT_TRUE(mbed->verify(msg, by_ossl)) << alg_name(key->alg());
      EXPECT_TRUE(ossl->verify(msg, by_mbed)) << alg_name(key->alg());
      EXPECT_FALSE(ossl->verify(msg, flip(by_mbed, 5)));
      EXPECT_FALSE(ossl->verify(std::string(msg) + "x", by_mbed));
      if (key->alg() == Alg::RS256) {
        EXPECT_EQ(by_ossl, by_mbed);
      }
    }
    EXPECT_FALSE(ossl->verify("m", "short"));
    EXPECT_FALSE(ossl->verify("m", ""));
  }
}
#endif

// Keys from the system source: fresh each time (with libcrypto, P-256 keys come from its
// generator; openssl_generate is also checked for RSA),
// valid, stored in the same PEM, and readable by the mbedTLS provider alone.
TEST(SigningKey, SystemEntropyKeysAreFreshAndInteroperate) {
  auto rng = system_random();
  ASSERT_TRUE(rng->system_entropy());
  EXPECT_FALSE(seeded_random(1)->system_entropy());
  for (Alg alg : {Alg::RS256, Alg::ES256}) {
    auto a = SigningKey::generate(alg, *rng);
    auto b = SigningKey::generate(alg, *rng);
    EXPECT_EQ(a->alg(), alg);
    EXPECT_NE(a->public_jwk("k"), b->public_jwk("k"));
    const Json jwk = a->public_jwk("k");
    if (alg == Alg::RS256) {
      EXPECT_EQ(jwk["e"], "AQAB");
      EXPECT_EQ(base64url_decode(jwk["n"].get<std::string>())->size(), 256u);  // 2048 bits
    } else {
      EXPECT_EQ(jwk["crv"], "P-256");
    }
    const std::string pem = a->private_pem();
    auto mbed = mbedtls_from_pem(pem);
    EXPECT_EQ(mbed->public_jwk("k"), jwk);
    const std::string sig = a->sign("a.b", *rng);
    EXPECT_TRUE(mbed->verify("a.b", sig)) << alg_name(alg);
    EXPECT_TRUE(a->verify("a.b", mbed->sign("a.b", *rng))) << alg_name(alg);
    EXPECT_FALSE(b->verify("a.b", sig));
    EXPECT_FALSE(a->verify("a.c", sig));
#if defined(KS_WITH_OPENSSL)
    auto generated = openssl_generate(alg);
    EXPECT_EQ(generated->alg(), alg);
    EXPECT_TRUE(
        mbedtls_from_pem(generated->private_pem())->verify("m", generated->sign("m", *rng)));
#endif
  }
}

TEST(SigningKey, RsaJwkMatchesSignatureMath) {
  auto rng = seeded_random(10);
  Json jwk = rsa_key().public_jwk("rsa-1");
  EXPECT_EQ(jwk["kty"], "RSA");
  EXPECT_EQ(jwk["kid"], "rsa-1");
  EXPECT_EQ(jwk["use"], "sig");
  EXPECT_EQ(jwk["alg"], "RS256");
  EXPECT_EQ(jwk["e"], "AQAB");
  EXPECT_FALSE(jwk.contains("d"));
  auto n = base64url_decode(jwk["n"].get<std::string>());
  ASSERT_TRUE(n);
  ASSERT_EQ(n->size(), 256u);
  EXPECT_GE(static_cast<uint8_t>((*n)[0]), 0x80);  // exactly 2048 bits, no leading zero

  // Recover the PKCS#1 v1.5 encoded message with the JWK's n and e: s^e mod n.
  std::string sig = rsa_key().sign("a.b", *rng);
  mbedtls_mpi N, E, S, M;
  for (auto* m : {&N, &E, &S, &M}) mbedtls_mpi_init(m);
  ASSERT_EQ(mbedtls_mpi_read_binary(&N, reinterpret_cast<const unsigned char*>(n->data()), 256), 0);
  ASSERT_EQ(mbedtls_mpi_lset(&E, 65537), 0);
  ASSERT_EQ(mbedtls_mpi_read_binary(&S, reinterpret_cast<const unsigned char*>(sig.data()), 256),
            0);
  ASSERT_EQ(mbedtls_mpi_exp_mod(&M, &S, &E, &N, nullptr), 0);
  std::string em(256, '\0');
  ASSERT_EQ(mbedtls_mpi_write_binary(&M, reinterpret_cast<unsigned char*>(em.data()), 256), 0);
  for (auto* m : {&N, &E, &S, &M}) mbedtls_mpi_free(m);
  const std::string digest_info = hex_decode("3031300d060960864801650304020105000420").value();
  std::string expected = std::string("\x00\x01", 2) + std::string(256 - 3 - 19 - 32, '\xff') +
                         std::string(1, '\0') + digest_info + sha256("a.b");
  EXPECT_EQ(hex_encode(em), hex_encode(expected));
}

TEST(SigningKey, EcJwkMatchesSignatureMath) {
  auto rng = seeded_random(11);
  Json jwk = ec_key().public_jwk("ec-1");
  EXPECT_EQ(jwk["kty"], "EC");
  EXPECT_EQ(jwk["crv"], "P-256");
  EXPECT_EQ(jwk["kid"], "ec-1");
  EXPECT_EQ(jwk["use"], "sig");
  EXPECT_EQ(jwk["alg"], "ES256");
  EXPECT_FALSE(jwk.contains("d"));
  auto x = base64url_decode(jwk["x"].get<std::string>());
  auto y = base64url_decode(jwk["y"].get<std::string>());
  ASSERT_TRUE(x && y);
  ASSERT_EQ(x->size(), 32u);
  ASSERT_EQ(y->size(), 32u);

  std::string sig = ec_key().sign("a.b", *rng);
  std::string hash = sha256("a.b");
  mbedtls_ecp_group grp;
  mbedtls_ecp_point q;
  mbedtls_mpi r, s;
  mbedtls_ecp_group_init(&grp);
  mbedtls_ecp_point_init(&q);
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  ASSERT_EQ(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1), 0);
  std::string point = "\x04" + *x + *y;
  ASSERT_EQ(mbedtls_ecp_point_read_binary(
                &grp, &q, reinterpret_cast<const unsigned char*>(point.data()), point.size()),
            0);
  EXPECT_EQ(mbedtls_ecp_check_pubkey(&grp, &q), 0);
  ASSERT_EQ(mbedtls_mpi_read_binary(&r, reinterpret_cast<const unsigned char*>(sig.data()), 32), 0);
  ASSERT_EQ(
      mbedtls_mpi_read_binary(&s, reinterpret_cast<const unsigned char*>(sig.data() + 32), 32), 0);
  EXPECT_EQ(mbedtls_ecdsa_verify(&grp, reinterpret_cast<const unsigned char*>(hash.data()), 32, &q,
                                 &r, &s),
            0);
  mbedtls_mpi_free(&r);
  mbedtls_mpi_free(&s);
  mbedtls_ecp_point_free(&q);
  mbedtls_ecp_group_free(&grp);
}

TEST(SigningKey, CrossChecksWithOpenssl) {
  auto rng = seeded_random(12);
  auto rsa = SigningKey::from_pem(kOpensslRsaPkcs8);
  EXPECT_EQ(rsa->alg(), Alg::RS256);
  std::string rsa_sig = base64url_decode(kOpensslRsaSig).value();
  EXPECT_TRUE(rsa->verify(kOpensslMessage, rsa_sig));
  // PKCS#1 v1.5 is deterministic: our signature must be byte-identical to OpenSSL's.
  EXPECT_EQ(rsa->sign(kOpensslMessage, *rng), rsa_sig);

  auto ec = SigningKey::from_pem(kOpensslEcPkcs8);
  EXPECT_EQ(ec->alg(), Alg::ES256);
  std::string ec_sig = hex_decode(kOpensslEcSigHex).value();
  EXPECT_TRUE(ec->verify(kOpensslMessage, ec_sig));
  EXPECT_FALSE(ec->verify(kOpensslMessage, flip(ec_sig, 40)));
  EXPECT_TRUE(ec->verify("x", ec->sign("x", *rng)));
}

std::string mbedtls_pem(mbedtls_pk_context* pk) {
  std::string buf(16000, '\0');
  EXPECT_EQ(mbedtls_pk_write_key_pem(pk, reinterpret_cast<unsigned char*>(buf.data()), buf.size()),
            0);
  buf.resize(buf.find('\0'));
  return buf;
}

int test_rng(void* ctx, unsigned char* out, size_t n) {
  static_cast<Random*>(ctx)->fill(out, n);
  return 0;
}

TEST(SigningKey, FromPemRejectsBadInput) {
  EXPECT_THROW(SigningKey::from_pem(""), std::invalid_argument);
  EXPECT_THROW(SigningKey::from_pem("garbage"), std::invalid_argument);
  EXPECT_THROW(SigningKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"
                                    "-----END RSA PRIVATE KEY-----\n"),
               std::invalid_argument);
  std::string pem = ec_key().private_pem();
  EXPECT_THROW(SigningKey::from_pem(pem.substr(0, pem.size() / 2)), std::invalid_argument);
  std::string corrupt = pem;
  corrupt[60] = corrupt[60] == 'A' ? 'B' : 'A';
  EXPECT_THROW(SigningKey::from_pem(corrupt), std::invalid_argument);

  auto rng = seeded_random(13);
  // RSA-1024 is too small.
  mbedtls_pk_context small;
  mbedtls_pk_init(&small);
  ASSERT_EQ(mbedtls_pk_setup(&small, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
  ASSERT_EQ(mbedtls_rsa_gen_key(mbedtls_pk_rsa(small), test_rng, rng.get(), 1024, 65537), 0);
  EXPECT_THROW(SigningKey::from_pem(mbedtls_pem(&small)), std::invalid_argument);
  mbedtls_pk_free(&small);
  // P-384 is not ES256.
  mbedtls_pk_context p384;
  mbedtls_pk_init(&p384);
  ASSERT_EQ(mbedtls_pk_setup(&p384, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
  ASSERT_EQ(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP384R1, mbedtls_pk_ec(p384), test_rng, rng.get()),
            0);
  EXPECT_THROW(SigningKey::from_pem(mbedtls_pem(&p384)), std::invalid_argument);
  mbedtls_pk_free(&p384);
}

}  // namespace
}  // namespace ks::crypto
