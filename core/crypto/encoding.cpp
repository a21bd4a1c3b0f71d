// Base64 / base64url / hex codecs, SHA-256, HMAC-SHA-256 and constant-time comparison.
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include <array>
#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::crypto {

namespace {

constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(std::string_view data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = byte(i) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (pad) out.append("==");
  } else if (rest == 2) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.push_back('=');
  }
  return out;
}

using DecodeTable = std::array<int8_t, 256>;

constexpr DecodeTable make_table(const char* alphabet) {
  DecodeTable t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
  return t;
}

constexpr DecodeTable kStdTable = make_table(kStdAlphabet);
constexpr DecodeTable kUrlTable = make_table(kUrlAlphabet);

// Decodes unpadded base64 text (padding already stripped by the caller). Rejects characters
// outside the alphabet, impossible lengths, and non-zero trailing bits (non-canonical input).
std::optional<std::string> decode_unpadded(std::string_view text, const DecodeTable& table) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int8_t v = table[static_cast<uint8_t>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits (2 or 4) must be zero in a canonical encoding.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string base64url_encode(std::string_view data) { return encode(data, kUrlAlphabet, false); }

std::optional<std::string> base64url_decode(std::string_view text) {
  return decode_unpadded(text, kUrlTable);
}

std::string base64_encode(std::string_view data) { return encode(data, kStdAlphabet, true); }

std::optional<std::string> base64_decode(std::string_view text) {
  // Padded input must be a whole number of quads with at most two '=' at the very end;
  // unpadded input is tolerated.
  if (!text.empty() && text.back() == '=') {
    if (text.size() % 4 != 0) return std::nullopt;
    text.remove_suffix(1);
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  return decode_unpadded(text, kStdTable);
}

std::string hex_encode(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (char c : data) {
    auto b = static_cast<uint8_t>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = hex_value(text[i]);
    int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string sha256(std::string_view data) {
  std::string out(32, '\0');
  int rc = mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                              reinterpret_cast<unsigned char*>(out.data()), 0);
  if (rc != 0) throw std::runtime_error("crypto: sha256 failed");
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string out(32, '\0');
  int rc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                           reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                           reinterpret_cast<unsigned char*>(out.data()));
  if (rc != 0) throw std::runtime_error("crypto: hmac_sha256 failed");
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // The length is not secret; the contents are.
  if (a.size() != b.size()) return false;
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<uint8_t>(diff | (static_cast<uint8_t>(a[i]) ^ static_cast<uint8_t>(b[i])));
  }
  return diff == 0;
}

}  // namespace ks::crypto
