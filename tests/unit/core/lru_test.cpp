#include "core/lru.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace {

TEST(LruCache, EvictsTheLeastRecentlyUsed) {
  ks::LruCache<int> c(2);
  c.put("a", 1);
  c.put("b", 2);
  ASSERT_EQ(c.get("a"), 1);  // a is now the most recent
  c.put("c", 3);             // evicts b
  EXPECT_EQ(c.size(), 2u);
  EXPECT_FALSE(c.get("b"));
  EXPECT_EQ(c.get("a"), 1);
  EXPECT_EQ(c.get("c"), 3);
}

TEST(LruCache, PutReplacesAndReturnsTheStoredValue) {
  ks::LruCache<std::string> c(3);
  EXPECT_EQ(c.put("k", "v1"), "v1");
  EXPECT_EQ(c.put("k", "v2"), "v2");
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.get("k"), "v2");
}

TEST(LruCache, EraseIfRemovesMatchingKeys) {
  ks::LruCache<int> c(10);
  c.put("t1\na", 1);
  c.put("t1\nb", 2);
  c.put("t2\na", 3);
  EXPECT_EQ(c.erase_if([](const std::string& k) { return k.starts_with("t1\n"); }), 2u);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.get("t2\na"), 3);
  EXPECT_FALSE(c.get("t1\na"));
}

TEST(LruCache, StaysWithinItsCapacityUnderConcurrentUse) {
  ks::LruCache<int> c(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string k = std::to_string(t) + ":" + std::to_string(i % 200);
        if (auto v = c.get(k))
          EXPECT_EQ(*v, i % 200);
        else
          c.put(k, i % 200);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.size(), 64u);
}

TEST(LruCache, ZeroCapacityStillHoldsOne) {
  ks::LruCache<int> c(0);
  c.put("a", 1);
  c.put("b", 2);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.get("b"), 2);
}

}  // namespace
