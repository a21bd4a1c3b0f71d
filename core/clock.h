#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace ks {

// Injected so that core/ stays deterministic under test.
class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch.
  virtual int64_t now() const = 0;
  // Milliseconds since the Unix epoch (log timestamps, ordering).
  virtual int64_t now_ms() const { return now() * 1000; }
};

class SystemClock final : public Clock {
 public:
  int64_t now() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t t) : t_(t) {}
  int64_t now() const override { return t_.load(); }
  void advance(int64_t s) { t_ += s; }
  void set(int64_t t) { t_ = t; }

 private:
  std::atomic<int64_t> t_;
};

// ISO-8601 UTC with milliseconds, the Auth0 timestamp shape ("2026-11-23T06:38:26.000Z").
std::string iso8601(int64_t epoch_ms);

}  // namespace ks
