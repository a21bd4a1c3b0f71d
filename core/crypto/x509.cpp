// Self-signed X.509 certificate (P-256, SHA-256) for dev-mode TLS.
#include <arpa/inet.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include <array>
#include <ctime>
#include <stdexcept>

#include "core/crypto/crypto.h"
#include "core/crypto/mbed.h"

namespace ks::crypto {

namespace {

using mbed::CrtWriter;
using mbed::Mpi;
using mbed::Pk;

int rng_adapter(void* ctx, unsigned char* out, size_t n) {
  try {
    static_cast<Random*>(ctx)->fill(out, n);
    return 0;
  } catch (...) {
    return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
  }
}

void check(int rc, const char* what) {
  if (rc < 0) {
    throw std::runtime_error(std::string("crypto: self_signed_certificate: ") + what +
                             " failed (mbedtls error " + std::to_string(rc) + ")");
  }
}

struct GeneralName {
  unsigned char tag;  // context-specific tag number: 2 = dNSName, 7 = iPAddress
  std::string value;
};

// DER of SubjectAltName ::= SEQUENCE OF GeneralName (both tags IMPLICIT primitives).
std::string subject_alt_name_der(const std::vector<GeneralName>& names) {
  size_t cap = 16;
  for (const auto& n : names) cap += n.value.size() + 8;
  std::string buf(cap, '\0');
  auto* start = reinterpret_cast<unsigned char*>(buf.data());
  unsigned char* p = start + cap;
  size_t len = 0;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    size_t item = 0;
    int rc = mbedtls_asn1_write_raw_buffer(
        &p, start, reinterpret_cast<const unsigned char*>(it->value.data()), it->value.size());
    check(rc, "SAN value");
    item += static_cast<size_t>(rc);
    rc = mbedtls_asn1_write_len(&p, start, item);
    check(rc, "SAN length");
    item += static_cast<size_t>(rc);
    rc = mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONTEXT_SPECIFIC | it->tag);
    check(rc, "SAN tag");
    item += static_cast<size_t>(rc);
    len += item;
  }
  int rc = mbedtls_asn1_write_len(&p, start, len);
  check(rc, "SAN sequence length");
  len += static_cast<size_t>(rc);
  rc = mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
  check(rc, "SAN sequence tag");
  len += static_cast<size_t>(rc);
  return std::string(reinterpret_cast<const char*>(p), len);
}

// DER of ExtKeyUsageSyntax ::= SEQUENCE { id-kp-serverAuth }.
std::string server_auth_eku_der() {
  std::array<unsigned char, 32> buf{};
  unsigned char* start = buf.data();
  unsigned char* p = start + buf.size();
  size_t len = 0;
  int rc = mbedtls_asn1_write_oid(&p, start, MBEDTLS_OID_SERVER_AUTH,
                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH));
  check(rc, "EKU oid");
  len += static_cast<size_t>(rc);
  rc = mbedtls_asn1_write_len(&p, start, len);
  check(rc, "EKU length");
  len += static_cast<size_t>(rc);
  rc = mbedtls_asn1_write_tag(&p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
  check(rc, "EKU tag");
  len += static_cast<size_t>(rc);
  return std::string(reinterpret_cast<const char*>(p), len);
}

std::string x509_time(std::time_t t) {
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) throw std::runtime_error("crypto: bad certificate time");
  char buf[32];
  if (std::strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm) != 14) {
    throw std::runtime_error("crypto: certificate time out of range");
  }
  return buf;
}

bool plain_hostname(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '*' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

CertAndKey self_signed_certificate(const std::vector<std::string>& dns_names,
                                   const std::vector<std::string>& ips, int days, Random& rng) {
  if (days <= 0 || days > 36500) {
    throw std::invalid_argument("self_signed_certificate: days must be 1..36500");
  }
  std::vector<GeneralName> names;
  for (const auto& dns : dns_names) {
    if (dns.empty() || dns.find('\0') != std::string::npos) {
      throw std::invalid_argument("self_signed_certificate: bad DNS name");
    }
    names.push_back({2, dns});
  }
  for (const auto& ip : ips) {
    unsigned char addr[16];
    if (inet_pton(AF_INET, ip.c_str(), addr) == 1) {
      names.push_back({7, std::string(reinterpret_cast<const char*>(addr), 4)});
    } else if (inet_pton(AF_INET6, ip.c_str(), addr) == 1) {
      names.push_back({7, std::string(reinterpret_cast<const char*>(addr), 16)});
    } else {
      throw std::invalid_argument("self_signed_certificate: bad IP address: " + ip);
    }
  }

  CertAndKey out;
  out.key_pem = SigningKey::generate(Alg::ES256, rng)->private_pem();
  Pk key;
  check(mbedtls_pk_parse_key(key.get(), reinterpret_cast<const unsigned char*>(out.key_pem.c_str()),
                             out.key_pem.size() + 1, nullptr, 0),
        "key parse");

  std::string cn = "Keystead development";
  if (!dns_names.empty() && plain_hostname(dns_names.front())) cn = dns_names.front();
  std::string subject = "CN=" + cn + ",O=Keystead";

  CrtWriter crt;
  mbedtls_x509write_crt_set_version(crt.get(), MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(crt.get(), MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(crt.get(), key.get());
  mbedtls_x509write_crt_set_issuer_key(crt.get(), key.get());
  check(mbedtls_x509write_crt_set_subject_name(crt.get(), subject.c_str()), "subject name");
  check(mbedtls_x509write_crt_set_issuer_name(crt.get(), subject.c_str()), "issuer name");

  std::string serial_bytes = rng.bytes(16);
  serial_bytes[0] = static_cast<char>((static_cast<uint8_t>(serial_bytes[0]) & 0x7F) | 0x40);
  Mpi serial;
  check(mbedtls_mpi_read_binary(serial.get(),
                                reinterpret_cast<const unsigned char*>(serial_bytes.data()),
                                serial_bytes.size()),
        "serial");
  check(mbedtls_x509write_crt_set_serial(crt.get(), serial.get()), "serial");

  std::time_t now = std::time(nullptr);
  std::string not_before = x509_time(now - 3600);  // tolerate small clock skew
  std::string not_after = x509_time(now + static_cast<std::time_t>(days) * 86400);
  check(mbedtls_x509write_crt_set_validity(crt.get(), not_before.c_str(), not_after.c_str()),
        "validity");

  check(mbedtls_x509write_crt_set_basic_constraints(crt.get(), 0, -1), "basic constraints");
  check(mbedtls_x509write_crt_set_key_usage(crt.get(), MBEDTLS_X509_KU_DIGITAL_SIGNATURE),
        "key usage");
  check(mbedtls_x509write_crt_set_subject_key_identifier(crt.get()), "subject key identifier");
  check(mbedtls_x509write_crt_set_authority_key_identifier(crt.get()), "authority key identifier");
  std::string eku = server_auth_eku_der();
  check(mbedtls_x509write_crt_set_extension(crt.get(), MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                            MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0,
                                            reinterpret_cast<const unsigned char*>(eku.data()),
                                            eku.size()),
        "extended key usage");
  if (!names.empty()) {
    std::string san = subject_alt_name_der(names);
    check(mbedtls_x509write_crt_set_extension(crt.get(), MBEDTLS_OID_SUBJECT_ALT_NAME,
                                              MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                              reinterpret_cast<const unsigned char*>(san.data()),
                                              san.size()),
          "subjectAltName");
  }

  size_t san_bytes = 0;
  for (const auto& n : names) san_bytes += n.value.size() + 4;
  std::string pem(8192 + 2 * san_bytes, '\0');
  check(mbedtls_x509write_crt_pem(crt.get(), reinterpret_cast<unsigned char*>(pem.data()),
                                  pem.size(), rng_adapter, &rng),
        "certificate write");
  pem.resize(pem.find('\0'));
  out.cert_pem = std::move(pem);
  return out;
}

}  // namespace ks::crypto
