// AES-256-GCM sealing of secrets at rest: 12-byte nonce || ciphertext || 16-byte tag.
#include <mbedtls/gcm.h>

#include <stdexcept>

#include "core/crypto/crypto.h"
#include "core/crypto/mbed.h"

namespace ks::crypto {

namespace {

using mbed::Gcm;

constexpr size_t kKeyLen = 32;
constexpr size_t kNonceLen = 12;
constexpr size_t kTagLen = 16;

const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string aead_seal(std::string_view key, std::string_view plaintext, Random& rng,
                      std::string_view aad) {
  if (key.size() != kKeyLen) throw std::invalid_argument("aead_seal: key must be 32 bytes");
  Gcm gcm;
  if (mbedtls_gcm_setkey(gcm.get(), MBEDTLS_CIPHER_ID_AES, u8(key), kKeyLen * 8) != 0) {
    throw std::runtime_error("aead_seal: cannot set key");
  }
  std::string out(kNonceLen + plaintext.size() + kTagLen, '\0');
  auto* base = reinterpret_cast<unsigned char*>(out.data());
  rng.fill(base, kNonceLen);
  int rc = mbedtls_gcm_crypt_and_tag(
      gcm.get(), MBEDTLS_GCM_ENCRYPT, plaintext.size(), base, kNonceLen, u8(aad), aad.size(),
      u8(plaintext), base + kNonceLen, kTagLen, base + kNonceLen + plaintext.size());
  if (rc != 0) throw std::runtime_error("aead_seal: encryption failed");
  return out;
}

std::optional<std::string> aead_open(std::string_view key, std::string_view sealed,
                                     std::string_view aad) {
  if (key.size() != kKeyLen || sealed.size() < kNonceLen + kTagLen) return std::nullopt;
  Gcm gcm;
  if (mbedtls_gcm_setkey(gcm.get(), MBEDTLS_CIPHER_ID_AES, u8(key), kKeyLen * 8) != 0) {
    return std::nullopt;
  }
  size_t ct_len = sealed.size() - kNonceLen - kTagLen;
  const unsigned char* base = u8(sealed);
  std::string out(ct_len, '\0');
  int rc = mbedtls_gcm_auth_decrypt(gcm.get(), ct_len, base, kNonceLen, u8(aad), aad.size(),
                                    base + kNonceLen + ct_len, kTagLen, base + kNonceLen,
                                    reinterpret_cast<unsigned char*>(out.data()));
  if (rc != 0) return std::nullopt;  // mbedtls zeroes the output on tag mismatch
  return out;
}

}  // namespace ks::crypto
