// XML writer, parser and S3 request documents; see xml.h for the rules each side follows.
// Thread-safety: no shared state.
#include "gateway/xml.h"

#include <charconv>
#include <utility>

#include "gateway/text.h"

namespace cairn::gateway {
namespace {

constexpr char32_t kReplacementChar = 0xFFFD;
constexpr char32_t kMaxCodePoint = 0x10FFFF;


// XML 1.0 production [2] Char, minus nothing: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD]
// | [#x10000-#x10FFFF]. Surrogates never reach here (the decoder refuses them).
bool IsXmlChar(char32_t cp) {
  if (cp < 0x20) return cp == 0x9 || cp == 0xA || cp == 0xD;
  return cp != 0xFFFE && cp != 0xFFFF && cp <= kMaxCodePoint;
}

void AppendDecimalRef(char32_t cp, std::string* out) {
  out->append("&#");
  out->append(std::to_string(static_cast<uint32_t>(cp)));
  out->push_back(';');
}

}  // namespace

// ---- Writer ---------------------------------------------------------------------------------

void AppendXmlEscaped(std::string_view value, std::string* out) {
  out->reserve(out->size() + value.size());
  size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    switch (c) {
      case '&':
        out->append("&amp;");
        ++i;
        continue;
      case '<':
        out->append("&lt;");
        ++i;
        continue;
      case '>':
        out->append("&gt;");
        ++i;
        continue;
      case '"':
        out->append("&quot;");
        ++i;
        continue;
      case '\'':
        out->append("&apos;");
        ++i;
        continue;
      default:
        break;
    }
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x80) {
      out->push_back(c);
      ++i;
      continue;
    }
    if (b < 0x20) {  // \t \n \r and the control characters XML 1.0 forbids: all as references
      AppendDecimalRef(b, out);
      ++i;
      continue;
    }
    const size_t start = i;
    const std::optional<char32_t> cp = DecodeUtf8(value, &i);
    if (!cp) {
      AppendUtf8(kReplacementChar, out);
    } else if (!IsXmlChar(*cp)) {
      AppendDecimalRef(*cp, out);  // U+FFFE, U+FFFF
    } else {
      out->append(value.substr(start, i - start));
    }
  }
}

std::string XmlEscape(std::string_view value) {
  std::string out;
  AppendXmlEscaped(value, &out);
  return out;
}

void XmlWriter::Declaration() { out_.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"); }

void XmlWriter::Open(std::string_view name, std::string_view xmlns) {
  out_.push_back('<');
  out_.append(name);
  if (!xmlns.empty()) {
    out_.append(" xmlns=\"");
    AppendXmlEscaped(xmlns, &out_);
    out_.push_back('"');
  }
  out_.push_back('>');
  open_.emplace_back(name);
}

void XmlWriter::OpenWithAttributes(std::string_view name, std::initializer_list<Attribute> attributes) {
  out_.push_back('<');
  out_.append(name);
  for (const Attribute& a : attributes) {
    out_.push_back(' ');
    out_.append(a.name);
    out_.append("=\"");
    AppendXmlEscaped(a.value, &out_);
    out_.push_back('"');
  }
  out_.push_back('>');
  open_.emplace_back(name);
}

void XmlWriter::Element(std::string_view name, std::string_view value) {
  out_.push_back('<');
  out_.append(name);
  out_.push_back('>');
  AppendXmlEscaped(value, &out_);
  out_.append("</");
  out_.append(name);
  out_.push_back('>');
}

void XmlWriter::Element(std::string_view name, int64_t value) { Element(name, std::to_string(value)); }

void XmlWriter::Element(std::string_view name, uint64_t value) { Element(name, std::to_string(value)); }

void XmlWriter::Element(std::string_view name, bool value) {
  Element(name, value ? std::string_view("true") : std::string_view("false"));
}

void XmlWriter::Close() {
  if (open_.empty()) return;  // REQUIRES violated; writing nothing keeps the output well-formed
  out_.append("</");
  out_.append(open_.back());
  out_.push_back('>');
  open_.pop_back();
}

std::string XmlWriter::Take() {
  while (!open_.empty()) Close();
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

// ---- Parser ---------------------------------------------------------------------------------

const XmlNode* XmlNode::Child(std::string_view child_name) const {
  for (const XmlNode& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

const std::string* XmlNode::Attribute(std::string_view local_name) const {
  for (const auto& attribute : attributes) {
    if (attribute.first == local_name) return &attribute.second;
  }
  return nullptr;
}

namespace {

Status Malformed(std::string_view what, size_t offset) {
  std::string msg = "xml: ";
  msg.append(what);
  msg.append(" at byte ");
  msg.append(std::to_string(offset));
  return Status::MalformedXml(msg);
}

// Names: ASCII letters, '_' and ':' may start a name, and digits, '-' and '.' may follow, as in
// XML's NameStartChar/NameChar; every non-ASCII byte is accepted in a name (the body is already
// known to be valid UTF-8), which is laxer than XML above U+007F and harmless here.
bool IsNameStart(char c) {
  const auto b = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || b >= 0x80;
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

std::string_view LocalName(std::string_view qname) {
  const size_t colon = qname.rfind(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

// Checks that the whole body is valid UTF-8 made of XML 1.0 characters. One linear pass, so the
// parser proper can work on bytes.
Status CheckCharacters(std::string_view body) {
  size_t i = 0;
  while (i < body.size()) {
    const size_t at = i;
    const auto b = static_cast<unsigned char>(body[i]);
    if (b >= 0x20 && b < 0x80) {
      ++i;
      continue;
    }
    const std::optional<char32_t> cp = DecodeUtf8(body, &i);
    if (!cp) return Malformed("invalid UTF-8", at);
    if (!IsXmlChar(*cp)) return Malformed("character not allowed in XML 1.0", at);
  }
  return Status::OK();
}

class Parser {
 public:
  Parser(std::string_view in, const XmlLimits& limits) : in_(in), limits_(limits) {}

  Result<XmlNode> Run() {
    CAIRN_RETURN_IF_ERROR(CheckCharacters(in_));
    if (in_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a UTF-8 byte order mark
    if (in_.substr(pos_, 5) == "<?xml" && in_.size() > pos_ + 5 && IsXmlSpace(in_[pos_ + 5])) {
      CAIRN_RETURN_IF_ERROR(SkipDeclaration());
    }
    CAIRN_RETURN_IF_ERROR(SkipMisc());
    if (pos_ >= in_.size()) return Malformed("no root element", pos_);
    if (in_[pos_] != '<') return Malformed("text before the root element", pos_);
    CAIRN_RETURN_IF_ERROR(Content());
    CAIRN_RETURN_IF_ERROR(SkipMisc());
    if (pos_ != in_.size()) return Malformed("content after the root element", pos_);
    return std::move(root_);
  }

 private:
  bool StartsWith(std::string_view s) const { return in_.substr(pos_, s.size()) == s; }

  // <?xml version="1.0" ...?>: the attributes are not interpreted (the body is UTF-8 whatever it
  // claims), only the end is looked for.
  Status SkipDeclaration() {
    const size_t end = in_.find("?>", pos_);
    if (end == std::string_view::npos) return Malformed("unterminated XML declaration", pos_);
    pos_ = end + 2;
    return Status::OK();
  }

  // Whitespace and comments, before or after the root element.
  Status SkipMisc() {
    while (pos_ < in_.size()) {
      if (IsXmlSpace(in_[pos_])) {
        ++pos_;
      } else if (StartsWith("<!--")) {
        CAIRN_RETURN_IF_ERROR(SkipComment());
      } else if (StartsWith("<?")) {
        return Malformed("processing instruction", pos_);
      } else if (StartsWith("<!")) {
        return Malformed("DOCTYPE or other declaration", pos_);
      } else {
        break;
      }
    }
    return Status::OK();
  }

  // REQUIRES: in_ at pos_ starts with "<!--".
  Status SkipComment() {
    const size_t body = pos_ + 4;
    const size_t dashes = in_.find("--", body);
    if (dashes == std::string_view::npos) return Malformed("unterminated comment", pos_);
    if (dashes + 2 >= in_.size() || in_[dashes + 2] != '>') return Malformed("'--' inside a comment", dashes);
    pos_ = dashes + 3;
    return Status::OK();
  }

  Result<std::string_view> Name() {
    const size_t start = pos_;
    if (pos_ >= in_.size() || !IsNameStart(in_[pos_])) return Malformed("expected a name", pos_);
    while (pos_ < in_.size() && IsNameChar(in_[pos_])) ++pos_;
    return in_.substr(start, pos_ - start);
  }

  void SkipSpace() {
    while (pos_ < in_.size() && IsXmlSpace(in_[pos_])) ++pos_;
  }

  // Decodes the reference starting at '&' at pos_ into `out` and moves past its ';'.
  Status Reference(std::string* out) {
    const size_t start = pos_;
    ++pos_;  // '&'
    if (pos_ < in_.size() && in_[pos_] == '#') {
      ++pos_;
      int base = 10;
      if (pos_ < in_.size() && in_[pos_] == 'x') {
        base = 16;
        ++pos_;
      }
      char32_t cp = 0;
      size_t digits = 0;
      while (pos_ < in_.size() && in_[pos_] != ';') {
        const char c = in_[pos_];
        int d = -1;
        if (c >= '0' && c <= '9') {
          d = c - '0';
        } else if (base == 16 && c >= 'a' && c <= 'f') {
          d = c - 'a' + 10;
        } else if (base == 16 && c >= 'A' && c <= 'F') {
          d = c - 'A' + 10;
        }
        if (d < 0) return Malformed("bad character reference", start);
        cp = cp * static_cast<char32_t>(base) + static_cast<char32_t>(d);
        if (cp > kMaxCodePoint) return Malformed("character reference out of range", start);
        ++digits;
        ++pos_;
      }
      if (pos_ >= in_.size()) return Malformed("unterminated character reference", start);
      if (digits == 0) return Malformed("empty character reference", start);
      // U+0000 has no representation in XML at all; surrogates are not characters. The other
      // characters XML 1.0 forbids are accepted here, because the writer emits them (see xml.h).
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return Malformed("character reference to a forbidden character", start);
      }
      ++pos_;  // ';'
      AppendUtf8(cp, out);
      return Status::OK();
    }
    static constexpr std::pair<std::string_view, char> kEntities[] = {
        {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    for (const auto& [name, ch] : kEntities) {
      if (StartsWith(name)) {
        pos_ += name.size();
        out->push_back(ch);
        return Status::OK();
      }
    }
    return Malformed("unknown or malformed entity reference", start);
  }

  // Attributes up to and including '>' or "/>", appended to `out` (see xml.h for what is kept).
  // Sets *empty for "/>".
  Status Attributes(bool* empty, std::vector<std::pair<std::string, std::string>>* out) {
    for (;;) {
      const size_t before = pos_;
      SkipSpace();
      if (pos_ >= in_.size()) return Malformed("unterminated start tag", pos_);
      if (in_[pos_] == '>') {
        ++pos_;
        *empty = false;
        return Status::OK();
      }
      if (StartsWith("/>")) {
        pos_ += 2;
        *empty = true;
        return Status::OK();
      }
      if (pos_ == before) return Malformed("expected whitespace before an attribute", pos_);
      CAIRN_ASSIGN_OR_RETURN(std::string_view attr_name, Name());
      SkipSpace();
      if (pos_ >= in_.size() || in_[pos_] != '=') return Malformed("expected '=' after an attribute name", pos_);
      ++pos_;
      SkipSpace();
      if (pos_ >= in_.size() || (in_[pos_] != '"' && in_[pos_] != '\'')) {
        return Malformed("expected a quoted attribute value", pos_);
      }
      const char quote = in_[pos_++];
      std::string value;
      for (;;) {
        if (pos_ >= in_.size()) return Malformed("unterminated attribute value", pos_);
        const char c = in_[pos_];
        if (c == quote) {
          ++pos_;
          break;
        }
        if (c == '<') return Malformed("'<' in an attribute value", pos_);
        if (c == '&') {
          CAIRN_RETURN_IF_ERROR(Reference(&value));
        } else if (c == '\r' || c == '\n' || c == '\t') {
          // XML's attribute-value normalisation; \r\n is one line end, so one space.
          value.push_back(' ');
          if (c == '\r' && pos_ + 1 < in_.size() && in_[pos_ + 1] == '\n') ++pos_;
          ++pos_;
        } else {
          value.push_back(c);
          ++pos_;
        }
      }
      if (attr_name == "xmlns" || attr_name.starts_with("xmlns:")) continue;
      const std::string_view local = LocalName(attr_name);
      if (local.empty()) return Malformed("empty local name", pos_);
      out->emplace_back(std::string(local), std::move(value));
    }
  }

  // Character data up to the next '<' (or the end), appended to `out` with references decoded and
  // line ends normalised.
  Status Text(std::string* out) {
    while (pos_ < in_.size() && in_[pos_] != '<') {
      const char c = in_[pos_];
      if (c == '&') {
        CAIRN_RETURN_IF_ERROR(Reference(out));
      } else if (c == '\r') {
        out->push_back('\n');
        ++pos_;
        if (pos_ < in_.size() && in_[pos_] == '\n') ++pos_;
      } else if (c == '>' && pos_ >= 2 && in_[pos_ - 1] == ']' && in_[pos_ - 2] == ']') {
        return Malformed("']]>' in character data", pos_);
      } else {
        out->push_back(c);
        ++pos_;
      }
    }
    return Status::OK();
  }

  // REQUIRES: in_ at pos_ starts with "<![CDATA[".
  Status CData(std::string* out) {
    const size_t body = pos_ + 9;
    const size_t end = in_.find("]]>", body);
    if (end == std::string_view::npos) return Malformed("unterminated CDATA section", pos_);
    for (size_t i = body; i < end; ++i) {  // line ends are normalised in CDATA too
      if (in_[i] == '\r') {
        out->push_back('\n');
        if (i + 1 < end && in_[i + 1] == '\n') ++i;
      } else {
        out->push_back(in_[i]);
      }
    }
    pos_ = end + 3;
    return Status::OK();
  }

  // Parses the root element and everything in it. The open elements live on `stack_`; a closed
  // element is moved into its parent, so nothing points into a vector that may grow.
  // REQUIRES: in_[pos_] == '<'.
  Status Content() {
    for (;;) {
      if (pos_ >= in_.size()) return Malformed("unexpected end of input inside an element", pos_);
      if (in_[pos_] != '<') {
        if (stack_.empty()) return Malformed("text outside the root element", pos_);
        CAIRN_RETURN_IF_ERROR(Text(&stack_.back().text));
        continue;
      }
      if (StartsWith("</")) {
        const size_t at = pos_;
        pos_ += 2;
        CAIRN_ASSIGN_OR_RETURN(std::string_view name, Name());
        SkipSpace();
        if (pos_ >= in_.size() || in_[pos_] != '>') return Malformed("expected '>' in an end tag", pos_);
        ++pos_;
        if (stack_.empty() || qnames_.back() != name) return Malformed("end tag does not match the start tag", at);
        if (CloseElement()) return Status::OK();
        continue;
      }
      if (StartsWith("<!--")) {
        if (stack_.empty()) return Malformed("expected the root element", pos_);
        CAIRN_RETURN_IF_ERROR(SkipComment());
        continue;
      }
      if (StartsWith("<![CDATA[")) {
        if (stack_.empty()) return Malformed("CDATA outside the root element", pos_);
        CAIRN_RETURN_IF_ERROR(CData(&stack_.back().text));
        continue;
      }
      if (StartsWith("<!")) return Malformed("DOCTYPE or other declaration", pos_);
      if (StartsWith("<?")) return Malformed("processing instruction", pos_);
      // A start tag.
      const size_t at = pos_;
      ++pos_;
      CAIRN_ASSIGN_OR_RETURN(std::string_view name, Name());
      if (stack_.size() >= limits_.max_depth) return Malformed("elements nested too deeply", at);
      if (++elements_ > limits_.max_elements) return Malformed("too many elements", at);
      bool empty = false;
      XmlNode node;
      CAIRN_RETURN_IF_ERROR(Attributes(&empty, &node.attributes));
      node.name = std::string(LocalName(name));
      if (node.name.empty()) return Malformed("empty local name", at);
      stack_.push_back(std::move(node));
      qnames_.push_back(name);
      if (empty && CloseElement()) return Status::OK();
    }
  }

  // Pops the innermost element into its parent, or into root_ when it is the root. Returns true
  // when the root has been closed.
  bool CloseElement() {
    XmlNode node = std::move(stack_.back());
    stack_.pop_back();
    qnames_.pop_back();
    if (stack_.empty()) {
      root_ = std::move(node);
      return true;
    }
    stack_.back().children.push_back(std::move(node));
    return false;
  }

  std::string_view in_;
  const XmlLimits& limits_;
  size_t pos_ = 0;
  size_t elements_ = 0;
  std::vector<XmlNode> stack_;            // open elements, root first
  std::vector<std::string_view> qnames_;  // their names as written, to match end tags
  XmlNode root_;
};

// True when the element holds only whitespace apart from its children.
bool OnlyChildren(const XmlNode& n) { return TrimXmlSpace(n.text).empty(); }

Status WrongShape(std::string_view what) { return Status::MalformedXml(std::string("xml: ") + std::string(what)); }

// Parses a decimal integer with optional surrounding whitespace. Returns nullopt for anything else
// (sign, empty, more digits than fit).
std::optional<uint64_t> ParseDecimal(std::string_view s) {
  s = TrimXmlSpace(s);
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<XmlNode> ParseXml(std::string_view body, const XmlLimits& limits) { return Parser(body, limits).Run(); }

// ---- S3 request documents -------------------------------------------------------------------

Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view body) {
  CAIRN_ASSIGN_OR_RETURN(XmlNode root, ParseXml(body));
  if (root.name != "CompleteMultipartUpload") return WrongShape("root element is not CompleteMultipartUpload");
  if (!OnlyChildren(root)) return WrongShape("text in CompleteMultipartUpload");
  std::vector<CompletedPart> parts;
  for (const XmlNode& child : root.children) {
    if (child.name != "Part") continue;
    if (parts.size() == kMaxPartNumber) return WrongShape("more parts than a multipart upload can have");
    const XmlNode* number = nullptr;
    const XmlNode* etag = nullptr;
    for (const XmlNode& field : child.children) {
      const XmlNode** slot = field.name == "PartNumber" ? &number : field.name == "ETag" ? &etag : nullptr;
      if (slot == nullptr) continue;
      if (*slot != nullptr) return WrongShape("Part repeats " + field.name);
      if (!field.children.empty()) return WrongShape(field.name + " has child elements");
      *slot = &field;
    }
    if (number == nullptr) return WrongShape("Part without PartNumber");
    if (etag == nullptr) return WrongShape("Part without ETag");
    const std::optional<uint64_t> n = ParseDecimal(number->text);
    if (!n) return WrongShape("PartNumber is not a decimal integer");
    if (*n < kMinPartNumber || *n > kMaxPartNumber) {
      return Status::InvalidArgument("part number must be an integer between 1 and 10000, inclusive");
    }
    parts.push_back(CompletedPart{static_cast<uint32_t>(*n), std::string(TrimXmlSpace(etag->text))});
  }
  if (parts.empty()) return WrongShape("CompleteMultipartUpload lists no Part");
  return parts;
}

Result<DeleteRequest> ParseDeleteRequest(std::string_view body) {
  CAIRN_ASSIGN_OR_RETURN(XmlNode root, ParseXml(body));
  if (root.name != "Delete") return WrongShape("root element is not Delete");
  if (!OnlyChildren(root)) return WrongShape("text in Delete");
  DeleteRequest req;
  bool seen_quiet = false;
  for (XmlNode& child : root.children) {
    if (child.name == "Quiet") {
      if (seen_quiet) return WrongShape("Delete repeats Quiet");
      seen_quiet = true;
      const std::string_view v = TrimXmlSpace(child.text);
      if (!child.children.empty()) return WrongShape("Quiet has child elements");
      if (EqualsIgnoreCase(v, "true")) {
        req.quiet = true;
      } else if (EqualsIgnoreCase(v, "false")) {
        req.quiet = false;
      } else {
        return WrongShape("Quiet is neither true nor false");
      }
      continue;
    }
    if (child.name != "Object") continue;
    if (req.objects.size() == kMaxDeleteObjects) return WrongShape("more than 1000 objects in one Delete");
    DeleteObjectEntry entry;
    bool seen_key = false;
    for (XmlNode& field : child.children) {
      if (field.name == "Key") {
        if (seen_key) return WrongShape("Object repeats Key");
        if (!field.children.empty()) return WrongShape("Key has child elements");
        seen_key = true;
        entry.key = std::move(field.text);
      } else if (field.name == "VersionId") {
        if (entry.version_id) return WrongShape("Object repeats VersionId");
        if (!field.children.empty()) return WrongShape("VersionId has child elements");
        entry.version_id = std::move(field.text);
      }
    }
    if (!seen_key) return WrongShape("Object without Key");
    req.objects.push_back(std::move(entry));
  }
  if (req.objects.empty()) return WrongShape("Delete lists no Object");
  return req;
}

Result<CreateBucketConfiguration> ParseCreateBucketConfiguration(std::string_view body) {
  CAIRN_ASSIGN_OR_RETURN(XmlNode root, ParseXml(body));
  if (root.name != "CreateBucketConfiguration") return WrongShape("root element is not CreateBucketConfiguration");
  CreateBucketConfiguration config;
  bool seen = false;
  for (const XmlNode& child : root.children) {
    if (child.name != "LocationConstraint") continue;
    if (seen) return WrongShape("CreateBucketConfiguration repeats LocationConstraint");
    if (!child.children.empty()) return WrongShape("LocationConstraint has child elements");
    seen = true;
    config.location_constraint = std::string(TrimXmlSpace(child.text));
  }
  return config;
}

}  // namespace cairn::gateway
