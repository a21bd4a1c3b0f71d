#include <gtest/gtest.h>

#include "core/crypto/crypto.h"

namespace ks::crypto {
namespace {

using namespace std::string_literals;

const PasswordParams kFast{1, 256, 1};

TEST(Password, HashAndVerify) {
  auto rng = seeded_random(30);
  std::string h = password_hash("correct horse battery staple", *rng, kFast);
  EXPECT_EQ(h.rfind("$argon2id$v=19$m=256,t=1,p=1$", 0), 0u) << h;
  EXPECT_TRUE(password_verify(h, "correct horse battery staple"));
  EXPECT_FALSE(password_verify(h, "correct horse battery stapl"));
  EXPECT_FALSE(password_verify(h, "Correct horse battery staple"));
  EXPECT_FALSE(password_verify(h, ""));
}

TEST(Password, SaltMakesHashesDiffer) {
  auto rng = seeded_random(31);
  std::string a = password_hash("pw", *rng, kFast);
  std::string b = password_hash("pw", *rng, kFast);
  EXPECT_NE(a, b);
  EXPECT_TRUE(password_verify(a, "pw"));
  EXPECT_TRUE(password_verify(b, "pw"));
  auto r1 = seeded_random(32), r2 = seeded_random(32);
  EXPECT_EQ(password_hash("pw", *r1, kFast), password_hash("pw", *r2, kFast));
}

TEST(Password, EmptyAndBinaryPasswords) {
  auto rng = seeded_random(33);
  std::string e = password_hash("", *rng, kFast);
  EXPECT_TRUE(password_verify(e, ""));
  EXPECT_FALSE(password_verify(e, "x"));
  std::string n = password_hash("a\0b"s, *rng, kFast);
  EXPECT_TRUE(password_verify(n, "a\0b"s));
  EXPECT_FALSE(password_verify(n, "a"));
  EXPECT_FALSE(password_verify(n, "a\0c"s));
  std::string u = password_hash("p\xc3\xa4ssw\xc3\xb6rd", *rng, kFast);
  EXPECT_TRUE(password_verify(u, "p\xc3\xa4ssw\xc3\xb6rd"));
}

TEST(Password, MalformedEncodingsAreRejected) {
  auto rng = seeded_random(34);
  std::string h = password_hash("pw", *rng, kFast);
  for (std::string bad : {
           ""s,
           "pw"s,
           "$argon2id$"s,
           "$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"s,
           h.substr(0, h.size() - 5),
           h.substr(0, h.rfind('$')),
           h + "A",
           h + "\0"s,
           "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"s,
           "$argon2id$v=19$m=256,t=100000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"s,
           "$argon2id$v=19$m=256,t=1,p=1$$"s,
           "$argon2id$v=19$m=,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"s,
       }) {
    EXPECT_FALSE(password_verify(bad, "pw")) << bad;
  }
  std::string tampered = h;
  char& last = tampered[tampered.size() - 2];
  last = last == 'A' ? 'B' : 'A';
  EXPECT_FALSE(password_verify(tampered, "pw"));
}

TEST(Password, DefaultParamsAreOwasp) {
  auto rng = system_random();
  std::string h = password_hash("hunter2", *rng);
  EXPECT_EQ(h.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << h;
  EXPECT_TRUE(password_verify(h, "hunter2"));
  EXPECT_FALSE(password_verify(h, "hunter3"));
}

}  // namespace
}  // namespace ks::crypto
