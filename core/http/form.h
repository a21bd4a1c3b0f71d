#pragma once
// Query strings, urlencoded forms, cookies.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ks::http {

// Decodes %XX and, when plus_is_space, '+'. Returns nullopt on a malformed escape.
std::optional<std::string> url_decode(std::string_view s, bool plus_is_space = true);
std::string url_encode(std::string_view s);

class Params {
 public:
  Params() = default;
  // application/x-www-form-urlencoded or a query string. Malformed pairs are skipped.
  static Params parse(std::string_view s);

  std::optional<std::string> get(std::string_view name) const;
  std::string get_or(std::string_view name, std::string_view dflt) const;
  bool has(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  void add(std::string name, std::string value) {
    items_.emplace_back(std::move(name), std::move(value));
  }
  // Serialises back to an urlencoded string.
  std::string encode() const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// "a=1; b=2" → pairs. Values are not decoded (cookie values we set are URL-safe).
std::vector<std::pair<std::string, std::string>> parse_cookies(std::string_view header);

}  // namespace ks::http
