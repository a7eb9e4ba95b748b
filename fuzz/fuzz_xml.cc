// Fuzz target: the XML parser, the three S3 request documents and the writer (gateway/xml.h).
//
// The input is used three ways:
//   1. As a document. ParseXml must return a tree within its limits (depth, element count), with
//      non-empty local names and valid UTF-8 text; parsing with tighter limits succeeds exactly
//      when the tree fits them, and then gives the same tree. A tree written back with XmlWriter
//      (leaves as elements with text, the whitespace between child elements dropped) parses to
//      the same names and leaf text. The S3 document parsers fail whenever ParseXml does, and
//      what they return has the shape xml.h promises.
//   2. As element content. <v>escaped input</v> parses back to the input itself when it is valid
//      UTF-8 (with U+FFFD in place of each invalid byte otherwise), and fails only when the input
//      holds a NUL byte, which XML cannot carry (xml.h).
//   3. As object keys and ETags, split at each 0xFF byte: a Delete and a CompleteMultipartUpload
//      body written by XmlWriter parse back to the same keys, version ids, part numbers and
//      (whitespace-trimmed) ETags.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "gateway/text.h"
#include "gateway/xml.h"

namespace cairn::gateway {
namespace {

// The limits used for the "tighter limits" property.
constexpr XmlLimits kTightLimits{/*max_depth=*/3, /*max_elements=*/8};

struct TreeShape {
  size_t depth = 0;
  size_t elements = 0;
};

void Measure(const XmlNode& node, size_t depth, TreeShape* shape) {
  shape->depth = std::max(shape->depth, depth);
  ++shape->elements;
  for (const XmlNode& child : node.children) Measure(child, depth + 1, shape);
}

bool SameTree(const XmlNode& a, const XmlNode& b) {
  if (a.name != b.name || a.text != b.text || a.children.size() != b.children.size()) return false;
  for (size_t i = 0; i < a.children.size(); ++i) {
    if (!SameTree(a.children[i], b.children[i])) return false;
  }
  return true;
}

// Same names and leaf text; text beside child elements is not compared (the writer drops it).
bool SameLeaves(const XmlNode& a, const XmlNode& b) {
  if (a.name != b.name || a.children.size() != b.children.size()) return false;
  if (a.children.empty()) return a.text == b.text;
  for (size_t i = 0; i < a.children.size(); ++i) {
    if (!SameLeaves(a.children[i], b.children[i])) return false;
  }
  return true;
}

bool IsAsciiNameStart(char c) {
  const auto b = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || b >= 0x80;
}

// Checks the per-node promises and returns whether every local name can start an element again
// (a prefixed name such as "a:-b" has a local name that cannot).
bool CheckNodes(const XmlNode& node) {
  FUZZ_CHECK(!node.name.empty());
  FUZZ_CHECK(node.name.find(':') == std::string::npos);
  FUZZ_CHECK(IsValidUtf8(node.name));
  FUZZ_CHECK(IsValidUtf8(node.text));
  FUZZ_CHECK(node.text.find('\0') == std::string::npos);
  bool writable = IsAsciiNameStart(node.name.front());
  for (const XmlNode& child : node.children) writable = CheckNodes(child) && writable;
  return writable;
}

// Leaves become elements with their text; an element with children is opened and closed around
// them, and its own text (whitespace, or text mixed with elements) is dropped.
void Write(const XmlNode& node, std::string_view xmlns, XmlWriter* w) {
  if (node.children.empty()) {
    w->Element(node.name, node.text);
    return;
  }
  w->Open(node.name, xmlns);
  for (const XmlNode& child : node.children) Write(child, /*xmlns=*/{}, w);
  w->Close();
}

std::string_view TrimXmlSpace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r";
  while (!s.empty() && kSpace.find(s.front()) != std::string_view::npos) s.remove_prefix(1);
  while (!s.empty() && kSpace.find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  return s;
}

void CheckDocument(std::string_view in) {
  const XmlLimits defaults;
  const Result<XmlNode> tree = ParseXml(in);
  const Result<XmlNode> tight = ParseXml(in, kTightLimits);
  if (!tree.ok()) {
    FUZZ_CHECK(tree.status().IsMalformedXml());
    FUZZ_CHECK(!tight.ok() && tight.status().IsMalformedXml());
  } else {
    TreeShape shape;
    Measure(*tree, 1, &shape);
    FUZZ_CHECK(shape.depth <= defaults.max_depth && shape.elements <= defaults.max_elements);
    const bool fits = shape.depth <= kTightLimits.max_depth && shape.elements <= kTightLimits.max_elements;
    FUZZ_CHECK(tight.ok() == fits);
    if (tight.ok()) FUZZ_CHECK(SameTree(*tree, *tight));

    if (CheckNodes(*tree)) {
      XmlWriter w;
      w.Declaration();
      Write(*tree, kS3XmlNamespace, &w);
      FUZZ_CHECK(w.depth() == 0);
      const Result<XmlNode> again = ParseXml(w.Take());
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(SameLeaves(*tree, *again));
    }
  }

  const auto parts = ParseCompleteMultipartUpload(in);
  if (!tree.ok()) FUZZ_CHECK(!parts.ok() && parts.status().IsMalformedXml());
  if (parts.ok()) {
    FUZZ_CHECK(tree->name == "CompleteMultipartUpload");
    FUZZ_CHECK(!parts->empty() && parts->size() <= kMaxPartNumber);
    for (const CompletedPart& p : *parts) {
      FUZZ_CHECK(p.part_number >= kMinPartNumber && p.part_number <= kMaxPartNumber);
      FUZZ_CHECK(TrimXmlSpace(p.etag) == p.etag);
    }
  } else {
    FUZZ_CHECK(parts.status().IsMalformedXml() || parts.status().IsInvalidArgument());
  }

  const auto del = ParseDeleteRequest(in);
  if (!tree.ok()) FUZZ_CHECK(!del.ok() && del.status().IsMalformedXml());
  if (del.ok()) {
    FUZZ_CHECK(tree->name == "Delete");
    FUZZ_CHECK(!del->objects.empty() && del->objects.size() <= kMaxDeleteObjects);
  } else {
    FUZZ_CHECK(del.status().IsMalformedXml());
  }

  const auto config = ParseCreateBucketConfiguration(in);
  if (!tree.ok()) FUZZ_CHECK(!config.ok() && config.status().IsMalformedXml());
  if (config.ok()) {
    FUZZ_CHECK(tree->name == "CreateBucketConfiguration");
  } else {
    FUZZ_CHECK(config.status().IsMalformedXml());
  }
}

// What element content `value` reads back as: each byte that starts no valid UTF-8 sequence
// becomes U+FFFD (xml.h). nullopt when it holds NUL, which cannot be read back at all.
std::optional<std::string> ExpectedText(std::string_view value) {
  if (value.find('\0') != std::string_view::npos) return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    const size_t start = i;
    if (DecodeUtf8(value, &i)) {
      out.append(value.substr(start, i - start));
    } else {
      out.append("\xEF\xBF\xBD");
    }
  }
  return out;
}

// Rewrites each "&#N;" as "&#xH;", alternating lowercase and uppercase hex digits.
std::string DecimalRefsToHex(std::string_view doc) {
  std::string out;
  size_t refs = 0;
  size_t i = 0;
  while (i < doc.size()) {
    const size_t at = doc.find("&#", i);
    if (at == std::string_view::npos) break;
    size_t end = at + 2;
    uint32_t cp = 0;
    while (end < doc.size() && doc[end] >= '0' && doc[end] <= '9')
      cp = cp * 10 + static_cast<uint32_t>(doc[end++] - '0');
    out.append(doc.substr(i, at - i));
    const char* digits = refs++ % 2 == 0 ? "0123456789abcdef" : "0123456789ABCDEF";
    std::string hex;
    do {
      hex.insert(hex.begin(), digits[cp % 16]);
      cp /= 16;
    } while (cp != 0);
    out.append("&#x").append(hex);
    i = end;  // at the ';', copied with the text that follows
  }
  out.append(doc.substr(i));
  return out;
}

void CheckEscapeRoundTrip(std::string_view value) {
  XmlWriter w;
  w.Element("v", value);
  const std::string doc = w.Take();
  FUZZ_CHECK(IsValidUtf8(doc));
  const Result<XmlNode> node = ParseXml(doc);
  const std::optional<std::string> expected = ExpectedText(value);
  FUZZ_CHECK(node.ok() == expected.has_value());
  if (node.ok()) FUZZ_CHECK(node->text == *expected && node->children.empty());
  FUZZ_CHECK(XmlEscape(value) == doc.substr(3, doc.size() - 7));

  // The same document with its decimal character references spelled in hex reads the same.
  const std::string hex = DecimalRefsToHex(doc);
  const Result<XmlNode> hex_node = ParseXml(hex);
  FUZZ_CHECK(hex_node.ok() == node.ok());
  if (hex_node.ok()) FUZZ_CHECK(hex_node->text == node->text);
}

void CheckRequestRoundTrips(std::string_view in) {
  std::vector<std::string_view> values;
  while (true) {
    const size_t cut = in.find('\xFF');
    values.push_back(in.substr(0, cut));
    if (cut == std::string_view::npos) break;
    in.remove_prefix(cut + 1);
  }
  bool any_nul = false;
  for (std::string_view v : values) any_nul = any_nul || v.find('\0') != std::string_view::npos;

  // Delete: every other object carries a VersionId (the key reversed).
  const bool quiet = values.size() % 2 == 1;
  XmlWriter w;
  w.Declaration();
  w.Open("Delete", kS3XmlNamespace);
  w.Element("Quiet", quiet);
  for (size_t i = 0; i < values.size(); ++i) {
    w.Open("Object");
    w.Element("Key", values[i]);
    if (i % 2 == 1) w.Element("VersionId", std::string(values[i].rbegin(), values[i].rend()));
    w.Close();
  }
  const auto del = ParseDeleteRequest(w.Take());
  FUZZ_CHECK(del.ok() == (!any_nul && values.size() <= kMaxDeleteObjects));
  if (del.ok()) {
    FUZZ_CHECK(del->quiet == quiet && del->objects.size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      FUZZ_CHECK(del->objects[i].key == *ExpectedText(values[i]));
      FUZZ_CHECK(del->objects[i].version_id.has_value() == (i % 2 == 1));
      if (i % 2 == 1) {
        const std::string reversed(values[i].rbegin(), values[i].rend());
        FUZZ_CHECK(*del->objects[i].version_id == *ExpectedText(reversed));
      }
    }
  }

  // CompleteMultipartUpload: part numbers 1, 2, ... with the values as ETags.
  w.Open("CompleteMultipartUpload", kS3XmlNamespace);
  for (size_t i = 0; i < values.size(); ++i) {
    w.Open("Part");
    w.Element("ETag", values[i]);
    w.Element("PartNumber", static_cast<uint64_t>(i + 1));
    w.Close();
  }
  const auto parts = ParseCompleteMultipartUpload(w.Take());
  FUZZ_CHECK(parts.ok() == (!any_nul && values.size() <= kMaxPartNumber));
  if (parts.ok()) {
    FUZZ_CHECK(parts->size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      FUZZ_CHECK((*parts)[i].part_number == i + 1);
      FUZZ_CHECK((*parts)[i].etag == TrimXmlSpace(*ExpectedText(values[i])));
    }
  }

  // CreateBucketConfiguration with the first value as the location.
  w.Open("CreateBucketConfiguration", kS3XmlNamespace);
  w.Element("LocationConstraint", values.front());
  const auto config = ParseCreateBucketConfiguration(w.Take());
  FUZZ_CHECK(config.ok() == (values.front().find('\0') == std::string_view::npos));
  if (config.ok()) FUZZ_CHECK(config->location_constraint == TrimXmlSpace(*ExpectedText(values.front())));
}

}  // namespace
}  // namespace cairn::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  cairn::gateway::CheckDocument(in);
  cairn::gateway::CheckEscapeRoundTrip(in);
  cairn::gateway::CheckRequestRoundTrips(in);
  return 0;
}
