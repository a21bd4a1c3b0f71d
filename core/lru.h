#pragma once
// A thread-safe, size-bounded map that evicts the least recently used entry: caches of per-tenant
// state stay within a fixed memory budget however many tenants a deployment has.
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace ks {

template <typename V>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity ? capacity : 1) {}

  std::optional<V> get(std::string_view key) {
    std::lock_guard lock(mu_);
    auto it = index_.find(std::string(key));
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }

  // Inserts or replaces; returns the value now stored under key.
  V put(std::string_view key, V value) {
    std::lock_guard lock(mu_);
    std::string k(key);
    if (auto it = index_.find(k); it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return it->second->second;
    }
    order_.emplace_front(k, std::move(value));
    index_.emplace(std::move(k), order_.begin());
    while (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }

  // Removes every entry whose key satisfies pred; returns how many.
  size_t erase_if(const std::function<bool(const std::string&)>& pred) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (auto it = order_.begin(); it != order_.end();) {
      if (pred(it->first)) {
        index_.erase(it->first);
        it = order_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return order_.size();
  }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<std::string, V>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace ks
