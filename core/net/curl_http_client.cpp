// HttpClient over libcurl (easy interface, one handle per request: handles are cheap, and no
// state is shared between worker threads).
#include <curl/curl.h>

#include <cctype>
#include <mutex>

#include "core/net/http_client.h"

namespace ks::net {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

bool allowed_scheme(std::string_view url) {
  const std::string l = lower(url.substr(0, 8));
  return l.starts_with("http://") || l.starts_with("https://");
}

struct Transfer {
  HttpResult result;
  bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (t->result.body.size() + n > kMaxResponseBytes) {
    t->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->result.body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    t->result.headers.clear();  // a new response head (after 100 Continue)
    return n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return n;
  if (t->result.headers.size() >= 200) return n;
  t->result.headers.push_back({lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1))});
  return n;
}

class CurlHttpClient final : public HttpClient {
 public:
  CurlHttpClient() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  HttpResult fetch(std::string_view method, const std::string& url,
                   const std::vector<http::Header>& headers, const std::string& body) override {
    HttpResult fail;
    if (!allowed_scheme(url)) {
      fail.body = "only http and https URLs are allowed";
      return fail;
    }
    if (url.find_first_of("\r\n\t ") != std::string::npos || url.find('\0') != std::string::npos) {
      fail.body = "malformed URL";
      return fail;
    }
    CURL* curl = curl_easy_init();
    if (!curl) {
      fail.body = "cannot initialise libcurl";
      return fail;
    }
    curl_slist* list = nullptr;
    for (const auto& h : headers) {
      if ((h.name + h.value).find_first_of("\r\n") != std::string::npos ||
          h.name.find(':') != std::string::npos) {
        curl_slist_free_all(list);
        curl_easy_cleanup(curl);
        fail.body = "malformed request header";
        return fail;
      }
      // "Name;" sends a header with an empty value; "Name:" would remove it.
      const std::string line = h.value.empty() ? h.name + ";" : h.name + ": " + h.value;
      curl_slist* next = curl_slist_append(list, line.c_str());
      if (!next) {
        curl_slist_free_all(list);
        curl_easy_cleanup(curl);
        fail.body = "out of memory";
        return fail;
      }
      list = next;
    }
    Transfer t;
    const std::string m(method);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS});
#endif
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, kTotalTimeoutMs);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBytes));
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "keystead");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    if (m == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (m == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
      if (m != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, m.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      fail.body = t.too_large || rc == CURLE_FILESIZE_EXCEEDED ? "response too large"
                                                               : curl_easy_strerror(rc);
      return fail;
    }
    t.result.status = static_cast<int>(status);
    return std::move(t.result);
  }
};

}  // namespace

std::unique_ptr<HttpClient> curl_http_client() { return std::make_unique<CurlHttpClient>(); }

}  // namespace ks::net
