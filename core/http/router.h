#pragma once
// Method + path-pattern routing with ":name" parameters. Patterns are matched segment by
// segment against the raw path; parameter values are percent-decoded.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/form.h"

namespace ks::http {

using PathParams = std::vector<std::pair<std::string, std::string>>;

template <class Handler>
class Router {
 public:
  enum class Match { kFound, kNotFound, kMethodNotAllowed };

  void add(std::string method, std::string_view pattern, Handler h) {
    Route r;
    r.method = std::move(method);
    r.handler = std::move(h);
    for (auto& seg : split(pattern)) r.segments.push_back(std::string(seg));
    routes_.push_back(std::move(r));
  }

  // On kFound, *out points at the handler and params are filled.
  Match match(std::string_view method, std::string_view path, const Handler** out,
              PathParams* params) const {
    auto segs = split(path);
    bool path_matched = false;
    for (const auto& r : routes_) {
      PathParams p;
      if (!match_segments(r.segments, segs, &p)) continue;
      path_matched = true;
      if (r.method != method && !(method == "HEAD" && r.method == "GET")) continue;
      *out = &r.handler;
      *params = std::move(p);
      return Match::kFound;
    }
    return path_matched ? Match::kMethodNotAllowed : Match::kNotFound;
  }

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };

  static std::vector<std::string_view> split(std::string_view path) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < path.size()) {
      if (path[i] == '/') {
        ++i;
        continue;
      }
      size_t j = path.find('/', i);
      if (j == std::string_view::npos) j = path.size();
      out.push_back(path.substr(i, j - i));
      i = j;
    }
    return out;
  }

  static bool match_segments(const std::vector<std::string>& pattern,
                             const std::vector<std::string_view>& segs, PathParams* p) {
    if (pattern.size() != segs.size()) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
      const auto& pat = pattern[i];
      if (!pat.empty() && pat[0] == ':') {
        auto v = url_decode(segs[i], false);
        if (!v || v->empty()) return false;
        p->emplace_back(pat.substr(1), std::move(*v));
      } else if (pat != segs[i]) {
        return false;
      }
    }
    return true;
  }

  std::vector<Route> routes_;
};

}  // namespace ks::http
