#pragma once
// A small thread-safe in-memory cache of JSON documents (upstream discovery documents and JWKS)
// keyed by URL, each with an absolute expiry time (epoch seconds, from the engine's clock).
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/json.h"

namespace ks::net {

class JsonCache {
 public:
  static constexpr size_t kMaxEntries = 1024;

  std::optional<Json> get(const std::string& key, int64_t now) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.expires_at <= now) return std::nullopt;
    return it->second.value;
  }

  void put(const std::string& key, Json value, int64_t expires_at, int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (entries_.size() >= kMaxEntries && !entries_.count(key)) {
      for (auto it = entries_.begin(); it != entries_.end();)
        it = it->second.expires_at <= now ? entries_.erase(it) : std::next(it);
      if (entries_.size() >= kMaxEntries) entries_.clear();
    }
    entries_[key] = Entry{std::move(value), expires_at};
  }

  void erase(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.erase(key);
  }

 private:
  struct Entry {
    Json value;
    int64_t expires_at = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace ks::net
