// argon2id password hashing in PHC string format ($argon2id$v=19$m=..,t=..,p=..$salt$hash).
#include <argon2.h>

#include <charconv>
#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::crypto {

namespace {

constexpr size_t kSaltLen = 16;
constexpr size_t kHashLen = 32;

// Ceilings for hashes we are asked to verify (e.g. imported from elsewhere), so that a crafted
// string cannot make us allocate gigabytes or spin for minutes.
constexpr uint32_t kMaxMemoryKib = 1u << 20;  // 1 GiB
constexpr uint32_t kMaxTime = 64;
constexpr uint32_t kMaxLanes = 64;

bool read_param(std::string_view& s, std::string_view name, uint32_t& out) {
  if (s.substr(0, name.size()) != name) return false;
  s.remove_prefix(name.size());
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr == s.data()) return false;
  s.remove_prefix(static_cast<size_t>(ptr - s.data()));
  return true;
}

// Checks the shape "$argon2id$v=19$m=M,t=T,p=P$" and the cost ceilings; argon2 itself validates
// the rest.
bool acceptable_encoding(std::string_view s) {
  constexpr std::string_view kPrefix = "$argon2id$v=19$";
  if (s.substr(0, kPrefix.size()) != kPrefix) return false;
  s.remove_prefix(kPrefix.size());
  uint32_t m = 0, t = 0, p = 0;
  if (!read_param(s, "m=", m) || !read_param(s, ",t=", t) || !read_param(s, ",p=", p)) {
    return false;
  }
  if (s.empty() || s.front() != '$') return false;
  return m <= kMaxMemoryKib && t <= kMaxTime && p <= kMaxLanes;
}

}  // namespace

std::string password_hash(std::string_view password, Random& rng, const PasswordParams& params) {
  std::string salt = rng.bytes(kSaltLen);
  size_t len = argon2_encodedlen(params.t_cost, params.m_cost_kib, params.parallelism, kSaltLen,
                                 kHashLen, Argon2_id);
  std::string encoded(len, '\0');
  int rc = argon2id_hash_encoded(params.t_cost, params.m_cost_kib, params.parallelism,
                                 password.data(), password.size(), salt.data(), salt.size(),
                                 kHashLen, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    throw std::runtime_error(std::string("crypto: argon2id failed: ") + argon2_error_message(rc));
  }
  encoded.resize(encoded.find('\0'));
  return encoded;
}

bool password_verify(std::string_view encoded, std::string_view password) {
  try {
    if (!acceptable_encoding(encoded)) return false;
    if (encoded.find('\0') != std::string_view::npos) return false;
    std::string z(encoded);
    return argon2id_verify(z.c_str(), password.data(), password.size()) == ARGON2_OK;
  } catch (...) {
    return false;
  }
}

}  // namespace ks::crypto
