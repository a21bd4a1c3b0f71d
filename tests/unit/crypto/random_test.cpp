#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <set>
#include <thread>

#include "core/crypto/crypto.h"

namespace ks::crypto {
namespace {

TEST(SeededRandom, IsDeterministic) {
  auto a = seeded_random(42);
  auto b = seeded_random(42);
  auto c = seeded_random(43);
  std::string x = a->bytes(100);
  EXPECT_EQ(x, b->bytes(100));
  EXPECT_NE(x, c->bytes(100));
  EXPECT_NE(a->bytes(100), x);  // the stream moves on
}

TEST(SeededRandom, StreamIsIndependentOfChunking) {
  auto a = seeded_random(7);
  auto b = seeded_random(7);
  std::string whole = a->bytes(1000);
  std::string parts;
  for (size_t n : {1, 2, 31, 32, 33, 64, 100, 737}) parts += b->bytes(n);
  EXPECT_EQ(whole, parts);
}

TEST(SeededRandom, FirstBlockIsSha256OfSeedAndCounter) {
  auto r = seeded_random(1);
  std::string input(16, '\0');
  input[0] = 1;
  EXPECT_EQ(r->bytes(32), sha256(input));
}

TEST(SystemRandom, ProducesDistinctOutput) {
  auto r = system_random();
  std::string a = r->bytes(32), b = r->bytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_NE(system_random()->bytes(32), system_random()->bytes(32));
  EXPECT_EQ(r->bytes(5000).size(), 5000u);  // larger than one CTR-DRBG request
  EXPECT_EQ(r->bytes(0), "");
}

TEST(SystemRandom, IsThreadSafe) {
  auto r = system_random();
  std::vector<std::thread> threads;
  std::vector<std::set<std::string>> seen(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) seen[t].insert(r->bytes(16));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (auto& s : seen) all.insert(s.begin(), s.end());
  EXPECT_EQ(all.size(), 2000u);
}

TEST(RandomHelpers, AlnumCharsetAndLength) {
  auto r = seeded_random(3);
  for (size_t n : {0, 1, 7, 32, 100}) {
    std::string s = r->alnum(n);
    EXPECT_EQ(s.size(), n);
    for (char c : s) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
  }
  std::string big = r->alnum(20000);
  std::set<char> chars(big.begin(), big.end());
  EXPECT_EQ(chars.size(), 62u);
  // Unbiased: each of the 62 symbols should appear close to 20000/62 ≈ 322 times.
  std::map<char, int> counts;
  for (char c : big) ++counts[c];
  for (auto [c, n] : counts) {
    EXPECT_GT(n, 220) << c;
    EXPECT_LT(n, 430) << c;
  }
}

TEST(RandomHelpers, HexAndToken) {
  auto r = seeded_random(4);
  for (size_t n : {0, 1, 2, 15, 32}) {
    std::string h = r->hex(n);
    EXPECT_EQ(h.size(), n);
    EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  }
  std::string t = r->token(32);
  EXPECT_EQ(t.size(), 43u);
  auto raw = base64url_decode(t);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->size(), 32u);
}

}  // namespace
}  // namespace ks::crypto
