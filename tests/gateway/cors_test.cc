// Tests for S3 CORS: the CORSConfiguration document in both directions (with every truncation of a
// valid body), rule matching for preflight and actual requests, and the response headers.
#include "gateway/cors.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace cairn::gateway {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The example configuration of the S3 documentation, with a wildcard origin added.
constexpr std::string_view kExampleBody =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
    " <CORSRule>\n"
    "   <ID>writers</ID>\n"
    "   <AllowedOrigin>http://www.example.com</AllowedOrigin>\n"
    "   <AllowedOrigin>http://*.example.org</AllowedOrigin>\n"
    "   <AllowedMethod>PUT</AllowedMethod>\n"
    "   <AllowedMethod>POST</AllowedMethod>\n"
    "   <AllowedMethod>DELETE</AllowedMethod>\n"
    "   <AllowedHeader>*</AllowedHeader>\n"
    "   <ExposeHeader>x-amz-server-side-encryption</ExposeHeader>\n"
    "   <ExposeHeader>x-amz-request-id</ExposeHeader>\n"
    "   <MaxAgeSeconds>3000</MaxAgeSeconds>\n"
    " </CORSRule>\n"
    " <CORSRule>\n"
    "   <AllowedOrigin>*</AllowedOrigin>\n"
    "   <AllowedMethod>GET</AllowedMethod>\n"
    " </CORSRule>\n"
    "</CORSConfiguration>\n";

CorsConfiguration ExampleConfig() {
  CorsRule writers;
  writers.id = "writers";
  writers.allowed_origins = {"http://www.example.com", "http://*.example.org"};
  writers.allowed_methods = {"PUT", "POST", "DELETE"};
  writers.allowed_headers = {"*"};
  writers.expose_headers = {"x-amz-server-side-encryption", "x-amz-request-id"};
  writers.max_age_seconds = 3000;
  CorsRule readers;
  readers.allowed_origins = {"*"};
  readers.allowed_methods = {"GET"};
  return CorsConfiguration{{writers, readers}};
}

CorsRule Rule(std::vector<std::string> origins, std::vector<std::string> methods,
              std::vector<std::string> headers = {}) {
  CorsRule r;
  r.allowed_origins = std::move(origins);
  r.allowed_methods = std::move(methods);
  r.allowed_headers = std::move(headers);
  return r;
}

CorsRequest Actual(std::string origin, std::string method) {
  return CorsRequest{std::move(origin), std::move(method), {}, false};
}
CorsRequest Preflight(std::string origin, std::string method, std::vector<std::string> headers = {}) {
  return CorsRequest{std::move(origin), std::move(method), std::move(headers), true};
}

// A configuration whose only rule's body is `rule`.
std::string OneRule(std::string_view rule) {
  return "<CORSConfiguration><CORSRule>" + std::string(rule) + "</CORSRule></CORSConfiguration>";
}

// ---- Parsing --------------------------------------------------------------------------------

TEST(CorsParseTest, ParsesTheDocumentedShape) {
  Result<CorsConfiguration> config = ParseCorsConfiguration(kExampleBody);
  ASSERT_OK(config);
  EXPECT_EQ(*config, ExampleConfig());
}

TEST(CorsParseTest, AcceptsNoNamespaceAPrefixAndUnknownElements) {
  Result<CorsConfiguration> config = ParseCorsConfiguration(
      "<s3:CORSConfiguration xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\"><s3:CORSRule><Extra>x</Extra>"
      "<s3:AllowedMethod>GET</s3:AllowedMethod><s3:AllowedOrigin>*</s3:AllowedOrigin></s3:CORSRule>"
      "<Unknown/></s3:CORSConfiguration>");
  ASSERT_OK(config);
  EXPECT_EQ(*config, CorsConfiguration{{Rule({"*"}, {"GET"})}});
  ASSERT_OK(ParseCorsConfiguration(OneRule("<AllowedOrigin>a</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>")));
}

TEST(CorsParseTest, MalformedDocumentsAreMalformedXml) {
  const std::string ok_fields = "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>";
  const std::vector<std::string> bodies = {
      "",
      "<CORSConfiguration>",
      "<CORSRules><CORSRule>" + ok_fields + "</CORSRule></CORSRules>",  // wrong root
      "<CORSConfiguration/>",                                           // no rule
      "<CORSConfiguration><Rule>" + ok_fields + "</Rule></CORSConfiguration>",
      OneRule("<AllowedMethod>GET</AllowedMethod>"),  // no AllowedOrigin
      OneRule("<AllowedOrigin>*</AllowedOrigin>"),    // no AllowedMethod
      OneRule(""),
      OneRule(ok_fields + "<MaxAgeSeconds>-1</MaxAgeSeconds>"),
      OneRule(ok_fields + "<MaxAgeSeconds>+1</MaxAgeSeconds>"),
      OneRule(ok_fields + "<MaxAgeSeconds>ten</MaxAgeSeconds>"),
      OneRule(ok_fields + "<MaxAgeSeconds></MaxAgeSeconds>"),
      OneRule(ok_fields + "<MaxAgeSeconds>1.5</MaxAgeSeconds>"),
      OneRule(ok_fields + "<MaxAgeSeconds>99999999999999999999</MaxAgeSeconds>"),
      OneRule(ok_fields + "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>"),
      OneRule(ok_fields + "<ID>a</ID><ID>b</ID>"),
      OneRule("<AllowedOrigin><x/></AllowedOrigin><AllowedMethod>GET</AllowedMethod>"),
  };
  for (const std::string& body : bodies) {
    Result<CorsConfiguration> config = ParseCorsConfiguration(body);
    EXPECT_TRUE(config.status().IsMalformedXml()) << body << " -> " << config.status();
  }
}

TEST(CorsParseTest, AtMostOneHundredRules) {
  std::string body = "<CORSConfiguration>";
  for (int i = 0; i < 100; ++i) {
    body += "<CORSRule><AllowedOrigin>http://" + std::to_string(i) +
            "</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
            "</CORSRule>";
  }
  Result<CorsConfiguration> hundred = ParseCorsConfiguration(body + "</CORSConfiguration>");
  ASSERT_OK(hundred);
  EXPECT_EQ(hundred->rules.size(), 100u);
  body += "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";
  EXPECT_TRUE(ParseCorsConfiguration(body + "</CORSConfiguration>").status().IsMalformedXml());
}

TEST(CorsParseTest, UnsupportedMethodIsInvalidArgument) {
  for (const std::string_view method : {"PATCH", "get", "OPTIONS", ""}) {
    Result<CorsConfiguration> config = ParseCorsConfiguration(
        OneRule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>" + std::string(method) + "</AllowedMethod>"));
    ASSERT_TRUE(config.status().IsInvalidArgument()) << method << " -> " << config.status();
    EXPECT_EQ(config.status().message(),
              "Found unsupported HTTP method in CORS config. Unsupported method is " + std::string(method));
  }
}

TEST(CorsParseTest, MoreThanOneWildcardIsInvalidArgument) {
  EXPECT_TRUE(ParseCorsConfiguration(
                  OneRule("<AllowedOrigin>http://*.*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"))
                  .status()
                  .IsInvalidArgument());
  EXPECT_TRUE(ParseCorsConfiguration(OneRule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                                             "<AllowedHeader>x-*-*</AllowedHeader>"))
                  .status()
                  .IsInvalidArgument());
  EXPECT_TRUE(ParseCorsConfiguration(OneRule("<AllowedOrigin>**</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"))
                  .status()
                  .IsInvalidArgument());
  // ExposeHeader values are not patterns.
  ASSERT_OK(
      ParseCorsConfiguration(OneRule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                                     "<ExposeHeader>**</ExposeHeader>")));
}

TEST(CorsParseTest, EveryTruncationOfAValidBodyFailsCleanly) {
  const std::string written = CorsXml(ExampleConfig());
  for (const std::string_view body : {kExampleBody, std::string_view(written)}) {
    ASSERT_OK(ParseCorsConfiguration(body));
    size_t accepted = 0;
    for (size_t len = 0; len < body.size(); ++len) {
      const std::string prefix(body.substr(0, len));  // own allocation, so an overread is caught by ASan
      Result<CorsConfiguration> config = ParseCorsConfiguration(prefix);
      if (config.ok()) {
        ++accepted;
      } else {
        EXPECT_TRUE(config.status().IsMalformedXml()) << len << ": " << config.status();
      }
    }
    EXPECT_LE(accepted, 1u);  // only the body without its final newline
  }
}

// ---- Writing --------------------------------------------------------------------------------

TEST(CorsXmlTest, WritesTheS3NamespaceAndLeavesOutEmptyFields) {
  EXPECT_EQ(CorsXml(CorsConfiguration{{Rule({"*"}, {"GET", "HEAD"})}}),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CORSRule>"
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>"
            "</CORSRule></CORSConfiguration>");
}

TEST(CorsXmlTest, RoundTrips) {
  CorsRule zero_age = Rule({"http://a&b.example"}, {"DELETE"}, {"x-amz-*", "Content-Type"});
  zero_age.max_age_seconds = 0;
  zero_age.id = "<id>";
  for (const CorsConfiguration& config : {ExampleConfig(), CorsConfiguration{{zero_age}}}) {
    const std::string xml = CorsXml(config);
    Result<CorsConfiguration> back = ParseCorsConfiguration(xml);
    ASSERT_TRUE(back.ok()) << xml << " -> " << back.status();
    EXPECT_EQ(*back, config) << xml;
  }
}

// ---- Matching -------------------------------------------------------------------------------

TEST(CorsMatchTest, WildcardOriginMatchesAnyRunIncludingNone) {
  const CorsConfiguration config{{Rule({"http://*.example.com"}, {"GET"})}};
  EXPECT_NE(MatchCors(config, Actual("http://www.example.com", "GET")), nullptr);
  EXPECT_NE(MatchCors(config, Actual("http://a.b.example.com", "GET")), nullptr);
  EXPECT_NE(MatchCors(config, Actual("http://.example.com", "GET")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("http://example.com", "GET")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("https://www.example.com", "GET")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("http://www.example.com.evil", "GET")), nullptr);
}

TEST(CorsMatchTest, OriginsCompareCaseSensitively) {
  const CorsConfiguration config{{Rule({"http://www.example.com"}, {"GET"})}};
  EXPECT_NE(MatchCors(config, Actual("http://www.example.com", "GET")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("http://WWW.example.com", "GET")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("http://www.example.co", "GET")), nullptr);
}

TEST(CorsMatchTest, StarMatchesEveryOriginButARequestWithoutOneIsNotCors) {
  const CorsConfiguration config{{Rule({"*"}, {"GET"})}};
  EXPECT_NE(MatchCors(config, Actual("null", "GET")), nullptr);
  EXPECT_NE(MatchCors(config, Actual("https://anything.test:8443", "GET")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("", "GET")), nullptr);
}

TEST(CorsMatchTest, MethodMustBeAllowedExactly) {
  const CorsConfiguration config{{Rule({"*"}, {"GET", "PUT"})}};
  EXPECT_NE(MatchCors(config, Actual("http://a", "PUT")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("http://a", "DELETE")), nullptr);
  EXPECT_EQ(MatchCors(config, Actual("http://a", "get")), nullptr);
  EXPECT_EQ(MatchCors(config, Preflight("http://a", "POST")), nullptr);
}

TEST(CorsMatchTest, PreflightNeedsEveryRequestedHeaderAllowed) {
  const CorsConfiguration config{{Rule({"*"}, {"PUT"}, {"x-amz-*", "Content-Type"})}};
  EXPECT_NE(MatchCors(config, Preflight("http://a", "PUT")), nullptr);
  EXPECT_NE(MatchCors(config, Preflight("http://a", "PUT", {"content-type"})), nullptr);
  EXPECT_NE(MatchCors(config, Preflight("http://a", "PUT", {"X-Amz-Date", "CONTENT-TYPE", "x-amz-"})), nullptr);
  EXPECT_NE(MatchCors(config, Preflight("http://a", "PUT", {"x-amz-meta-a", ""})), nullptr);
  EXPECT_EQ(MatchCors(config, Preflight("http://a", "PUT", {"x-amz-date", "authorization"})), nullptr);
  EXPECT_EQ(MatchCors(config, Preflight("http://a", "PUT", {"content-typo"})), nullptr);
  // A rule without AllowedHeader admits preflights that ask for no header only.
  const CorsConfiguration bare{{Rule({"*"}, {"PUT"})}};
  EXPECT_NE(MatchCors(bare, Preflight("http://a", "PUT")), nullptr);
  EXPECT_EQ(MatchCors(bare, Preflight("http://a", "PUT", {"content-type"})), nullptr);
}

TEST(CorsMatchTest, AnActualRequestIgnoresHeaders) {
  const CorsConfiguration config{{Rule({"*"}, {"PUT"})}};
  CorsRequest request = Actual("http://a", "PUT");
  request.request_headers = {"x-not-allowed"};
  EXPECT_NE(MatchCors(config, request), nullptr);
}

TEST(CorsMatchTest, TheFirstMatchingRuleWins) {
  const CorsConfiguration config{
      {Rule({"http://a.example"}, {"DELETE"}), Rule({"http://*.example"}, {"GET"}), Rule({"*"}, {"GET", "PUT"})}};
  EXPECT_EQ(MatchCors(config, Actual("http://a.example", "GET")), &config.rules[1]);
  EXPECT_EQ(MatchCors(config, Actual("http://a.example", "DELETE")), &config.rules[0]);
  EXPECT_EQ(MatchCors(config, Actual("http://b.test", "GET")), &config.rules[2]);
  EXPECT_EQ(MatchCors(config, Actual("http://b.test", "DELETE")), nullptr);
  const CorsConfiguration example = ExampleConfig();
  EXPECT_EQ(MatchCors(example, Preflight("http://x.example.org", "PUT", {"anything"})), &example.rules[0]);
  EXPECT_EQ(MatchCors(example, Actual("http://www.example.com", "GET")), &example.rules[1]);
}

// ---- Response headers -----------------------------------------------------------------------

TEST(CorsHeadersTest, StarAnswersStarWithoutCredentials) {
  const CorsRule rule = Rule({"*"}, {"GET", "HEAD"});
  EXPECT_EQ(CorsResponseHeaders(rule, Actual("http://a.test", "GET")),
            (Headers{{"Access-Control-Allow-Origin", "*"},
                     {"Access-Control-Allow-Methods", "GET, HEAD"},
                     {"Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"}}));
}

TEST(CorsHeadersTest, ASpecificOriginIsEchoedWithCredentials) {
  const CorsConfiguration config = ExampleConfig();
  const CorsRequest request = Preflight("http://x.example.org", "PUT", {"X-Amz-Date", "Content-Type"});
  const CorsRule* rule = MatchCors(config, request);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(CorsResponseHeaders(*rule, request),
            (Headers{{"Access-Control-Allow-Origin", "http://x.example.org"},
                     {"Access-Control-Allow-Credentials", "true"},
                     {"Access-Control-Allow-Methods", "PUT, POST, DELETE"},
                     {"Access-Control-Allow-Headers", "x-amz-date, content-type"},
                     {"Access-Control-Expose-Headers", "x-amz-server-side-encryption, x-amz-request-id"},
                     {"Access-Control-Max-Age", "3000"},
                     {"Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"}}));
}

TEST(CorsHeadersTest, AnActualRequestGetsNoAllowHeaders) {
  const CorsConfiguration config = ExampleConfig();
  const CorsRequest request = Actual("http://www.example.com", "DELETE");
  const CorsRule* rule = MatchCors(config, request);
  ASSERT_NE(rule, nullptr);
  const Headers headers = CorsResponseHeaders(*rule, request);
  for (const auto& [name, value] : headers) EXPECT_NE(name, "Access-Control-Allow-Headers");
  EXPECT_EQ(headers.at(0),
            (std::pair<std::string, std::string>{"Access-Control-Allow-Origin", "http://www.example.com"}));
}

TEST(CorsHeadersTest, TheFirstMatchingOriginOfTheRuleDecides) {
  // The specific origin listed before "*" is echoed; another origin falls to "*".
  const CorsRule rule = Rule({"http://a.test", "*"}, {"GET"});
  EXPECT_EQ(CorsResponseHeaders(rule, Actual("http://a.test", "GET")).at(0).second, "http://a.test");
  EXPECT_EQ(CorsResponseHeaders(rule, Actual("http://b.test", "GET")).at(0).second, "*");
}

}  // namespace
}  // namespace cairn::gateway
