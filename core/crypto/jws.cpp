// Compact JWS serialisation (RFC 7515) over SigningKey.
#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::crypto {

std::string jws_sign(const SigningKey& key, std::string_view kid, const Json& payload, Random& rng,
                     const Json& extra_header) {
  if (!payload.is_object()) throw std::invalid_argument("jws_sign: payload must be an object");
  if (!extra_header.is_null() && !extra_header.is_object()) {
    throw std::invalid_argument("jws_sign: extra_header must be an object");
  }
  Json header = Json::object();
  header["alg"] = std::string(alg_name(key.alg()));
  header["typ"] = "JWT";
  if (!kid.empty()) header["kid"] = std::string(kid);
  if (extra_header.is_object()) {
    for (const auto& [name, value] : extra_header.items()) header[name] = value;
  }
  std::string signing_input =
      base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
  std::string signature = key.sign(signing_input, rng);
  return signing_input + "." + base64url_encode(signature);
}

std::optional<Jws> jws_parse(std::string_view token) {
  try {
    size_t dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return std::nullopt;
    size_t dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos) return std::nullopt;
    if (token.find('.', dot2 + 1) != std::string_view::npos) return std::nullopt;
    std::string_view header_b64 = token.substr(0, dot1);
    std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
    std::string_view sig_b64 = token.substr(dot2 + 1);
    if (header_b64.empty() || payload_b64.empty()) return std::nullopt;

    auto header_raw = base64url_decode(header_b64);
    auto payload_raw = base64url_decode(payload_b64);
    auto sig_raw = base64url_decode(sig_b64);
    if (!header_raw || !payload_raw || !sig_raw) return std::nullopt;
    // A raw NUL can never occur in JSON text, and nlohmann's lexer would stop at it silently.
    if (header_raw->find('\0') != std::string::npos) return std::nullopt;
    if (payload_raw->find('\0') != std::string::npos) return std::nullopt;

    Jws jws;
    jws.header = Json::parse(*header_raw, nullptr, /*allow_exceptions=*/false);
    if (!jws.header.is_object()) return std::nullopt;  // also rejects the "discarded" value
    jws.payload = Json::parse(*payload_raw, nullptr, /*allow_exceptions=*/false);
    if (!jws.payload.is_object()) return std::nullopt;
    jws.signing_input = std::string(token.substr(0, dot2));
    jws.signature = std::move(*sig_raw);
    return jws;
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace ks::crypto
