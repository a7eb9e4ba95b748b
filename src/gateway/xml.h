// XML for the S3 gateway: a writer for response bodies, a small strict parser for request bodies,
// and the three request documents the gateway reads (CompleteMultipartUpload, Delete,
// CreateBucketConfiguration).
//
// Writer. Text and attribute values are escaped: & < > " ' become &amp; &lt; &gt; &quot; &apos;.
// Tab, line feed and carriage return become &#9; &#10; &#13; so that they survive the
// end-of-line and whitespace normalisation every XML parser applies. S3 object keys may hold any
// byte sequence a client managed to PUT, including characters XML 1.0 forbids outright (U+0001 to
// U+001F other than the three above, U+FFFE, U+FFFF). S3 itself does not drop or replace them in
// listings: it writes them as numeric character references (for example &#x1;), which XML 1.0
// parsers reject, and documents `encoding-type=url` as the way for a client to list such keys.
// The writer does the same, as decimal references (U+0001 becomes &#1;), so that a listing never
// loses or changes a key; clients that need strict XML 1.0 ask for encoding-type=url
// (gateway/s3_names.h). Bytes that are not valid UTF-8 (keys are validated at PUT, so only a bug
// could pass one) are written as U+FFFD so that a body is always valid UTF-8.
//
// Parser. Non-validating and strict: one root element; elements, attributes, character data,
// the five predefined entities and decimal/hex character references, comments, CDATA sections,
// and an XML declaration at the very start. DOCTYPE and processing instructions are refused (no
// entity definitions, so no entity expansion). The input must be valid UTF-8 and contain only
// XML 1.0 characters; line ends are normalised to \n as XML requires (so a key holding \r must be
// sent as &#13;, as S3 documents). Character references may name any code point from U+0001 to
// U+10FFFF except surrogates, including the control characters, U+FFFE and U+FFFF that the writer
// emits, so that a key read from a listing can be sent back in a Delete request. U+0000 cannot be
// sent at all (&#0; is refused): a key holding it lists as &#0; but cannot be named in a Delete
// body.
// Namespaces are not interpreted: a name's prefix is dropped and nodes carry the local name;
// start and end tags must still match exactly. Attributes are kept by local name too (xsi:type
// becomes "type"), except namespace declarations (xmlns, xmlns:*), which are dropped since their
// local names would collide with real attributes and nothing reads them. Attribute values are
// decoded and normalised as XML requires: a literal tab, line feed or carriage return becomes a
// space (a reference such as &#10; keeps its character). Work is linear in the input: no
// recursion (the tree is built with an explicit stack bounded by XmlLimits::max_depth) and no
// backtracking. Every failure is Status MalformedXml, which the S3 error table maps to
// MalformedXML; the caller bounds the body size before calling.
//
// Thread-safety: XmlWriter is a plain value with no shared state; use one per response. All
// functions are pure and may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace cairn::gateway {

// The namespace of every S3 response document.
inline constexpr std::string_view kS3XmlNamespace = "http://s3.amazonaws.com/doc/2006-03-01/";

class XmlWriter {
 public:
  XmlWriter() = default;

  // Appends <?xml version="1.0" encoding="UTF-8"?> and a newline.
  // REQUIRES: nothing has been written yet.
  void Declaration();
  // Opens <name> or <name xmlns="xmlns">. `name` is a constant of the S3 schema and is written
  // as is.
  void Open(std::string_view name, std::string_view xmlns = {});
  // An attribute to write: `name` is a constant of the schema (for example "xmlns:xsi",
  // "xsi:type") written as is; `value` is escaped.
  struct Attribute {
    std::string_view name;
    std::string_view value;
  };
  // Opens <name a="v" ...> with the attributes in the given order.
  void OpenWithAttributes(std::string_view name, std::initializer_list<Attribute> attributes);
  // Appends <name>escaped value</name>.
  void Element(std::string_view name, std::string_view value);
  void Element(std::string_view name, const char* value) { Element(name, std::string_view(value)); }
  void Element(std::string_view name, int64_t value);
  void Element(std::string_view name, uint64_t value);
  void Element(std::string_view name, int value) { Element(name, static_cast<int64_t>(value)); }
  void Element(std::string_view name, uint32_t value) { Element(name, static_cast<uint64_t>(value)); }
  // Appends "true" or "false", the spelling S3 uses.
  void Element(std::string_view name, bool value);
  // Closes the innermost open element. REQUIRES: an element is open.
  void Close();
  // Returns the document, closing any element still open, and leaves the writer empty.
  std::string Take();

  // Number of elements opened and not yet closed.
  size_t depth() const { return open_.size(); }

 private:
  std::string out_;
  std::vector<std::string> open_;  // names of the open elements, outermost first
};

// Appends `value` to `out` escaped for element text or a quoted attribute value (see the file
// comment for the rules).
void AppendXmlEscaped(std::string_view value, std::string* out);
std::string XmlEscape(std::string_view value);

// ---- Parser -------------------------------------------------------------------------------

struct XmlLimits {
  // Deepest element nesting accepted; the root is at depth 1. S3 request bodies need 3.
  size_t max_depth = 32;
  // Most elements accepted in one document. A CompleteMultipartUpload with 10000 parts, each with
  // PartNumber, ETag and a checksum, has about 40001.
  size_t max_elements = 100000;
};

struct XmlNode {
  std::string name;  // local name, namespace prefix removed
  // The element's own character data (entity references decoded), concatenated; text of child
  // elements is in the children. For an element holding only child elements this is the
  // whitespace between them.
  std::string text;
  std::vector<XmlNode> children;  // in document order
  // (local name, decoded value) in document order; namespace declarations are not included.
  std::vector<std::pair<std::string, std::string>> attributes;

  // The first child with local name `child_name`, or nullptr. Linear in the number of children.
  const XmlNode* Child(std::string_view child_name) const;
  // The value of the first attribute with local name `local_name`, or nullptr.
  const std::string* Attribute(std::string_view local_name) const;
};

// Parses a whole document into a tree. Fails with MalformedXml on anything that is not a
// well-formed document within `limits`.
Result<XmlNode> ParseXml(std::string_view body, const XmlLimits& limits = {});

// ---- S3 request documents -------------------------------------------------------------------
// Each parser checks the root element's local name and the shape S3 requires, ignores child
// elements it does not know (for example the checksum fields of a Part), and fails with
// MalformedXml when the shape is wrong.

inline constexpr uint32_t kMinPartNumber = 1;
inline constexpr uint32_t kMaxPartNumber = 10000;
// S3 accepts at most this many objects in one DeleteObjects request.
inline constexpr size_t kMaxDeleteObjects = 1000;

struct CompletedPart {
  uint32_t part_number = 0;
  std::string etag;  // as sent, surrounding whitespace removed; quotes are kept
};

// <CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…
// Parts come back in document order; checking that they ascend (S3 InvalidPartOrder) and that
// they exist (InvalidPart) is the completion logic's job. Fails with MalformedXml when there is no
// Part, more than kMaxPartNumber parts, a Part without exactly one PartNumber and one ETag, or a
// PartNumber that is not a decimal integer; with InvalidArgument when a PartNumber is outside
// [kMinPartNumber, kMaxPartNumber].
Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view body);

struct DeleteObjectEntry {
  std::string key;  // exactly as sent (may be empty: the caller validates)
  std::optional<std::string> version_id;
};

struct DeleteRequest {
  bool quiet = false;
  std::vector<DeleteObjectEntry> objects;  // document order
};

// <Delete><Quiet>true</Quiet><Object><Key>…</Key><VersionId>…</VersionId></Object>…</Delete>
// Fails with MalformedXml when there is no Object or more than kMaxDeleteObjects, an Object
// without exactly one Key, more than one VersionId, or a Quiet that is not true/false.
Result<DeleteRequest> ParseDeleteRequest(std::string_view body);

struct CreateBucketConfiguration {
  std::string location_constraint;  // empty when absent
};

// <CreateBucketConfiguration><LocationConstraint>…</LocationConstraint></CreateBucketConfiguration>
// An empty request body means "no configuration" and is the caller's case, not this parser's.
Result<CreateBucketConfiguration> ParseCreateBucketConfiguration(std::string_view body);

}  // namespace cairn::gateway
