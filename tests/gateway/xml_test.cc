// Tests for the gateway's XML writer, parser and S3 request documents. The parser tests include
// every truncation of valid bodies and seeded random garbage and mutations: each input must
// either parse or fail with MalformedXml, never crash or read out of bounds (run the sanitizer
// build to check the latter).
#include "gateway/xml.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace cairn::gateway {
namespace {

// ---- Writer ---------------------------------------------------------------------------------

TEST(XmlWriterTest, WritesAListingShapedDocument) {
  XmlWriter w;
  w.Declaration();
  w.Open("ListBucketResult", kS3XmlNamespace);
  w.Element("Name", "photos");
  w.Element("MaxKeys", 1000);
  w.Element("IsTruncated", false);
  w.Open("Contents");
  w.Element("Key", "a/b.jpg");
  w.Element("Size", uint64_t{5});
  w.Element("PartNumber", uint32_t{7});
  w.Close();
  w.Close();
  EXPECT_EQ(w.Take(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Name>photos</Name><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
            "<Contents><Key>a/b.jpg</Key><Size>5</Size><PartNumber>7</PartNumber></Contents></ListBucketResult>");
}

TEST(XmlWriterTest, TakeClosesWhatIsStillOpenAndEmptiesTheWriter) {
  XmlWriter w;
  w.Open("A");
  w.Open("B");
  EXPECT_EQ(w.depth(), 2u);
  EXPECT_EQ(w.Take(), "<A><B></B></A>");
  EXPECT_EQ(w.depth(), 0u);
  EXPECT_EQ(w.Take(), "");
}

TEST(XmlWriterTest, EscapesTheFiveMarkupCharacters) {
  EXPECT_EQ(XmlEscape(R"(a&b<c>d"e'f)"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(XmlEscape("]]>"), "]]&gt;");
  EXPECT_EQ(XmlEscape("&amp;"), "&amp;amp;");
}

TEST(XmlWriterTest, WritesTabLineFeedAndCarriageReturnAsReferences) {
  EXPECT_EQ(XmlEscape("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
}

TEST(XmlWriterTest, WritesCharactersXml10ForbidsAsReferencesLikeS3) {
  EXPECT_EQ(XmlEscape(std::string("k\x01y", 3)), "k&#1;y");
  EXPECT_EQ(XmlEscape(std::string("\x00", 1)), "&#0;");
  EXPECT_EQ(XmlEscape("\x1f"), "&#31;");
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBE"), "&#65534;");  // U+FFFE
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBF"), "&#65535;");  // U+FFFF
}

TEST(XmlWriterTest, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(XmlEscape("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(XmlEscape("\x7f"), "\x7f");  // DEL is an XML 1.0 character
  EXPECT_EQ(XmlEscape("a\xFFz"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(XmlEscape("\xC3"), "\xEF\xBF\xBD");                                  // truncated sequence
  EXPECT_EQ(XmlEscape("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(XmlEscape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
}

TEST(XmlWriterTest, WritesAttributesInOrderEscaped) {
  XmlWriter w;
  w.Open("A");
  w.OpenWithAttributes("Grantee", {{"xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"}, {"xsi:type", "a\"<&"}});
  w.Element("ID", "x");
  w.Close();
  w.OpenWithAttributes("B", {});
  EXPECT_EQ(w.Take(),
            "<A><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"a&quot;&lt;&amp;\">"
            "<ID>x</ID></Grantee><B></B></A>");
}

TEST(XmlWriterTest, EscapesTheNamespaceAttribute) {
  XmlWriter w;
  w.Open("A", "x\"y");
  EXPECT_EQ(w.Take(), "<A xmlns=\"x&quot;y\"></A>");
}

// Every key the writer emits reads back unchanged, control characters included.
TEST(XmlWriterTest, EveryControlCharacterRoundTripsThroughTheParser) {
  std::string key;
  for (int c = 1; c < 0x80; ++c) key.push_back(static_cast<char>(c));
  key += "\xC3\xA9\xEF\xBF\xBE\xF0\x9F\x98\x80\r\n\r";
  XmlWriter w;
  w.Element("Key", key);
  Result<XmlNode> node = ParseXml(w.Take());
  ASSERT_OK(node);
  EXPECT_EQ(node->text, key);
}

// ---- Parser: valid documents ------------------------------------------------------------------

// The shapes of the examples in the S3 API reference for CompleteMultipartUpload.
constexpr std::string_view kCompleteBody = R"(<CompleteMultipartUpload>
  <Part>
    <PartNumber>1</PartNumber>
    <ETag>"a54357aff0632cce46d942af68356b38"</ETag>
  </Part>
  <Part>
    <PartNumber>2</PartNumber>
    <ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag>
  </Part>
  <Part>
    <PartNumber>3</PartNumber>
    <ETag>"acbd18db4cc2f85cedef654fccc4a4d8"</ETag>
  </Part>
</CompleteMultipartUpload>
)";

// ... and for DeleteObjects, with the declaration and namespace SDKs send.
constexpr std::string_view kDeleteBody = R"(<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Quiet>true</Quiet>
    <Object>
         <Key>sample1.txt</Key>
    </Object>
    <Object>
         <Key>sample2.txt</Key>
         <VersionId>OYcLXagmS.WaD..oyH4KRguB95_YhLs7</VersionId>
    </Object>
</Delete>)";

TEST(XmlParserTest, BuildsTheTree) {
  Result<XmlNode> root = ParseXml(kCompleteBody);
  ASSERT_OK(root);
  EXPECT_EQ(root->name, "CompleteMultipartUpload");
  ASSERT_EQ(root->children.size(), 3u);
  const XmlNode* number = root->children[1].Child("PartNumber");
  ASSERT_NE(number, nullptr);
  EXPECT_EQ(number->text, "2");
  EXPECT_EQ(root->children[2].Child("ETag")->text, "\"acbd18db4cc2f85cedef654fccc4a4d8\"");
  EXPECT_EQ(root->Child("Missing"), nullptr);
}

TEST(XmlParserTest, DropsNamespacePrefixes) {
  Result<XmlNode> root = ParseXml(
      "<s3:Delete xmlns:s3='http://s3.amazonaws.com/doc/2006-03-01/' a = \"1\"><s3:Object>"
      "<s3:Key b='&amp;&#65;'>k</s3:Key></s3:Object></s3:Delete>");
  ASSERT_OK(root);
  EXPECT_EQ(root->name, "Delete");
  EXPECT_EQ(root->children.at(0).Child("Key")->text, "k");
}

TEST(XmlParserTest, KeepsAttributesByLocalNameWithoutNamespaceDeclarations) {
  Result<XmlNode> root = ParseXml(
      "<R xmlns='urn:x' xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\" "
      "b='&amp;&#65;&#10;' c=\"a\tb\r\nc\nd\"><E a=''/></R>");
  ASSERT_OK(root);
  EXPECT_EQ(root->attributes,
            (std::vector<std::pair<std::string, std::string>>{{"type", "Group"}, {"b", "&A\n"}, {"c", "a b c d"}}));
  ASSERT_NE(root->Attribute("type"), nullptr);
  EXPECT_EQ(*root->Attribute("type"), "Group");
  EXPECT_EQ(root->Attribute("xsi"), nullptr);
  EXPECT_EQ(root->Attribute("xmlns"), nullptr);
  EXPECT_EQ(root->Attribute("missing"), nullptr);
  ASSERT_NE(root->children.at(0).Attribute("a"), nullptr);
  EXPECT_EQ(*root->children.at(0).Attribute("a"), "");
}

TEST(XmlParserTest, DecodesEntityAndCharacterReferences) {
  Result<XmlNode> root = ParseXml("<K>&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&#x1F600;&#233;&#13;&#x1;</K>");
  ASSERT_OK(root);
  EXPECT_EQ(root->text, "&<>\"'AB\xF0\x9F\x98\x80\xC3\xA9\r\x01");
}

TEST(XmlParserTest, NormalisesLineEnds) {
  Result<XmlNode> root = ParseXml("<K>a\r\nb\rc\nd</K>");
  ASSERT_OK(root);
  EXPECT_EQ(root->text, "a\nb\nc\nd");
}

TEST(XmlParserTest, AcceptsCommentsCdataEmptyElementsAndABom) {
  Result<XmlNode> root = ParseXml(
      "\xEF\xBB\xBF<?xml version=\"1.0\"?><!-- before --><R><!-- in --><E/><T><![CDATA[<&>]]></T>"
      "<E2 a='1' /></R><!-- after -->\n");
  ASSERT_OK(root);
  ASSERT_EQ(root->children.size(), 3u);
  EXPECT_EQ(root->children[0].name, "E");
  EXPECT_EQ(root->children[1].text, "<&>");
  EXPECT_EQ(root->children[2].name, "E2");
}

TEST(XmlParserTest, KeepsTextWhitespace) {
  Result<XmlNode> root = ParseXml("<K>  two spaces  </K>");
  ASSERT_OK(root);
  EXPECT_EQ(root->text, "  two spaces  ");
}

TEST(XmlParserTest, AcceptsTheDepthLimitExactly) {
  XmlLimits limits;
  limits.max_depth = 32;
  std::string doc;
  for (int i = 0; i < 32; ++i) doc += "<a>";
  for (int i = 0; i < 32; ++i) doc += "</a>";
  EXPECT_OK(ParseXml(doc, limits));
  EXPECT_TRUE(ParseXml("<a>" + doc + "</a>", limits).status().IsMalformedXml());
}

TEST(XmlParserTest, AcceptsTheElementLimitExactly) {
  XmlLimits limits;
  limits.max_elements = 100;
  std::string doc = "<r>";
  for (int i = 0; i < 99; ++i) doc += "<e/>";
  EXPECT_OK(ParseXml(doc + "</r>", limits));
  EXPECT_TRUE(ParseXml(doc + "<e/></r>", limits).status().IsMalformedXml());
}

// ---- Parser: malformed documents --------------------------------------------------------------

class MalformedXmlTest : public testing::TestWithParam<std::string_view> {};

TEST_P(MalformedXmlTest, FailsWithMalformedXml) {
  Result<XmlNode> root = ParseXml(GetParam());
  ASSERT_FALSE(root.ok()) << GetParam();
  EXPECT_TRUE(root.status().IsMalformedXml()) << root.status();
}

INSTANTIATE_TEST_SUITE_P(Inputs, MalformedXmlTest,
                         testing::Values(
                             // structure
                             "", " \n ", "text", "<a>", "<a><b></b>", "<a></b>", "<a><b></a></b>", "</a>",
                             "<a></a><b></b>", "<a/>x", "x<a/>", "<a></a >junk", "<a", "<a ", "<a/", "<a></a",
                             "< a></a>", "<1a></1a>", "<a></A>", "<a:b></b>", "<a:></a:>", "<a>]]></a>",
                             // attributes
                             "<a b></a>", "<a b=1></a>", "<a b='1></a>", "<a b='<'></a>", "<a b='1'c='2'></a>",
                             "<a b='&bad;'></a>",
                             // entity and character references
                             "<a>&</a>", "<a>&amp</a>", "<a>&foo;</a>", "<a>&AMP;</a>", "<a>&#;</a>", "<a>&#x;</a>",
                             "<a>&#xZZ;</a>", "<a>&#12a;</a>", "<a>&#0;</a>", "<a>&#x0;</a>", "<a>&#xD800;</a>",
                             "<a>&#xDFFF;</a>", "<a>&#x110000;</a>", "<a>&#99999999999999999999;</a>", "<a>&#X41;</a>",
                             // declarations, processing instructions, comments
                             "<!DOCTYPE a><a/>", "<a><!DOCTYPE b></a>", "<?pi x?><a/>", "<a><?pi?></a>",
                             " <?xml version='1.0'?><a/>", "<a/><?xml version='1.0'?>", "<?xml version='1.0'",
                             "<!-- x --", "<a><!-- a -- b --></a>", "<!-- x -->", "<![CDATA[x]]><a/>",
                             "<a><![CDATA[x</a>",
                             // characters
                             std::string_view("<a>\x01</a>", 8), std::string_view("<a>\0</a>", 8), "<a>\xFF</a>",
                             "<a>\xC3</a>", "<a>\xED\xA0\x80</a>", "<a>\xEF\xBF\xBE</a>"));

TEST(XmlParserTest, RejectsNestingBeyondTheLimitQuickly) {
  std::string doc;
  for (int i = 0; i < 200000; ++i) doc += "<a>";
  EXPECT_TRUE(ParseXml(doc).status().IsMalformedXml());
}

TEST(XmlParserTest, RejectsHugeElementCounts) {
  std::string doc = "<r>";
  for (int i = 0; i < 200000; ++i) doc += "<e/>";
  doc += "</r>";
  EXPECT_TRUE(ParseXml(doc).status().IsMalformedXml());
}

// Inputs shaped to make a careless parser quadratic; each is a few MiB and must finish quickly
// (the ctest timeout would catch a quadratic parser).
TEST(XmlParserTest, AdversarialInputsAreLinear) {
  const size_t n = 1 << 20;
  std::string many_refs = "<a>";
  for (size_t i = 0; i < n / 5; ++i) many_refs += "&amp;";
  EXPECT_OK(ParseXml(many_refs + "</a>"));

  std::string comments = "<a>";
  for (size_t i = 0; i < n / 7; ++i) comments += "<!---->";
  EXPECT_OK(ParseXml(comments + "</a>"));

  std::string attrs = "<a";
  for (size_t i = 0; i < n / 8; ++i) attrs += " b='&lt;'";
  EXPECT_OK(ParseXml(attrs + "/>"));

  EXPECT_TRUE(ParseXml("<a>" + std::string(n, '-') + "<!--" + std::string(n, '-')).status().IsMalformedXml());
  EXPECT_TRUE(ParseXml("<a>" + std::string(n, ']')).status().IsMalformedXml());
  EXPECT_TRUE(ParseXml("<a><![CDATA[" + std::string(n, ']')).status().IsMalformedXml());
  EXPECT_TRUE(ParseXml("<a>&#" + std::string(n, '0')).status().IsMalformedXml());
}

// ---- Robustness: truncation and garbage -------------------------------------------------------

void ExpectParsesOrMalformed(std::string_view input) {
  Result<XmlNode> root = ParseXml(input);
  if (!root.ok()) {
    EXPECT_TRUE(root.status().IsMalformedXml()) << root.status();
  }
  for (const auto& parse : {+[](std::string_view s) { return test::ToStatus(ParseCompleteMultipartUpload(s)); },
                            +[](std::string_view s) { return test::ToStatus(ParseDeleteRequest(s)); },
                            +[](std::string_view s) { return test::ToStatus(ParseCreateBucketConfiguration(s)); }}) {
    const Status s = parse(input);
    EXPECT_TRUE(s.ok() || s.IsMalformedXml() || s.IsInvalidArgument()) << s;
  }
}

TEST(XmlRobustnessTest, EveryTruncationOfAValidBodyFailsCleanly) {
  const std::string create =
      "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
  for (const std::string_view body : {kCompleteBody, kDeleteBody, std::string_view(create)}) {
    ASSERT_OK(ParseXml(body));
    size_t accepted = 0;
    for (size_t len = 0; len < body.size(); ++len) {
      // Copied so that a read past the end of the prefix hits the end of an allocation.
      const std::string prefix(body.substr(0, len));
      Result<XmlNode> root = ParseXml(prefix);
      if (root.ok()) {
        ++accepted;
      } else {
        EXPECT_TRUE(root.status().IsMalformedXml()) << root.status();
      }
      ExpectParsesOrMalformed(prefix);
    }
    // Only prefixes that end after the root's end tag (trailing whitespace cut) can parse.
    EXPECT_LE(accepted, 1u);
  }
}

TEST(XmlRobustnessTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 3000; ++i) {
    std::string garbage(rng() % 200, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    ExpectParsesOrMalformed(garbage);
  }
}

// Mutations of valid bodies reach deeper into the parser than uniform garbage does.
TEST(XmlRobustnessTest, MutatedBodiesNeverCrash) {
  static constexpr std::string_view kAlphabet =
      "<>/&;#x!-[]?='\" \r\n\x01\xC3\xA9\xFF"
      "aZ0:";
  std::mt19937 rng(7);
  for (const std::string_view body : {kCompleteBody, kDeleteBody}) {
    for (int i = 0; i < 4000; ++i) {
      std::string m(body);
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const size_t at = rng() % m.size();
        const char c = kAlphabet[rng() % kAlphabet.size()];
        switch (rng() % 3) {
          case 0:
            m[at] = c;
            break;
          case 1:
            m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          default:
            m.erase(at, 1 + rng() % 8);
            break;
        }
      }
      ExpectParsesOrMalformed(m);
    }
  }
}

// ---- CompleteMultipartUpload ------------------------------------------------------------------

TEST(CompleteMultipartUploadTest, ParsesTheDocumentationExample) {
  Result<std::vector<CompletedPart>> parts = ParseCompleteMultipartUpload(kCompleteBody);
  ASSERT_OK(parts);
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].part_number, 1u);
  EXPECT_EQ((*parts)[0].etag, "\"a54357aff0632cce46d942af68356b38\"");
  EXPECT_EQ((*parts)[2].part_number, 3u);
}

TEST(CompleteMultipartUploadTest, KeepsDocumentOrderAndIgnoresUnknownFields) {
  Result<std::vector<CompletedPart>> parts = ParseCompleteMultipartUpload(
      "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Part><ETag>e7</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32><PartNumber> 7 </PartNumber></Part>"
      "<Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>"
      "<Part><PartNumber>10000</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>");
  ASSERT_OK(parts);
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].part_number, 7u);
  EXPECT_EQ((*parts)[0].etag, "e7");
  EXPECT_EQ((*parts)[1].part_number, 2u);
  EXPECT_EQ((*parts)[1].etag, "\"e2\"");
  EXPECT_EQ((*parts)[2].part_number, 10000u);
}

std::string OnePart(std::string_view number, std::string_view etag = "<ETag>e</ETag>") {
  return "<CompleteMultipartUpload><Part><PartNumber>" + std::string(number) + "</PartNumber>" + std::string(etag) +
         "</Part></CompleteMultipartUpload>";
}

TEST(CompleteMultipartUploadTest, PartNumbersOutsideTheRangeAreInvalidArguments) {
  EXPECT_TRUE(ParseCompleteMultipartUpload(OnePart("0")).status().IsInvalidArgument());
  EXPECT_TRUE(ParseCompleteMultipartUpload(OnePart("10001")).status().IsInvalidArgument());
  EXPECT_TRUE(ParseCompleteMultipartUpload(OnePart("4294967297")).status().IsInvalidArgument());
}

TEST(CompleteMultipartUploadTest, WrongShapesAreMalformed) {
  for (const std::string& body : {
           OnePart("-1"),
           OnePart("1.0"),
           OnePart(""),
           OnePart("0x1"),
           OnePart("99999999999999999999999"),
           OnePart("1", ""),
           OnePart("1", "<ETag>a</ETag><ETag>b</ETag>"),
           OnePart("1</PartNumber><PartNumber>2"),
           OnePart("1", "<ETag><x/></ETag>"),
           std::string("<CompleteMultipartUpload></CompleteMultipartUpload>"),
           std::string("<CompleteMultipartUpload><Part><ETag>e</ETag></Part></CompleteMultipartUpload>"),
           std::string("<CompleteMultipartUpload>text<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>"
                       "</CompleteMultipartUpload>"),
           std::string("<Complete><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></Complete>"),
       }) {
    const Status s = test::ToStatus(ParseCompleteMultipartUpload(body));
    EXPECT_TRUE(s.IsMalformedXml()) << body << " -> " << s;
  }
}

TEST(CompleteMultipartUploadTest, AcceptsTenThousandPartsAndNoMore) {
  std::string body = "<CompleteMultipartUpload>";
  for (uint32_t i = 1; i <= kMaxPartNumber; ++i) {
    body += "<Part><PartNumber>" + std::to_string(i) + "</PartNumber><ETag>\"x\"</ETag></Part>";
  }
  Result<std::vector<CompletedPart>> parts = ParseCompleteMultipartUpload(body + "</CompleteMultipartUpload>");
  ASSERT_OK(parts);
  EXPECT_EQ(parts->size(), kMaxPartNumber);
  EXPECT_EQ(parts->back().part_number, kMaxPartNumber);
  body += "<Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part></CompleteMultipartUpload>";
  EXPECT_TRUE(ParseCompleteMultipartUpload(body).status().IsMalformedXml());
}

// ---- Delete -----------------------------------------------------------------------------------

TEST(DeleteRequestTest, ParsesTheDocumentationExample) {
  Result<DeleteRequest> req = ParseDeleteRequest(kDeleteBody);
  ASSERT_OK(req);
  EXPECT_TRUE(req->quiet);
  ASSERT_EQ(req->objects.size(), 2u);
  EXPECT_EQ(req->objects[0].key, "sample1.txt");
  EXPECT_FALSE(req->objects[0].version_id.has_value());
  EXPECT_EQ(req->objects[1].key, "sample2.txt");
  EXPECT_EQ(req->objects[1].version_id, "OYcLXagmS.WaD..oyH4KRguB95_YhLs7");
}

TEST(DeleteRequestTest, QuietDefaultsToFalseAndKeysAreKeptExactly) {
  Result<DeleteRequest> req = ParseDeleteRequest(
      "<Delete><Object><Key> spaced &amp; &#13;&#10;odd&#x1; </Key><ETag>ignored</ETag></Object>"
      "<Object><Key></Key></Object><Unknown/></Delete>");
  ASSERT_OK(req);
  EXPECT_FALSE(req->quiet);
  ASSERT_EQ(req->objects.size(), 2u);
  EXPECT_EQ(req->objects[0].key, " spaced & \r\nodd\x01 ");
  EXPECT_EQ(req->objects[1].key, "");  // the caller reports it per key
}

TEST(DeleteRequestTest, ParsesQuietCaseInsensitively) {
  for (const std::string_view v : {"true", "True", " TRUE\n"}) {
    Result<DeleteRequest> req =
        ParseDeleteRequest("<Delete><Quiet>" + std::string(v) + "</Quiet><Object><Key>k</Key></Object></Delete>");
    ASSERT_OK(req);
    EXPECT_TRUE(req->quiet);
  }
  Result<DeleteRequest> req = ParseDeleteRequest("<Delete><Quiet>false</Quiet><Object><Key>k</Key></Object></Delete>");
  ASSERT_OK(req);
  EXPECT_FALSE(req->quiet);
}

TEST(DeleteRequestTest, AcceptsAThousandObjectsAndNoMore) {
  std::string body = "<Delete>";
  for (size_t i = 0; i < kMaxDeleteObjects; ++i) body += "<Object><Key>k" + std::to_string(i) + "</Key></Object>";
  Result<DeleteRequest> req = ParseDeleteRequest(body + "</Delete>");
  ASSERT_OK(req);
  EXPECT_EQ(req->objects.size(), kMaxDeleteObjects);
  EXPECT_EQ(req->objects.back().key, "k999");
  EXPECT_TRUE(ParseDeleteRequest(body + "<Object><Key>x</Key></Object></Delete>").status().IsMalformedXml());
}

TEST(DeleteRequestTest, WrongShapesAreMalformed) {
  for (const std::string_view body : {
           "<Delete></Delete>",
           "<Delete><Quiet>true</Quiet></Delete>",
           "<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>",
           "<Delete><Quiet>true</Quiet><Quiet>true</Quiet><Object><Key>k</Key></Object></Delete>",
           "<Delete><Object></Object></Delete>",
           "<Delete><Object><VersionId>v</VersionId></Object></Delete>",
           "<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
           "<Delete><Object><Key>a</Key><VersionId>1</VersionId><VersionId>2</VersionId></Object></Delete>",
           "<Delete><Object><Key><b/></Key></Object></Delete>",
           "<Delete>x<Object><Key>k</Key></Object></Delete>",
           "<DeleteObjects><Object><Key>k</Key></Object></DeleteObjects>",
       }) {
    const Status s = test::ToStatus(ParseDeleteRequest(body));
    EXPECT_TRUE(s.IsMalformedXml()) << body << " -> " << s;
  }
}

// ---- CreateBucketConfiguration ----------------------------------------------------------------

TEST(CreateBucketConfigurationTest, ReadsTheLocationConstraint) {
  Result<CreateBucketConfiguration> config = ParseCreateBucketConfiguration(
      "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
      "  <LocationConstraint>eu-west-1</LocationConstraint>\n</CreateBucketConfiguration>");
  ASSERT_OK(config);
  EXPECT_EQ(config->location_constraint, "eu-west-1");
}

TEST(CreateBucketConfigurationTest, LocationConstraintIsOptional) {
  Result<CreateBucketConfiguration> config =
      ParseCreateBucketConfiguration("<CreateBucketConfiguration></CreateBucketConfiguration>");
  ASSERT_OK(config);
  EXPECT_EQ(config->location_constraint, "");
}

TEST(CreateBucketConfigurationTest, WrongShapesAreMalformed) {
  EXPECT_TRUE(ParseCreateBucketConfiguration("<BucketConfiguration/>").status().IsMalformedXml());
  EXPECT_TRUE(ParseCreateBucketConfiguration("<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
                                             "<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>")
                  .status()
                  .IsMalformedXml());
  EXPECT_TRUE(ParseCreateBucketConfiguration("").status().IsMalformedXml());
}

}  // namespace
}  // namespace cairn::gateway
