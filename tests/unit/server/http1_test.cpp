// The llhttp glue: limits, incomplete vs malformed, pipelining, validation, response heads.
#include "server/http1.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ks::server {
namespace {

using Kind = RequestParser::Result::Kind;

ParserLimits small_limits() {
  ParserLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_headers = 10;
  limits.max_body_bytes = 100;
  return limits;
}

// Feeds `input` in pieces of `piece` bytes, collecting complete requests; stops at an error.
struct Feed {
  std::vector<http::Request> requests;
  std::vector<bool> keep_alive;
  int error_status = 0;
  std::string error_message;
};

Feed feed(RequestParser& parser, const std::string& input, size_t piece = 0) {
  Feed out;
  std::string pending;
  size_t fed = 0;
  if (piece == 0) piece = input.size();
  while (fed < input.size() || !pending.empty()) {
    if (fed < input.size()) {
      size_t n = std::min(piece, input.size() - fed);
      pending.append(input, fed, n);
      fed += n;
    }
    size_t pos = 0;
    while (pos < pending.size()) {
      RequestParser::Result r = parser.execute(pending.data() + pos, pending.size() - pos);
      pos += r.consumed;
      if (r.kind == Kind::kError) {
        out.error_status = parser.error_status();
        out.error_message = parser.error_message();
        return out;
      }
      if (r.kind == Kind::kComplete) {
        out.requests.push_back(parser.request());
        out.keep_alive.push_back(parser.keep_alive());
      }
    }
    pending.erase(0, pos);
    if (fed == input.size() && !pending.empty()) break;
  }
  return out;
}

TEST(RequestParser, SimpleGet) {
  RequestParser parser(small_limits());
  Feed f = feed(parser, "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.com\r\nX-Thing:  v \r\n\r\n");
  ASSERT_EQ(f.error_status, 0) << f.error_message;
  ASSERT_EQ(f.requests.size(), 1u);
  const http::Request& r = f.requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/a/b");
  EXPECT_EQ(r.query, "x=1&y=2");
  EXPECT_EQ(r.header("host"), "Example.com");
  EXPECT_EQ(r.header("x-thing"), "v");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[1].name, "x-thing");  // names lower-cased
  EXPECT_TRUE(f.keep_alive[0]);
  EXPECT_EQ(parser.phase(), RequestParser::Phase::kComplete);
}

TEST(RequestParser, StopsAfterEachRequestWhenPipelined) {
  RequestParser parser(small_limits());
  std::string two =
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: "
      "3\r\n\r\nabc";
  RequestParser::Result r = parser.execute(two.data(), two.size());
  ASSERT_EQ(r.kind, Kind::kComplete);
  EXPECT_EQ(r.consumed, two.find("POST"));
  EXPECT_EQ(parser.request().path, "/one");
  r = parser.execute(two.data() + r.consumed, two.size() - r.consumed);
  ASSERT_EQ(r.kind, Kind::kComplete);
  EXPECT_EQ(parser.request().path, "/two");
  EXPECT_EQ(parser.request().body, "abc");
}

TEST(RequestParser, ByteByByteEqualsWhole) {
  std::string input =
      "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n"
      "Trailer-Field: t\r\n\r\nGET /q HTTP/1.1\r\nHost: y\r\n\r\n";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{7}, input.size()}) {
    RequestParser parser(small_limits());
    Feed f = feed(parser, input, piece);
    ASSERT_EQ(f.error_status, 0) << f.error_message;
    ASSERT_EQ(f.requests.size(), 2u) << "piece " << piece;
    EXPECT_EQ(f.requests[0].body, "abcde");
    EXPECT_FALSE(f.requests[0].has_header("trailer-field"));
    EXPECT_EQ(f.requests[1].path, "/q");
  }
}

TEST(RequestParser, RandomSplitsOfManyRequests) {
  std::string one = "GET /big?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string all;
  for (int i = 0; i < 500; ++i) all += one;
  std::mt19937 rng(7);
  RequestParser parser(small_limits());
  std::string pending;
  size_t fed = 0;
  int done = 0;
  while (fed < all.size()) {
    size_t n = std::min<size_t>(rng() % 200 + 1, all.size() - fed);
    pending.append(all, fed, n);
    fed += n;
    size_t pos = 0;
    while (pos < pending.size()) {
      RequestParser::Result r = parser.execute(pending.data() + pos, pending.size() - pos);
      pos += r.consumed;
      ASSERT_NE(r.kind, Kind::kError) << parser.error_message();
      if (r.kind == Kind::kComplete) {
        ++done;
        EXPECT_EQ(parser.request().query, "n=1000");
      }
    }
    pending.erase(0, pos);
  }
  EXPECT_EQ(done, 500);
}

TEST(RequestParser, IncompleteIsNotAnError) {
  RequestParser parser(small_limits());
  std::string part = "GET /x HTTP/1.1\r\nHo";
  RequestParser::Result r = parser.execute(part.data(), part.size());
  EXPECT_EQ(r.kind, Kind::kNeedMore);
  EXPECT_EQ(r.consumed, part.size());
  EXPECT_EQ(parser.phase(), RequestParser::Phase::kHead);
}

TEST(RequestParser, GarbageIs400) {
  RequestParser parser(small_limits());
  Feed f = feed(parser, "GARBAGE\r\n\r\n");
  EXPECT_EQ(f.error_status, 400);
  EXPECT_EQ(parser.phase(), RequestParser::Phase::kError);
  // Once failed, the parser stays failed.
  EXPECT_EQ(parser.execute("GET / HTTP/1.1\r\n\r\n", 18).kind, Kind::kError);
}

TEST(RequestParser, RequestSmugglingShapesAre400) {
  for (const char* input : {
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
           "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
       }) {
    RequestParser parser(small_limits());
    EXPECT_EQ(feed(parser, input).error_status, 400) << input;
  }
}

TEST(RequestParser, MissingOrDuplicateHostIs400ForHttp11) {
  RequestParser a(small_limits());
  EXPECT_EQ(feed(a, "GET / HTTP/1.1\r\n\r\n").error_status, 400);
  RequestParser b(small_limits());
  EXPECT_EQ(feed(b, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").error_status, 400);
  RequestParser c(small_limits());
  Feed f = feed(c, "GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_FALSE(f.keep_alive[0]);  // HTTP/1.0 closes unless asked otherwise
}

TEST(RequestParser, KeepAliveRules) {
  RequestParser a(small_limits());
  EXPECT_FALSE(feed(a, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive[0]);
  RequestParser b(small_limits());
  EXPECT_TRUE(feed(b, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive[0]);
  RequestParser c(small_limits());
  Feed f =
      feed(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_FALSE(f.keep_alive[0]);  // an upgrade we do not perform ends the connection
}

TEST(RequestParser, HeadTooLargeIs431) {
  RequestParser parser(small_limits());
  Feed f = feed(parser,
                "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n", 100);
  EXPECT_EQ(f.error_status, 431);
}

TEST(RequestParser, HeadLimitCountsTheWholeHeadNotOnlyValues) {
  ParserLimits limits = small_limits();
  limits.max_header_bytes = 60;
  RequestParser parser(limits);
  // 8 short headers: small spans, but the head with its separators exceeds 60 bytes.
  std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 8; ++i) head += "A: b\r\n";
  EXPECT_EQ(feed(parser, head + "\r\n").error_status, 431);
}

TEST(RequestParser, TooManyHeadersIs431) {
  RequestParser parser(small_limits());
  std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 10; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(feed(parser, head + "\r\n").error_status, 431);
  RequestParser ok(small_limits());
  std::string fits = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 9; ++i) fits += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(feed(ok, fits + "\r\n").requests.size(), 1u);
}

TEST(RequestParser, LongUrlIs414) {
  RequestParser parser(small_limits());
  EXPECT_EQ(feed(parser, "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\n\r\n").error_status, 414);
}

TEST(RequestParser, ContentLengthOverLimitIs413BeforeTheBody) {
  RequestParser parser(small_limits());
  std::string head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n";
  RequestParser::Result r = parser.execute(head.data(), head.size());
  EXPECT_EQ(r.kind, Kind::kError);
  EXPECT_EQ(parser.error_status(), 413);
}

TEST(RequestParser, ChunkedBodyOverLimitIs413WhileStreaming) {
  RequestParser parser(small_limits());
  std::string input = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) input += "a\r\n0123456789\r\n";
  EXPECT_EQ(feed(parser, input, 16).error_status, 413);
}

TEST(RequestParser, BodyAtTheLimitIsAccepted) {
  RequestParser parser(small_limits());
  Feed f = feed(
      parser, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'));
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_EQ(f.requests[0].body.size(), 100u);
}

TEST(RequestParser, ExpectContinue) {
  RequestParser parser(small_limits());
  std::string head =
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
  RequestParser::Result r = parser.execute(head.data(), head.size());
  EXPECT_EQ(r.kind, Kind::kNeedMore);
  EXPECT_EQ(parser.phase(), RequestParser::Phase::kBody);
  EXPECT_TRUE(parser.take_expect_continue());
  EXPECT_FALSE(parser.take_expect_continue());
  RequestParser other(small_limits());
  EXPECT_EQ(feed(other, "GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n").error_status, 417);
}

TEST(RequestParser, AbsoluteFormReplacesHost) {
  RequestParser parser(small_limits());
  Feed f = feed(parser, "GET https://acme.example.com/a?b=c HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_EQ(f.requests[0].path, "/a");
  EXPECT_EQ(f.requests[0].query, "b=c");
  EXPECT_EQ(f.requests[0].header("host"), "acme.example.com");
  RequestParser bare(small_limits());
  Feed g = feed(bare, "GET http://acme.example.com HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_EQ(g.requests.size(), 1u);
  EXPECT_EQ(g.requests[0].path, "/");
}

TEST(RequestParser, UnsupportedVersionAndConnect) {
  RequestParser a(small_limits());
  EXPECT_EQ(feed(a, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").error_status, 505);
  RequestParser b(small_limits());
  EXPECT_EQ(feed(b, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n").error_status,
            405);
}

TEST(RequestParser, StateIsResetBetweenRequests) {
  RequestParser parser(small_limits());
  Feed f = feed(parser,
                "POST /a?q=1 HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nContent-Length: 2\r\n\r\nhi"
                "GET /b HTTP/1.1\r\nHost: y\r\n\r\n");
  ASSERT_EQ(f.requests.size(), 2u);
  EXPECT_EQ(f.requests[1].query, "");
  EXPECT_EQ(f.requests[1].body, "");
  EXPECT_FALSE(f.requests[1].has_header("x-one"));
  EXPECT_EQ(f.requests[1].headers.size(), 1u);
}

TEST(ResponseHead, SerializesStatusHeadersAndFraming) {
  http::Response response;
  response.status = 201;
  response.body = "hello";
  response.headers.push_back({"content-type", "text/plain"});
  response.headers.push_back({"Content-Length", "999"});           // ours wins
  response.headers.push_back({"connection", "upgrade"});           // ours wins
  response.headers.push_back({"x-evil", "a\r\nSet-Cookie: x=1"});  // dropped
  std::string head;
  serialize_response_head(response, {"Mon, 01 Jan 2024 00:00:00 GMT", "rid123", true}, head);
  EXPECT_EQ(head,
            "HTTP/1.1 201 Created\r\n"
            "content-type: text/plain\r\n"
            "Content-Length: 5\r\n"
            "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
            "X-Request-Id: rid123\r\n"
            "Connection: keep-alive\r\n\r\n");
}

TEST(ResponseHead, KeepsTheResponsesOwnRequestIdAndOmitsLengthFor204) {
  http::Response response;
  response.status = 204;
  response.headers.push_back({"X-Request-Id", "mine"});
  std::string head;
  serialize_response_head(response, {"", "generated", false}, head);
  EXPECT_EQ(head, "HTTP/1.1 204 No Content\r\nX-Request-Id: mine\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(status_has_body(304));
  EXPECT_TRUE(status_has_body(200));
}

}  // namespace
}  // namespace ks::server
