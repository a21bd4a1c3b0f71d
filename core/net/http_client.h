#pragma once
// Outbound HTTP, as an interface so that core/ stays testable: the engine talks to upstream
// identity providers (federated logins) only through HttpClient. Tests inject a fake.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/http.h"

namespace ks::net {

struct HttpResult {
  int status = 0;    // 0: no HTTP response (bad URL, refused scheme, network error, timeout, ...)
  std::string body;  // the response body; with status 0, a description of the failure
  std::vector<http::Header> headers;  // names lower-case
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Blocking: call it from worker threads only. Never throws for transport failures.
  virtual HttpResult fetch(std::string_view method, const std::string& url,
                           const std::vector<http::Header>& headers, const std::string& body) = 0;
};

inline constexpr size_t kMaxResponseBytes = 1 << 20;  // 1 MiB
inline constexpr long kConnectTimeoutMs = 5000;
inline constexpr long kTotalTimeoutMs = 10000;

// libcurl: http and https only, no redirects followed, TLS peer and host verification on,
// connect timeout 5 s, total 10 s, responses over 1 MiB fail.
std::unique_ptr<HttpClient> curl_http_client();

}  // namespace ks::net
