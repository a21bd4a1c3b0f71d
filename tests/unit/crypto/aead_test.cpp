#include <gtest/gtest.h>

#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::crypto {
namespace {

class Aead : public ::testing::Test {
 protected:
  std::unique_ptr<Random> rng = seeded_random(99);
  std::string key = rng->bytes(32);
};

TEST_F(Aead, RoundTrip) {
  for (std::string pt : {std::string(), std::string("s3cret"), std::string(1000, 'x')}) {
    std::string sealed = aead_seal(key, pt, *rng, "aad");
    EXPECT_EQ(sealed.size(), 12 + pt.size() + 16);
    EXPECT_EQ(aead_open(key, sealed, "aad"), pt);
  }
  std::string sealed = aead_seal(key, "no aad", *rng);
  EXPECT_EQ(aead_open(key, sealed), "no aad");
}

TEST_F(Aead, FreshNonceEachTime) {
  std::string a = aead_seal(key, "same", *rng);
  std::string b = aead_seal(key, "same", *rng);
  EXPECT_NE(a, b);
  EXPECT_NE(a.substr(0, 12), b.substr(0, 12));
}

TEST_F(Aead, DetectsTamperingAnywhere) {
  std::string sealed = aead_seal(key, "client secret value", *rng, "tenant-1");
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      std::string t = sealed;
      t[i] = static_cast<char>(t[i] ^ bit);
      EXPECT_EQ(aead_open(key, t, "tenant-1"), std::nullopt) << "byte " << i;
    }
  }
  EXPECT_EQ(aead_open(key, sealed.substr(0, sealed.size() - 1), "tenant-1"), std::nullopt);
  EXPECT_EQ(aead_open(key, sealed + "x", "tenant-1"), std::nullopt);
}

TEST_F(Aead, WrongKeyOrAadFails) {
  std::string sealed = aead_seal(key, "payload", *rng, "tenant-1");
  std::string other = key;
  other[0] = static_cast<char>(other[0] ^ 1);
  EXPECT_EQ(aead_open(other, sealed, "tenant-1"), std::nullopt);
  EXPECT_EQ(aead_open(key, sealed, "tenant-2"), std::nullopt);
  EXPECT_EQ(aead_open(key, sealed), std::nullopt);
  EXPECT_EQ(aead_open(key, sealed, "tenant-1"), "payload");
}

TEST_F(Aead, MalformedInputs) {
  EXPECT_EQ(aead_open(key, ""), std::nullopt);
  EXPECT_EQ(aead_open(key, std::string(27, 'a')), std::nullopt);
  EXPECT_EQ(aead_open(key, std::string(28, 'a')), std::nullopt);
  EXPECT_EQ(aead_open("short", aead_seal(key, "x", *rng)), std::nullopt);
  EXPECT_THROW(aead_seal("short", "x", *rng), std::invalid_argument);
  EXPECT_THROW(aead_seal(std::string(33, 'k'), "x", *rng), std::invalid_argument);
}

}  // namespace
}  // namespace ks::crypto
