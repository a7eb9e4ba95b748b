// Tests for browser POST uploads: the multipart/form-data parser (whole, split in two at every
// offset, byte by byte), the POST policy parser and checker with the AWS documentation's example
// policy, and the form's SigV4 signature computed here independently from the spec.
#include "gateway/post_object.h"

#include <cctype>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

constexpr std::string_view kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

std::span<const std::byte> Bytes(std::string_view s) { return crypto::AsBytes(s); }

std::string Base64(std::string_view s) {
  return crypto::Base64Encode(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// ---- multipart/form-data --------------------------------------------------------------------------

// Builds a multipart/form-data body the way browsers lay it out.
class FormBuilder {
 public:
  explicit FormBuilder(std::string_view boundary = kBoundary) : boundary_(boundary) {}

  FormBuilder& Field(std::string_view name, std::string_view value) {
    return Part("Content-Disposition: form-data; name=\"" + std::string(name) + "\"\r\n", value);
  }
  FormBuilder& File(std::string_view filename, std::string_view type, std::string_view data) {
    return Part("Content-Disposition: form-data; name=\"file\"; filename=\"" + std::string(filename) +
                    "\"\r\nContent-Type: " + std::string(type) + "\r\n",
                data);
  }
  // A part with the given header lines (each ending in CRLF).
  FormBuilder& Part(std::string_view headers, std::string_view data) {
    body_ += "--" + boundary_ + "\r\n" + std::string(headers) + "\r\n" + std::string(data) + "\r\n";
    return *this;
  }
  FormBuilder& Raw(std::string_view text) {
    body_ += text;
    return *this;
  }
  std::string Close() const { return body_ + "--" + boundary_ + "--\r\n"; }
  const std::string& Unclosed() const { return body_; }

 private:
  std::string boundary_;
  std::string body_;
};

// Everything the parser reported, in a form tests compare whole.
struct Outcome {
  std::vector<std::pair<std::string, std::string>> fields;
  int file_begins = 0;
  std::string filename;
  std::string content_type;
  std::string file;
  int file_ends = 0;
  bool file_seen = false;
  std::string status;  // "OK" or the first error's ToString()

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "{status=" << o.status << " fields=[";
  for (const auto& [n, v] : o.fields) os << n << "=" << v << ";";
  return os << "] begins=" << o.file_begins << " filename=" << o.filename << " type=" << o.content_type
            << " file=" << o.file.size() << " bytes ends=" << o.file_ends << " seen=" << o.file_seen << "}";
}

// Feeds `body` cut at the offsets in `cuts` (ascending), then finishes.
Outcome ParseInPieces(std::string_view body, const std::vector<size_t>& cuts, FormLimits limits = {},
                      std::string_view boundary = kBoundary) {
  Outcome out;
  MultipartFormParser parser(std::string(boundary), limits,
                             {
                                 .on_field =
                                     [&](std::string name, std::string value) {
                                       out.fields.emplace_back(std::move(name), std::move(value));
                                       return Status::OK();
                                     },
                                 .on_file_begin =
                                     [&](std::string_view filename, std::string_view content_type) {
                                       ++out.file_begins;
                                       out.filename = filename;
                                       out.content_type = content_type;
                                       return Status::OK();
                                     },
                                 .on_file_data =
                                     [&](std::span<const std::byte> data) {
                                       out.file.append(reinterpret_cast<const char*>(data.data()), data.size());
                                       return Status::OK();
                                     },
                                 .on_file_end =
                                     [&] {
                                       ++out.file_ends;
                                       return Status::OK();
                                     },
                             });
  Status status;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(body.size());
  for (size_t end : ends) {
    status = parser.Feed(Bytes(body.substr(start, end - start)));
    if (!status.ok()) break;
    start = end;
  }
  if (status.ok()) status = parser.Finish();
  out.status = status.ok() ? "OK" : status.ToString();
  out.file_seen = parser.file_seen();
  return out;
}

Outcome Parse(std::string_view body, FormLimits limits = {}) { return ParseInPieces(body, {}, limits); }

// Checks that every two-piece split and the byte-by-byte feed give the outcome of the whole body.
void ExpectSplitInvariant(std::string_view body, FormLimits limits = {}) {
  const Outcome whole = Parse(body, limits);
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    ASSERT_EQ(ParseInPieces(body, {cut}, limits), whole) << "split at " << cut;
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < body.size(); ++i) every.push_back(i);
  ASSERT_EQ(ParseInPieces(body, every, limits), whole) << "byte by byte";
}

bool IsInvalidArgument(const Outcome& o) { return o.status.rfind("InvalidArgument", 0) == 0; }

TEST(FormBoundaryTest, Unquoted) {
  auto b = FormBoundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW");
  ASSERT_OK(b);
  EXPECT_EQ(*b, kBoundary);
}

TEST(FormBoundaryTest, QuotedWithEscapes) {
  auto b = FormBoundary(R"(multipart/form-data; boundary="a b:c\"d")");
  ASSERT_OK(b);
  EXPECT_EQ(*b, "a b:c\"d");
}

TEST(FormBoundaryTest, TypeAndParameterNamesIgnoreCaseAndOtherParametersAreSkipped) {
  auto b = FormBoundary("Multipart/Form-Data ; charset=utf-8;BOUNDARY=xyz ;");
  ASSERT_OK(b);
  EXPECT_EQ(*b, "xyz");
}

TEST(FormBoundaryTest, SeventyCharactersIsTheLongest) {
  EXPECT_OK(FormBoundary("multipart/form-data; boundary=" + std::string(70, 'a')));
  EXPECT_TRUE(FormBoundary("multipart/form-data; boundary=" + std::string(71, 'a')).status().IsInvalidArgument());
}

TEST(FormBoundaryTest, MissingOrMalformed) {
  for (std::string_view ct : {
           "multipart/form-data",
           "multipart/form-data; boundary=",
           "multipart/form-data; boundary=\"\"",
           "multipart/form-data; boundary=\"abc",
           "multipart/form-data; boundary=\"abc\"x",
           "multipart/form-data; boundary",
           "multipart/form-data; boundary=a; boundary=b",
           "multipart/form-data; boundary=\"a\rb\"",
           "multipart/mixed; boundary=abc",
           "application/x-www-form-urlencoded",
           "",
       }) {
    EXPECT_TRUE(FormBoundary(ct).status().IsInvalidArgument()) << ct;
  }
}

// A form as a browser sends it, with the things that make streaming hard: a preamble, transport
// padding, file bytes that almost form the delimiter, a field after the file and an epilogue.
std::string TrickyForm() {
  const std::string b(kBoundary);
  return FormBuilder()
             .Raw("This is the preamble, with --" + b + " not on a line of its own.\r\n")
             .Field("key", "user/user1/${filename}")
             .Raw("--" + b + " \t \r\n")
             .Raw("content-disposition: form-data; name=acl\r\n\r\npublic-read\r\n")
             .File("photo.jpg", "image/jpeg",
                   "\r\n--" + b.substr(0, b.size() - 1) + "\r\r\n--" + b.substr(0, 5) + "--" + b + "\n--" + b +
                       "\r\n-" + "\r\n--")
             .Field("after", "ignored")
             .Close() +
         "epilogue\r\n";
}

TEST(MultipartFormParserTest, ParsesFieldsThenStreamsTheFile) {
  const Outcome o =
      Parse(FormBuilder().Field("key", "a.txt").Field("acl", "private").File("a.txt", "text/plain", "hello").Close());
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.fields, (std::vector<std::pair<std::string, std::string>>{{"key", "a.txt"}, {"acl", "private"}}));
  EXPECT_EQ(o.file_begins, 1);
  EXPECT_EQ(o.filename, "a.txt");
  EXPECT_EQ(o.content_type, "text/plain");
  EXPECT_EQ(o.file, "hello");
  EXPECT_EQ(o.file_ends, 1);
  EXPECT_TRUE(o.file_seen);
}

TEST(MultipartFormParserTest, TrickyFormParsesAsIntended) {
  const std::string b(kBoundary);
  const Outcome o = Parse(TrickyForm());
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.fields, (std::vector<std::pair<std::string, std::string>>{{"key", "user/user1/${filename}"},
                                                                        {"acl", "public-read"}}));
  EXPECT_EQ(o.file, "\r\n--" + b.substr(0, b.size() - 1) + "\r\r\n--" + b.substr(0, 5) + "--" + b + "\n--" + b +
                        "\r\n-" + "\r\n--");
  EXPECT_EQ(o.file_ends, 1);
}

TEST(MultipartFormParserTest, SameOutcomeAtEverySplitPoint) {
  ExpectSplitInvariant(TrickyForm());
  ExpectSplitInvariant(FormBuilder().Field("a", "1").File("", "", "").Close());
}

TEST(MultipartFormParserTest, SameErrorAtEverySplitPoint) {
  const std::string b(kBoundary);
  ExpectSplitInvariant(FormBuilder().Field("a", "1").File("f", "t", "data\r\n--" + b.substr(0, 3)).Unclosed());
  ExpectSplitInvariant(FormBuilder().Field("a", "1").Raw("--" + b + "\r\nbad header\r\n\r\n").Close());
  ExpectSplitInvariant(FormBuilder().Field("a", "1234567890").Field("b", "12345").File("f", "t", "x").Close(),
                       FormLimits{.max_field_bytes = 10, .max_total_field_bytes = 14});
  ExpectSplitInvariant(FormBuilder().Field("a", "12345678901").File("f", "t", "x").Close(),
                       FormLimits{.max_field_bytes = 10, .max_total_field_bytes = 11});
}

TEST(MultipartFormParserTest, FileBytesAreHeldBackOnlyWhileTheyMayStartTheDelimiter) {
  const std::string b(kBoundary);
  const std::string delimiter = "\r\n--" + b;
  std::string delivered;
  MultipartFormParser parser(b, {}, {.on_file_data = [&](std::span<const std::byte> data) {
                               delivered.append(reinterpret_cast<const char*>(data.data()), data.size());
                               return Status::OK();
                             }});
  ASSERT_OK(parser.Feed(Bytes("--" + b + "\r\nContent-Disposition: form-data; name=file\r\n\r\n")));
  std::string sent;
  for (int i = 0; i < 100; ++i) {
    // Each piece ends with all but the last byte of the delimiter: that much must wait.
    const std::string piece =
        std::string(1000, static_cast<char>('a' + i % 26)) + delimiter.substr(0, i % delimiter.size());
    ASSERT_OK(parser.Feed(Bytes(piece)));
    sent += piece;
    ASSERT_EQ(delivered, sent.substr(0, sent.size() - i % delimiter.size())) << i;
  }
  ASSERT_OK(parser.Feed(Bytes("x" + delimiter + "--")));
  ASSERT_OK(parser.Finish());
  EXPECT_EQ(delivered, sent + "x");
}

TEST(MultipartFormParserTest, PartsAfterTheFileAreNotReportedNorParsed) {
  const std::string b(kBoundary);
  const Outcome o = Parse(FormBuilder()
                              .File("a", "t", "1")
                              .Field("key", "late")
                              .Raw("--" + b + "\r\nno colon here\r\n\r\n\r\n")
                              .Raw("--" + b + "-x\r\n")
                              .File("b", "t", "second file")
                              .Close());
  EXPECT_EQ(o.status, "OK");
  EXPECT_TRUE(o.fields.empty());
  EXPECT_EQ(o.file, "1");
  EXPECT_EQ(o.file_begins, 1);
  EXPECT_EQ(o.file_ends, 1);
}

TEST(MultipartFormParserTest, TheBodyMustEndWithTheClosingBoundary) {
  const std::string b(kBoundary);
  // Cut in the file, at the delimiter after it, and one '-' short of the close.
  for (const std::string& body : {FormBuilder().File("a", "t", "data").Unclosed().substr(0, 100),
                                  FormBuilder().File("a", "t", "data").Unclosed() + "--" + b,
                                  FormBuilder().File("a", "t", "data").Unclosed() + "--" + b + "-"}) {
    const Outcome o = Parse(body);
    EXPECT_TRUE(IsInvalidArgument(o)) << o;
  }
  const Outcome o = Parse(FormBuilder().File("a", "t", "data").Unclosed() + "--" + b);
  EXPECT_EQ(o.file_ends, 1) << "the file part itself was complete";
}

TEST(MultipartFormParserTest, AFormWithoutAFileFails) {
  const Outcome o = Parse(FormBuilder().Field("key", "k").Close());
  EXPECT_EQ(o.status, "InvalidArgument: the form has no file field");
  EXPECT_FALSE(o.file_seen);
}

TEST(MultipartFormParserTest, ABodyWithoutTheBoundaryFails) {
  EXPECT_TRUE(IsInvalidArgument(Parse("no boundary anywhere")));
  EXPECT_TRUE(IsInvalidArgument(Parse("")));
  EXPECT_TRUE(IsInvalidArgument(ParseInPieces(FormBuilder().File("a", "t", "x").Close(), {}, {}, "other")));
}

TEST(MultipartFormParserTest, FirstBoundaryMayOpenTheBodyOrFollowAPreamble) {
  const std::string form = FormBuilder().File("a", "t", "right").Close();
  EXPECT_EQ(Parse(form).file, "right");
  EXPECT_EQ(Parse("preamble\r\n" + form).file, "right");
  EXPECT_EQ(Parse("\r\n" + form).file, "right");
  // Without a CRLF before it, "--boundary" inside the preamble is not a delimiter.
  const Outcome o =
      Parse("x--" + std::string(kBoundary) + "\r\nContent-Disposition: form-data; name=file\r\n\r\nwrong\r\n" + form);
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.file, "right");
}

TEST(MultipartFormParserTest, TheFileFieldNameIgnoresCaseAndFilenameMayBeAbsent) {
  const Outcome o = Parse(FormBuilder().Part("Content-Disposition: form-data; name=\"FILE\"\r\n", "abc").Close());
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.file, "abc");
  EXPECT_EQ(o.filename, "");
  EXPECT_EQ(o.content_type, "");
}

TEST(MultipartFormParserTest, HeaderNamesAndParameterNamesIgnoreCase) {
  const Outcome o =
      Parse(FormBuilder()
                .Part("CONTENT-DISPOSITION: Form-Data; NAME=\"Key\"\r\nX-Other: 1\r\n", "k")
                .Part("content-disposition:form-data;name=file;FileName=a.bin\r\nCONTENT-TYPE:  b/c \r\n", "")
                .Close());
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.fields, (std::vector<std::pair<std::string, std::string>>{{"Key", "k"}}));
  EXPECT_EQ(o.filename, "a.bin");
  EXPECT_EQ(o.content_type, "b/c");
}

TEST(MultipartFormParserTest, ParameterValuesQuotedEscapedOrTokens) {
  const Outcome o =
      Parse(FormBuilder()
                .Part("Content-Disposition: form-data; name=\"a\\\"b;c\"\r\n", "1")
                .Part("Content-Disposition: form-data; name=plain\r\n", "2")
                .Part("Content-Disposition: form-data; name=\"file\"; filename=\"C:\\dir\\x \\\\ y.txt\"\r\n", "")
                .Close());
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.fields, (std::vector<std::pair<std::string, std::string>>{{"a\"b;c", "1"}, {"plain", "2"}}));
  // A backslash escapes only '"' and '\': Windows paths arrive intact.
  EXPECT_EQ(o.filename, "C:\\dir\\x \\ y.txt");
}

TEST(MultipartFormParserTest, FoldedHeaderLinesContinueTheirHeader) {
  const Outcome o = Parse(FormBuilder().Part("Content-Disposition: form-data;\r\n name=\"file\"\r\n", "x").Close());
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.file, "x");
}

TEST(MultipartFormParserTest, MalformedBodies) {
  const std::string b(kBoundary);
  const std::string file = FormBuilder().File("a", "t", "x").Close();
  for (const std::string& body : {
           FormBuilder().Part("Content-Type: text/plain\r\n", "no disposition").Close(),
           FormBuilder().Part("Content-Disposition: form-data\r\n", "no name").Close(),
           FormBuilder().Part("Content-Disposition: form-data; name=\"\"\r\n", "empty name").Close(),
           FormBuilder().Part("Content-Disposition: attachment; name=\"a\"\r\n", "not form-data").Close(),
           FormBuilder().Part("Content-Disposition: form-data; name=\"a\"; name=\"b\"\r\n", "two names").Close(),
           FormBuilder().Part("Content-Disposition: form-data; name=\"a\r\n", "unterminated").Close(),
           FormBuilder()
               .Part("Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n", "")
               .Close(),
           FormBuilder().Part("no colon\r\n", "").Close(),
           FormBuilder().Part(" Content-Disposition: form-data; name=a\r\n", "fold first").Close(),
           FormBuilder().Part("Content-Disposition: form-data; name=a\n", "bare LF").Close(),
           FormBuilder().Part("Content-Disposition: form-data; name=a\rX\r\n", "bare CR").Close(),
           "--" + b + "x\r\n" + file,     // text after the boundary
           "--" + b + "-x\r\n" + file,    // one dash
           "--" + b + " \rx\r\n" + file,  // CR without LF
       }) {
    const Outcome o = Parse(body);
    EXPECT_TRUE(IsInvalidArgument(o)) << o << " for " << body;
  }
}

TEST(MultipartFormParserTest, TransportPaddingAfterAnyBoundary) {
  const std::string b(kBoundary);
  const Outcome o = Parse("--" + b + "\t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--" + b +
                          "   \r\nContent-Disposition: form-data; name=file\r\n\r\nx\r\n--" + b + "--");
  EXPECT_EQ(o.status, "OK");
  EXPECT_EQ(o.fields, (std::vector<std::pair<std::string, std::string>>{{"a", "1"}}));
}

TEST(MultipartFormParserTest, FieldValueLimit) {
  const FormLimits limits{.max_field_bytes = 5};
  EXPECT_EQ(Parse(FormBuilder().Field("a", "12345").File("f", "t", "x").Close(), limits).status, "OK");
  EXPECT_EQ(Parse(FormBuilder().Field("a", "123456").File("f", "t", "x").Close(), limits).status,
            "InvalidArgument: form field 'a' is longer than 5 bytes");
  // The file is not a field: it may be as long as it likes.
  EXPECT_EQ(Parse(FormBuilder().File("f", "t", std::string(100, 'x')).Close(), limits).status, "OK");
}

TEST(MultipartFormParserTest, TotalFieldLimitCountsNamesAndValues) {
  const FormLimits limits{.max_total_field_bytes = 8};
  EXPECT_EQ(Parse(FormBuilder().Field("ab", "12").Field("cd", "34").File("f", "t", "x").Close(), limits).status, "OK");
  EXPECT_EQ(Parse(FormBuilder().Field("ab", "12").Field("cd", "345").File("f", "t", "x").Close(), limits).status,
            "InvalidArgument: the form fields hold more than 8 bytes");
  EXPECT_EQ(Parse(FormBuilder().Field("ab", "12").Field("cdefg", "").File("f", "t", "x").Close(), limits).status,
            "InvalidArgument: the form fields hold more than 8 bytes");
}

TEST(MultipartFormParserTest, FieldCountLimit) {
  const FormLimits limits{.max_fields = 2};
  EXPECT_EQ(Parse(FormBuilder().Field("a", "").Field("b", "").File("f", "t", "x").Close(), limits).status, "OK");
  EXPECT_EQ(
      Parse(FormBuilder().Field("a", "").Field("b", "").Field("c", "").File("f", "t", "x").Close(), limits).status,
      "InvalidArgument: the form has more than 2 fields");
}

TEST(MultipartFormParserTest, PartHeaderLimit) {
  const std::string headers = "Content-Disposition: form-data; name=file\r\n";  // 43 bytes, + 2 for the blank line
  EXPECT_EQ(Parse(FormBuilder().Part(headers, "x").Close(), {.max_part_header_bytes = 45}).status, "OK");
  EXPECT_EQ(Parse(FormBuilder().Part(headers, "x").Close(), {.max_part_header_bytes = 44}).status,
            "InvalidArgument: a form part's headers are longer than 44 bytes");
}

TEST(MultipartFormParserTest, ABoundaryFormBoundaryWouldRefuseFailsEveryCall) {
  for (const std::string& boundary : {std::string(), std::string("a\r\nb"), std::string(71, 'a')}) {
    MultipartFormParser parser(boundary, {}, {});
    EXPECT_TRUE(parser.Feed(Bytes("--" + boundary + "--")).IsInvalidArgument());
    EXPECT_TRUE(parser.Finish().IsInvalidArgument());
  }
}

TEST(MultipartFormParserTest, ACallbackErrorStopsTheParserForGood) {
  MultipartFormParser parser(std::string(kBoundary), {},
                             {.on_field = [](std::string, std::string) { return Status::AccessDenied("no"); }});
  const std::string body = FormBuilder().Field("a", "1").File("f", "t", "x").Close();
  EXPECT_TRUE(parser.Feed(Bytes(body)).IsAccessDenied());
  EXPECT_TRUE(parser.Feed(Bytes("more")).IsAccessDenied());
  EXPECT_TRUE(parser.Finish().IsAccessDenied());
}

// ---- POST policy ----------------------------------------------------------------------------------

// The example policy of the AWS documentation ("Example: Browser-Based Upload using HTTP POST
// (Using AWS Signature Version 4)"), with the content-length-range condition from "Creating a
// POST Policy" added.
constexpr std::string_view kExamplePolicy = R"({ "expiration": "2015-12-30T12:00:00.000Z",
  "conditions": [
    {"bucket": "sigv4examplebucket"},
    ["starts-with", "$key", "user/user1/"],
    {"acl": "public-read"},
    {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
    ["starts-with", "$Content-Type", "image/"],
    {"x-amz-meta-uuid": "14365123651274"},
    {"x-amz-server-side-encryption": "AES256"},
    ["starts-with", "$x-amz-meta-tag", ""],
    ["content-length-range", 1048576, 10485760],
    {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
    {"x-amz-date": "20151229T000000Z" }
  ]
})";
constexpr int64_t kExampleExpirationMs = 1451476800000;  // 2015-12-30T12:00:00Z

// The fields of a form that satisfies the example policy.
std::map<std::string, std::string> ExampleFields() {
  return {
      {"bucket", "sigv4examplebucket"},
      {"key", "user/user1/photo.jpg"},
      {"acl", "public-read"},
      {"success_action_redirect", "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
      {"content-type", "image/jpeg"},
      {"x-amz-meta-uuid", "14365123651274"},
      {"x-amz-server-side-encryption", "AES256"},
      {"x-amz-meta-tag", ""},
      {"x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
      {"x-amz-algorithm", "AWS4-HMAC-SHA256"},
      {"x-amz-date", "20151229T000000Z"},
      {"policy", Base64(kExamplePolicy)},
      {"x-amz-signature", std::string(64, '0')},
  };
}

PostPolicy ExamplePolicy() {
  auto p = ParsePostPolicy(Base64(kExamplePolicy));
  EXPECT_OK(p);
  return p.ok() ? *p : PostPolicy{};
}

Result<PostPolicy> ParseJson(std::string_view json) { return ParsePostPolicy(Base64(json)); }

using Kind = PostPolicyCondition::Kind;

TEST(PostPolicyTest, ParsesTheAwsExample) {
  const PostPolicy p = ExamplePolicy();
  EXPECT_EQ(p.expiration_unix_ms, kExampleExpirationMs);
  ASSERT_EQ(p.conditions.size(), 12u);
  EXPECT_EQ(p.conditions[0].kind, Kind::kEquals);
  EXPECT_EQ(p.conditions[0].field, "bucket");
  EXPECT_EQ(p.conditions[0].value, "sigv4examplebucket");
  EXPECT_EQ(p.conditions[1].kind, Kind::kStartsWith);
  EXPECT_EQ(p.conditions[1].field, "key");
  EXPECT_EQ(p.conditions[1].value, "user/user1/");
  EXPECT_EQ(p.conditions[4].field, "content-type");  // "$Content-Type", lowercased
  EXPECT_EQ(p.conditions[4].value, "image/");
  EXPECT_EQ(p.conditions[7].value, "");
  EXPECT_EQ(p.conditions[8].kind, Kind::kContentLengthRange);
  EXPECT_EQ(p.conditions[8].field, "");
  EXPECT_EQ(p.conditions[8].min, 1048576u);
  EXPECT_EQ(p.conditions[8].max, 10485760u);
  EXPECT_EQ(p.conditions[9].field, "x-amz-credential");
  EXPECT_EQ(p.conditions[9].value, "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request");
  EXPECT_EQ(ContentLengthRange(p), std::make_pair(uint64_t{1048576}, uint64_t{10485760}));
}

TEST(PostPolicyTest, ExpirationForms) {
  auto a = ParseJson(R"({"expiration": "2026-11-22T12:00:00Z", "conditions": []})");
  ASSERT_OK(a);
  EXPECT_EQ(a->expiration_unix_ms, 1795348800000);
  auto b = ParseJson(R"({"expiration": "2026-11-22T12:00:00.250Z", "conditions": []})");
  ASSERT_OK(b);
  EXPECT_EQ(b->expiration_unix_ms, 1795348800250);
  auto c = ParseJson(R"({"expiration": "2024-02-29T23:59:59.5Z", "conditions": []})");
  ASSERT_OK(c);
  EXPECT_EQ(c->expiration_unix_ms, 1709251199500);
}

TEST(PostPolicyTest, OperatorsIgnoreCaseAndBoundsMayBeStrings) {
  auto p = ParseJson(R"({"expiration": "2026-11-22T12:00:00Z", "conditions": [
      ["EQ", "$Key", "a"], ["Starts-With", "$acl", ""], ["content-length-range", "0", "100"],
      ["content-length-range", 5, "7"]]})");
  ASSERT_OK(p);
  ASSERT_EQ(p->conditions.size(), 4u);
  EXPECT_EQ(p->conditions[0].kind, Kind::kEquals);
  EXPECT_EQ(p->conditions[0].field, "key");
  EXPECT_EQ(p->conditions[0].value, "a");
  EXPECT_EQ(p->conditions[1].kind, Kind::kStartsWith);
  EXPECT_EQ(p->conditions[2].max, 100u);
  EXPECT_EQ(ContentLengthRange(*p), std::make_pair(uint64_t{5}, uint64_t{7})) << "the last range wins";
  EXPECT_EQ(ContentLengthRange(PostPolicy{}), std::nullopt);
}

TEST(PostPolicyTest, WhitespaceInTheBase64IsIgnored) {
  std::string wrapped = Base64(kExamplePolicy);
  for (size_t i = 60; i < wrapped.size(); i += 61) wrapped.insert(i, "\n");
  EXPECT_OK(ParsePostPolicy(wrapped));
}

TEST(PostPolicyTest, MalformedPolicies) {
  EXPECT_TRUE(ParsePostPolicy("not base64!").status().IsInvalidPolicyDocument());
  EXPECT_TRUE(ParsePostPolicy("abc").status().IsInvalidPolicyDocument());
  constexpr std::string_view kExp = R"("expiration": "2026-11-22T12:00:00.000Z")";
  const std::string with_exp = "{" + std::string(kExp) + ", \"conditions\": ";
  for (const std::string& json : {
           std::string("not json"),
           std::string("[]"),
           std::string(R"({"conditions": []})"),
           std::string(R"({"expiration": 12, "conditions": []})"),
           std::string(R"({"expiration": "2026-11-22", "conditions": []})"),
           std::string(R"({"expiration": "2026-11-22T12:00:00", "conditions": []})"),
           std::string(R"({"expiration": "2026-11-22 12:00:00Z", "conditions": []})"),
           std::string(R"({"expiration": "2026-02-29T12:00:00Z", "conditions": []})"),
           std::string(R"({"expiration": "2026-13-01T12:00:00Z", "conditions": []})"),
           std::string(R"({"expiration": "2026-11-22T24:00:00Z", "conditions": []})"),
           std::string(R"({"expiration": "2026-11-22T12:00:00.Z", "conditions": []})"),
           std::string(R"({"expiration": "2026-11-22T12:00:00+01:00", "conditions": []})"),
           "{" + std::string(kExp) + "}",
           with_exp + "{}}",
           with_exp + "[\"eq\"]}",
           with_exp + "[12]}",
           with_exp + "[[\"eq\", \"$key\"]]}",
           with_exp + "[[\"eq\", \"$key\", \"a\", \"b\"]]}",
           with_exp + "[[\"eq\", \"key\", \"a\"]]}",
           with_exp + "[[\"eq\", \"$\", \"a\"]]}",
           with_exp + "[[\"eq\", \"$key\", 5]]}",
           with_exp + "[[\"eq\", 5, \"a\"]]}",
           with_exp + "[[\"in\", \"$key\", \"a\"]]}",
           with_exp + "[[5, \"$key\", \"a\"]]}",
           with_exp + "[{}]}",
           with_exp + "[{\"a\": \"1\", \"b\": \"2\"}]}",
           with_exp + "[{\"a\": 1}]}",
           with_exp + "[{\"\": \"1\"}]}",
           with_exp + "[\"bucket\"]}",
           with_exp + "[[\"content-length-range\", -1, 10]]}",
           with_exp + "[[\"content-length-range\", 1.5, 10]]}",
           with_exp + "[[\"content-length-range\", \"1k\", 10]]}",
           with_exp + "[[\"content-length-range\", 10, 1]]}",
           with_exp + "[[\"content-length-range\", 1]]}",
       }) {
    const auto p = ParseJson(json);
    EXPECT_TRUE(p.status().IsInvalidPolicyDocument()) << json << " -> " << p.status();
  }
  EXPECT_EQ(ParseJson(with_exp + "[[\"in\", \"$key\", \"a\"]]}").status().message(),
            "Invalid Policy: unknown condition operator 'in'");
}

TEST(CheckPostPolicyTest, TheExampleFormPasses) { EXPECT_OK(CheckPostPolicy(ExamplePolicy(), ExampleFields(), 0)); }

TEST(CheckPostPolicyTest, ExpiredAfterTheExpirationInstant) {
  EXPECT_OK(CheckPostPolicy(ExamplePolicy(), ExampleFields(), kExampleExpirationMs));
  const Status s = CheckPostPolicy(ExamplePolicy(), ExampleFields(), kExampleExpirationMs + 1);
  EXPECT_TRUE(s.IsAccessDenied());
  EXPECT_EQ(s.message(), "Invalid according to Policy: Policy expired.");
}

// The policy's conditions, one at a time.
PostPolicy PolicyOf(std::string_view conditions) {
  auto p = ParseJson(R"({"expiration": "2026-11-22T12:00:00Z", "conditions": )" + std::string(conditions) + "}");
  EXPECT_OK(p);
  return p.ok() ? *p : PostPolicy{};
}

std::string CheckMessage(std::string_view conditions, const std::map<std::string, std::string>& fields) {
  const Status s = CheckPostPolicy(PolicyOf(conditions), fields, 0);
  if (s.ok()) return "OK";
  EXPECT_TRUE(s.IsAccessDenied()) << s;
  return s.message();
}

TEST(CheckPostPolicyTest, Equals) {
  EXPECT_EQ(CheckMessage(R"([["eq", "$key", "x"]])", {{"key", "x"}}), "OK");
  EXPECT_EQ(CheckMessage(R"([["eq", "$key", "x"]])", {{"key", "X"}}),
            R"(Invalid according to Policy: Policy Condition failed: ["eq", "$key", "x"])");
  EXPECT_EQ(CheckMessage(R"([["eq", "$key", "x"]])", {}),
            R"(Invalid according to Policy: Policy Condition failed: ["eq", "$key", "x"])");
  EXPECT_EQ(CheckMessage(R"([{"bucket": "b"}])", {{"bucket", "b"}}), "OK");
  EXPECT_EQ(CheckMessage(R"([{"Bucket": "b"}])", {{"bucket", "c"}}),
            R"(Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "b"])");
  EXPECT_EQ(CheckMessage(R"([["eq", "$KEY", ""]])", {}), "OK") << "an absent field reads as empty";
}

TEST(CheckPostPolicyTest, StartsWith) {
  EXPECT_EQ(CheckMessage(R"([["starts-with", "$key", "user/"]])", {{"key", "user/a"}}), "OK");
  EXPECT_EQ(CheckMessage(R"([["starts-with", "$key", "user/"]])", {{"key", "User/a"}}),
            R"(Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/"])");
  EXPECT_EQ(CheckMessage(R"([["starts-with", "$key", ""]])", {{"key", "anything"}}), "OK");
  EXPECT_EQ(CheckMessage(R"([["starts-with", "$x-amz-meta-tag", ""]])", {}), "OK");
}

TEST(CheckPostPolicyTest, StartsWithOnContentTypeChecksEachType) {
  constexpr std::string_view kImages = R"([["starts-with", "$Content-Type", "image/"]])";
  EXPECT_EQ(CheckMessage(kImages, {{"content-type", "image/png"}}), "OK");
  EXPECT_EQ(CheckMessage(kImages, {{"content-type", "image/png, image/jpeg"}}), "OK");
  EXPECT_EQ(CheckMessage(kImages, {{"content-type", "image/png,text/plain"}}),
            R"(Invalid according to Policy: Policy Condition failed: ["starts-with", "$content-type", "image/"])");
  // Other fields are not split at commas.
  EXPECT_EQ(CheckMessage(R"([["starts-with", "$key", "a"]])", {{"key", "a,b"}}), "OK");
}

TEST(CheckPostPolicyTest, ContentLengthRangeIsLeftToTheCaller) {
  EXPECT_EQ(CheckMessage(R"([["content-length-range", 1, 2]])", {}), "OK");
}

TEST(CheckPostPolicyTest, EveryFieldMustBeNamedByACondition) {
  auto fields = ExampleFields();
  fields["foo"] = "1";
  const Status s = CheckPostPolicy(ExamplePolicy(), fields, 0);
  EXPECT_TRUE(s.IsAccessDenied());
  EXPECT_EQ(s.message(), "Invalid according to Policy: Extra input fields: foo");
  // The signing fields are not exempt: they must be in the policy.
  EXPECT_EQ(CheckMessage("[]", {{"x-amz-algorithm", "AWS4-HMAC-SHA256"}}),
            "Invalid according to Policy: Extra input fields: x-amz-algorithm");
  EXPECT_EQ(CheckMessage("[]", {{"bucket", "b"}}), "Invalid according to Policy: Extra input fields: bucket");
}

TEST(CheckPostPolicyTest, ExemptFields) {
  EXPECT_EQ(
      CheckMessage("[]",
                   {{"x-amz-signature", "s"}, {"file", ""}, {"policy", "p"}, {"x-ignore-me", "1"}, {"x-ignore-", ""}}),
      "OK");
  EXPECT_EQ(CheckMessage("[]", {{"x-ignor", "1"}}), "Invalid according to Policy: Extra input fields: x-ignor");
}

// ---- Signature --------------------------------------------------------------------------------------

constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// The SigV4 POST signature from the spec, without the library's helpers: HMAC chain
// "AWS4"+secret -> date -> region -> "s3" -> "aws4_request", then HMAC of the base64 policy.
std::string SpecSignature(std::string_view secret, std::string_view date, std::string_view region,
                          std::string_view policy_base64) {
  crypto::Sha256Digest key = crypto::HmacSha256("AWS4" + std::string(secret), date);
  key = crypto::HmacSha256(key, region);
  key = crypto::HmacSha256(key, "s3");
  key = crypto::HmacSha256(key, "aws4_request");
  return crypto::HexEncode(crypto::HmacSha256(key, policy_base64));
}

SecretLookup ExampleLookup() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return std::string(kSecret);
    return std::nullopt;
  };
}

std::map<std::string, std::string> SignedExampleFields() {
  auto fields = ExampleFields();
  fields["x-amz-signature"] = SpecSignature(kSecret, "20151229", "us-east-1", fields["policy"]);
  return fields;
}

TEST(VerifyPostSignatureTest, AcceptsTheSpecSignature) {
  auto sig = VerifyPostSignature(SignedExampleFields(), ExampleLookup(), "us-east-1");
  ASSERT_OK(sig);
  EXPECT_EQ(sig->access_key, kAccessKey);
}

TEST(VerifyPostSignatureTest, WrongSecret) {
  const SecretLookup other = [](std::string_view) -> std::optional<std::string> { return "another secret"; };
  EXPECT_TRUE(VerifyPostSignature(SignedExampleFields(), other, "us-east-1").status().IsSignatureDoesNotMatch());
}

TEST(VerifyPostSignatureTest, UnknownAccessKey) {
  const SecretLookup none = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_TRUE(VerifyPostSignature(SignedExampleFields(), none, "us-east-1").status().IsInvalidAccessKeyId());
}

TEST(VerifyPostSignatureTest, WrongRegion) {
  EXPECT_TRUE(VerifyPostSignature(SignedExampleFields(), ExampleLookup(), "eu-west-1")
                  .status()
                  .IsAuthorizationQueryMalformed());
  // Signed for another region and claiming it: the scope names the wrong region.
  auto fields = SignedExampleFields();
  fields["x-amz-credential"] = "AKIAIOSFODNN7EXAMPLE/20151229/eu-west-1/s3/aws4_request";
  fields["x-amz-signature"] = SpecSignature(kSecret, "20151229", "eu-west-1", fields["policy"]);
  EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsAuthorizationQueryMalformed());
  EXPECT_OK(VerifyPostSignature(fields, ExampleLookup(), "eu-west-1"));
}

TEST(VerifyPostSignatureTest, TamperedPolicyOrSignature) {
  auto fields = SignedExampleFields();
  fields["policy"] = Base64(std::string(kExamplePolicy) + " ");
  EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsSignatureDoesNotMatch());

  fields = SignedExampleFields();
  fields["x-amz-signature"][10] = fields["x-amz-signature"][10] == '0' ? '1' : '0';
  EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsSignatureDoesNotMatch());
}

TEST(VerifyPostSignatureTest, MissingSigningFields) {
  for (const char* name : {"policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"}) {
    auto fields = SignedExampleFields();
    fields.erase(name);
    EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsInvalidArgument()) << name;
  }
}

TEST(VerifyPostSignatureTest, MalformedSigningFields) {
  const std::pair<std::string, std::string> cases[] = {
      {"x-amz-algorithm", "AWS4-HMAC-SHA1"},
      {"x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3"},
      {"x-amz-credential", "/20151229/us-east-1/s3/aws4_request"},
      {"x-amz-credential", "AKIAIOSFODNN7EXAMPLE/2015122/us-east-1/s3/aws4_request"},
      {"x-amz-credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_reques"},
      {"x-amz-date", "2015-12-29T00:00:00Z"},
      {"x-amz-signature", "abc"},
      {"x-amz-signature", std::string(64, 'g')},
  };
  for (const auto& [name, value] : cases) {
    auto fields = SignedExampleFields();
    fields[name] = value;
    EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsInvalidArgument())
        << name << "=" << value;
  }
}

TEST(VerifyPostSignatureTest, ScopeMustMatchTheDateAndService) {
  auto fields = SignedExampleFields();
  fields["x-amz-date"] = "20151230T000000Z";
  EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsAuthorizationQueryMalformed());
  fields = SignedExampleFields();
  fields["x-amz-credential"] = "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/ec2/aws4_request";
  EXPECT_TRUE(VerifyPostSignature(fields, ExampleLookup(), "us-east-1").status().IsAuthorizationQueryMalformed());
}

// The whole flow on a form body: parse, fold field names, check the policy, verify the signature.
TEST(PostObjectFlowTest, ExampleFormEndToEnd) {
  FormBuilder form;
  auto expected = SignedExampleFields();
  for (const auto& [name, value] : expected) {
    if (name == "bucket") continue;  // from the request's host or path, not the form
    form.Field(name == "content-type" ? "Content-Type" : name, value);
  }
  const std::string body = form.File("photo.jpg", "image/jpeg", std::string(2000, 'p')).Close();

  std::map<std::string, std::string> fields{{"bucket", "sigv4examplebucket"}};
  uint64_t size = 0;
  MultipartFormParser parser(std::string(kBoundary), {},
                             {.on_field =
                                  [&](std::string name, std::string value) {
                                    std::string lower;
                                    for (char c : name) lower.push_back(static_cast<char>(std::tolower(c)));
                                    fields[lower] = std::move(value);
                                    return Status::OK();
                                  },
                              .on_file_data =
                                  [&](std::span<const std::byte> data) {
                                    size += data.size();
                                    return Status::OK();
                                  }});
  ASSERT_OK(parser.Feed(Bytes(body)));
  ASSERT_OK(parser.Finish());
  EXPECT_EQ(fields, expected);
  EXPECT_EQ(size, 2000u);

  auto sig = VerifyPostSignature(fields, ExampleLookup(), "us-east-1");
  ASSERT_OK(sig);
  auto policy = ParsePostPolicy(fields["policy"]);
  ASSERT_OK(policy);
  EXPECT_OK(CheckPostPolicy(*policy, fields, kExampleExpirationMs - 1000));
  const auto range = ContentLengthRange(*policy);
  ASSERT_TRUE(range.has_value());
  EXPECT_FALSE(size >= range->first && size <= range->second) << "2000 bytes is under the example's 1 MiB minimum";
}

}  // namespace
}  // namespace cairn::gateway
