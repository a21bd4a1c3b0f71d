#include <gtest/gtest.h>

#include "core/crypto/crypto.h"

namespace ks::crypto {
namespace {

using namespace std::string_literals;

TEST(Base64Url, Rfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_decode("Zm9vYmE"), "fooba");
  EXPECT_EQ(base64url_decode(""), "");
}

TEST(Base64Url, UsesUrlAlphabet) {
  std::string data = "\xfb\xff\xbf"s;
  EXPECT_EQ(base64url_encode(data), "-_-_");
  EXPECT_EQ(base64_encode(data), "+/+/");
  EXPECT_EQ(base64url_decode("-_-_"), data);
}

TEST(Base64Url, RoundTripsAllLengthsAndBytes) {
  auto rng = seeded_random(1);
  for (size_t n = 0; n < 200; ++n) {
    std::string data = rng->bytes(n);
    std::string enc = base64url_encode(data);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    EXPECT_EQ(base64url_decode(enc), data) << n;
    EXPECT_EQ(base64_decode(base64_encode(data)), data) << n;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(base64url_decode(base64url_encode(all)), all);
}

TEST(Base64Url, RejectsInvalidInput) {
  for (std::string_view bad : {"Zg=", "Zg==", "Z", "Zm9vY", "Zm9v!", "Zm+v", "Zm/v", "Zm9 v",
                               "Zm9v\n", "Zh", "Zm9", "=", "Zm9v.", "\xc3\xa9"}) {
    EXPECT_EQ(base64url_decode(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(base64url_decode("Zm\0v"s), std::nullopt);
}

TEST(Base64, PaddedVectorsAndInvalidInput) {
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zg"), "f");  // missing padding is tolerated
  for (std::string_view bad :
       {"Zg=", "Z===", "====", "Zg==Zg==", "Zm9v-_", "Zm=v", "Zm9v YmFy", "Zh==", "Z"}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

TEST(Hex, EncodeDecode) {
  EXPECT_EQ(hex_encode("\x00\x01\xab\xff"s), "0001abff");
  EXPECT_EQ(hex_decode("0001abff"), "\x00\x01\xab\xff"s);
  EXPECT_EQ(hex_decode("0001ABFF"), "\x00\x01\xab\xff"s);
  EXPECT_EQ(hex_decode(""), "");
  EXPECT_EQ(hex_decode("abc"), std::nullopt);
  EXPECT_EQ(hex_decode("zz"), std::nullopt);
  EXPECT_EQ(hex_decode("0g"), std::nullopt);
  EXPECT_EQ(hex_decode(" 0"), std::nullopt);
}

TEST(Digest, Sha256KnownVectors) {
  EXPECT_EQ(hex_encode(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_encode(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc").size(), 32u);
}

TEST(Digest, HmacSha256Rfc4231) {
  // Test case 1.
  EXPECT_EQ(hex_encode(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2.
  EXPECT_EQ(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: key longer than the block size.
  EXPECT_EQ(hex_encode(hmac_sha256(std::string(131, '\xaa'),
                                   "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Digest, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("\x00"s, ""));
}

}  // namespace
}  // namespace ks::crypto
