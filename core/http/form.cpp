#include "core/http/form.h"

namespace ks::http {
namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Params Params::parse(std::string_view s) {
  Params p;
  size_t i = 0;
  while (i <= s.size()) {
    size_t amp = s.find('&', i);
    if (amp == std::string_view::npos) amp = s.size();
    std::string_view pair = s.substr(i, amp - i);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string_view k = pair.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      auto dk = url_decode(k), dv = url_decode(v);
      if (dk && dv && !dk->empty()) p.items_.emplace_back(std::move(*dk), std::move(*dv));
    }
    i = amp + 1;
  }
  return p;
}

std::optional<std::string> Params::get(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (k == name) return v;
  return std::nullopt;
}

std::string Params::get_or(std::string_view name, std::string_view dflt) const {
  auto v = get(name);
  return v ? *v : std::string(dflt);
}

bool Params::has(std::string_view name) const { return get(name).has_value(); }

std::string Params::encode() const {
  std::string out;
  for (const auto& [k, v] : items_) {
    if (!out.empty()) out.push_back('&');
    out += url_encode(k);
    out.push_back('=');
    out += url_encode(v);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_cookies(std::string_view header) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < header.size()) {
    size_t semi = header.find(';', i);
    if (semi == std::string_view::npos) semi = header.size();
    std::string_view part = trim(header.substr(i, semi - i));
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && eq > 0) {
      std::string_view v = trim(part.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      out.emplace_back(std::string(trim(part.substr(0, eq))), std::string(v));
    }
    i = semi + 1;
  }
  return out;
}

}  // namespace ks::http
