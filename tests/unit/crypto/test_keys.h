#pragma once
// Keys shared by the crypto tests (RSA generation is slow, so generate once per process).
#include "core/crypto/crypto.h"

namespace ks::crypto::testing {

inline const SigningKey& rsa_key() {
  static const auto key = [] {
    auto rng = seeded_random(2048);
    return SigningKey::generate(Alg::RS256, *rng);
  }();
  return *key;
}

inline const SigningKey& ec_key() {
  static const auto key = [] {
    auto rng = seeded_random(256);
    return SigningKey::generate(Alg::ES256, *rng);
  }();
  return *key;
}

}  // namespace ks::crypto::testing
