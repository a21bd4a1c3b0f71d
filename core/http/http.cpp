#include "core/http/http.h"

#include <algorithm>
#include <cctype>

namespace ks::http {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string_view find_header(const std::vector<Header>& hs, std::string_view name) {
  for (const auto& h : hs)
    if (iequals(h.name, name)) return h.value;
  return {};
}

}  // namespace

void Request::set_target(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) {
    path.assign(target);
    query.clear();
  } else {
    path.assign(target.substr(0, q));
    query.assign(target.substr(q + 1));
  }
}

std::string_view Request::header(std::string_view name) const { return find_header(headers, name); }

bool Request::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const Header& h) { return iequals(h.name, name); });
}

void Request::add_header(std::string name, std::string value) {
  headers.push_back({lower(std::move(name)), std::move(value)});
}

void Response::set_header(std::string_view name, std::string value) {
  for (auto& h : headers) {
    if (iequals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  }
  headers.push_back({lower(std::string(name)), std::move(value)});
}

void Response::add_header(std::string name, std::string value) {
  headers.push_back({lower(std::move(name)), std::move(value)});
}

std::string_view Response::header(std::string_view name) const {
  return find_header(headers, name);
}

Response Response::json(int status, const Json& body) {
  Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.headers.push_back({"content-type", "application/json; charset=utf-8"});
  return r;
}

Response Response::html(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.push_back({"content-type", "text/html; charset=utf-8"});
  return r;
}

Response Response::redirect(std::string location, int status) {
  Response r;
  r.status = status;
  r.headers.push_back({"location", std::move(location)});
  return r;
}

Response Response::empty(int status) {
  Response r;
  r.status = status;
  return r;
}

Response Response::error(int status, std::string_view message, std::string_view error_code) {
  Json j = {{"statusCode", status},
            {"error", std::string(reason_phrase(status))},
            {"message", std::string(message)}};
  if (!error_code.empty()) j["errorCode"] = std::string(error_code);
  return json(status, j);
}

Response Response::oauth_error(int status, std::string_view error, std::string_view description) {
  Json j = {{"error", std::string(error)}, {"error_description", std::string(description)}};
  Response r = json(status, j);
  r.headers.push_back({"cache-control", "no-store"});
  if (status == 401) r.headers.push_back({"www-authenticate", "Basic realm=\"keystead\""});
  return r;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : (status < 500 ? "Bad Request" : "Internal Server Error");
  }
}

}  // namespace ks::http
