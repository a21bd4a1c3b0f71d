#include <gtest/gtest.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::crypto {
namespace {

class Crt {
 public:
  Crt() { mbedtls_x509_crt_init(&crt); }
  ~Crt() { mbedtls_x509_crt_free(&crt); }
  int parse(const std::string& pem) {
    return mbedtls_x509_crt_parse(&crt, reinterpret_cast<const unsigned char*>(pem.c_str()),
                                  pem.size() + 1);
  }
  mbedtls_x509_crt crt;
};

bool contains(const mbedtls_x509_buf& raw, const std::string& needle) {
  std::string hay(reinterpret_cast<const char*>(raw.p), raw.len);
  return hay.find(needle) != std::string::npos;
}

TEST(SelfSigned, ParsesAndCarriesSubjectAltNames) {
  auto rng = system_random();
  CertAndKey ck =
      self_signed_certificate({"localhost", "auth.example.test"}, {"127.0.0.1", "::1"}, 30, *rng);
  EXPECT_EQ(ck.cert_pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  Crt c;
  ASSERT_EQ(c.parse(ck.cert_pem), 0);
  EXPECT_EQ(c.crt.version, 3);
  EXPECT_EQ(c.crt.ca_istrue, 0);

  std::vector<std::string> dns;
  for (const mbedtls_x509_sequence* s = &c.crt.subject_alt_names; s != nullptr && s->buf.p;
       s = s->next) {
    if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)) {
      dns.emplace_back(reinterpret_cast<const char*>(s->buf.p), s->buf.len);
    }
  }
  EXPECT_EQ(dns, (std::vector<std::string>{"localhost", "auth.example.test"}));
  // mbedTLS 2.28 does not list iPAddress entries; look for the encoded GeneralNames instead.
  EXPECT_TRUE(contains(c.crt.raw, std::string("\x87\x04\x7f\x00\x00\x01", 6)));
  EXPECT_TRUE(contains(c.crt.raw, std::string("\x87\x10", 2) + std::string(15, '\0') + "\x01"));

  // Validity window.
  EXPECT_EQ(mbedtls_x509_time_is_past(&c.crt.valid_to), 0);
  EXPECT_EQ(mbedtls_x509_time_is_future(&c.crt.valid_from), 0);

  // It verifies against itself as the trust anchor, for each of its names and no other.
  uint32_t flags = 0;
  for (const char* name : {"localhost", "auth.example.test"}) {
    EXPECT_EQ(mbedtls_x509_crt_verify(&c.crt, &c.crt, nullptr, name, &flags, nullptr, nullptr), 0)
        << name << " flags " << flags;
  }
  EXPECT_NE(
      mbedtls_x509_crt_verify(&c.crt, &c.crt, nullptr, "other.test", &flags, nullptr, nullptr), 0);
  EXPECT_TRUE(flags & MBEDTLS_X509_BADCERT_CN_MISMATCH);

  // The key belongs to the certificate.
  auto key = SigningKey::from_pem(ck.key_pem);
  EXPECT_EQ(key->alg(), Alg::ES256);
  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  ASSERT_EQ(mbedtls_pk_parse_key(&pk, reinterpret_cast<const unsigned char*>(ck.key_pem.c_str()),
                                 ck.key_pem.size() + 1, nullptr, 0),
            0);
  EXPECT_EQ(mbedtls_pk_check_pair(&c.crt.pk, &pk), 0);
  mbedtls_pk_free(&pk);
}

TEST(SelfSigned, IpOnlyAndDistinctSerials) {
  auto rng = seeded_random(40);
  CertAndKey a = self_signed_certificate({}, {"10.1.2.3"}, 1, *rng);
  CertAndKey b = self_signed_certificate({}, {"10.1.2.3"}, 1, *rng);
  Crt ca, cb;
  ASSERT_EQ(ca.parse(a.cert_pem), 0);
  ASSERT_EQ(cb.parse(b.cert_pem), 0);
  EXPECT_TRUE(contains(ca.crt.raw, std::string("\x87\x04\x0a\x01\x02\x03", 6)));
  EXPECT_NE(std::string(reinterpret_cast<const char*>(ca.crt.serial.p), ca.crt.serial.len),
            std::string(reinterpret_cast<const char*>(cb.crt.serial.p), cb.crt.serial.len));
  EXPECT_NE(a.key_pem, b.key_pem);
}

TEST(SelfSigned, RejectsBadArguments) {
  auto rng = seeded_random(41);
  EXPECT_THROW(self_signed_certificate({"localhost"}, {"not-an-ip"}, 30, *rng),
               std::invalid_argument);
  EXPECT_THROW(self_signed_certificate({"localhost"}, {"256.0.0.1"}, 30, *rng),
               std::invalid_argument);
  EXPECT_THROW(self_signed_certificate({"localhost"}, {}, 0, *rng), std::invalid_argument);
  EXPECT_THROW(self_signed_certificate({""}, {}, 30, *rng), std::invalid_argument);
}

}  // namespace
}  // namespace ks::crypto
