// Random: the system CTR-DRBG and the deterministic test stream, plus the helpers on the base
// class.
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/sha256.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::crypto {

std::string Random::bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0) fill(reinterpret_cast<uint8_t*>(out.data()), n);
  return out;
}

std::string Random::hex(size_t n_chars) {
  std::string out = hex_encode(bytes((n_chars + 1) / 2));
  out.resize(n_chars);
  return out;
}

std::string Random::alnum(size_t n_chars) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  static constexpr unsigned kSize = sizeof(kAlphabet) - 1;  // 62
  static constexpr unsigned kLimit = 256 - (256 % kSize);   // 248: largest multiple of 62
  std::string out;
  out.reserve(n_chars);
  std::array<uint8_t, 64> buf;
  while (out.size() < n_chars) {
    // Ask for a little more than needed: about 3% of bytes are rejected.
    size_t want = std::min(buf.size(), (n_chars - out.size()) + (n_chars - out.size()) / 16 + 1);
    fill(buf.data(), want);
    for (size_t i = 0; i < want && out.size() < n_chars; ++i) {
      if (buf[i] < kLimit) out.push_back(kAlphabet[buf[i] % kSize]);
    }
  }
  return out;
}

std::string Random::token(size_t n_bytes) { return base64url_encode(bytes(n_bytes)); }

namespace {

class SystemRandom final : public Random {
 public:
  SystemRandom() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    static constexpr char kPers[] = "keystead system_random";
    int rc =
        mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                              reinterpret_cast<const unsigned char*>(kPers), sizeof(kPers) - 1);
    if (rc != 0) {
      mbedtls_ctr_drbg_free(&drbg_);
      mbedtls_entropy_free(&entropy_);
      throw std::runtime_error("crypto: cannot seed CTR-DRBG (mbedtls error " + std::to_string(rc) +
                               ")");
    }
  }
  ~SystemRandom() override {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  SystemRandom(const SystemRandom&) = delete;
  SystemRandom& operator=(const SystemRandom&) = delete;

  bool system_entropy() const override { return true; }

  void fill(uint8_t* out, size_t n) override {
    std::lock_guard<std::mutex> lock(mu_);
    while (n > 0) {
      size_t chunk = std::min<size_t>(n, MBEDTLS_CTR_DRBG_MAX_REQUEST);
      int rc = mbedtls_ctr_drbg_random(&drbg_, out, chunk);
      if (rc != 0) {
        throw std::runtime_error("crypto: CTR-DRBG failure (mbedtls error " + std::to_string(rc) +
                                 ")");
      }
      out += chunk;
      n -= chunk;
    }
  }

 private:
  std::mutex mu_;
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

// SHA-256(seed_le64 || counter_le64) blocks, consumed in order.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : seed_(seed) {}

  void fill(uint8_t* out, size_t n) override {
    std::lock_guard<std::mutex> lock(mu_);
    while (n > 0) {
      if (pos_ == block_.size()) refill();
      size_t take = std::min(n, block_.size() - pos_);
      std::memcpy(out, block_.data() + pos_, take);
      pos_ += take;
      out += take;
      n -= take;
    }
  }

 private:
  void refill() {
    uint8_t input[16];
    for (int i = 0; i < 8; ++i) {
      input[i] = static_cast<uint8_t>(seed_ >> (8 * i));
      input[8 + i] = static_cast<uint8_t>(counter_ >> (8 * i));
    }
    ++counter_;
    mbedtls_sha256_ret(input, sizeof(input), block_.data(), 0);
    pos_ = 0;
  }

  std::mutex mu_;
  uint64_t seed_;
  uint64_t counter_ = 0;
  std::array<uint8_t, 32> block_{};
  size_t pos_ = 32;
};

}  // namespace

std::unique_ptr<Random> system_random() { return std::make_unique<SystemRandom>(); }

std::unique_ptr<Random> seeded_random(uint64_t seed) {
  return std::make_unique<SeededRandom>(seed);
}

}  // namespace ks::crypto
