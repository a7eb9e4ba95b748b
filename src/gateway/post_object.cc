// Browser POST uploads: the streaming multipart/form-data parser, the POST policy document and
// the form's SigV4 signature. See post_object.h for the contract. Thread-safety: a parser object
// is used by one thread; the free functions share no state.
#include "gateway/post_object.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "gateway/s3_request.h"
#include "gateway/text.h"

namespace cairn::gateway {
namespace {

// RFC 2046 section 5.1.1: a boundary is 1 to 70 characters.
constexpr size_t kMaxBoundaryLength = 70;
constexpr std::string_view kFormDataType = "multipart/form-data";
constexpr std::string_view kFormDataDisposition = "form-data";
constexpr std::string_view kFileFieldName = "file";

// The policy's signing fields (lowercase form field names).
constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr size_t kSignatureHexLength = 2 * crypto::kSha256Size;

constexpr std::string_view kPolicyDenied = "Invalid according to Policy: ";
constexpr std::string_view kIgnoredFieldPrefix = "x-ignore-";

// RFC 7230 tchar.
bool IsTokenChar(char c) {
  constexpr std::string_view kPunctuation = "!#$%&'*+-.^_`|~";
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsAsciiDigit(c) ||
         kPunctuation.find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar); }

// "form-data" or "multipart/form-data".
bool IsTokenOrMediaType(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return IsToken(s);
  return IsToken(s.substr(0, slash)) && IsToken(s.substr(slash + 1));
}

// ---- Header values with parameters: `type *( ";" name "=" value )` ----------------------------

struct HeaderParam {
  std::string name;  // lowercase
  std::string value;
};

struct ParameterizedValue {
  std::string type;  // lowercase
  std::vector<HeaderParam> params;
};

// Reads a parameter value at the start of `*s` and removes it (and the OWS after it). A quoted
// value may escape '"' and '\' with a backslash; a backslash before any other character is kept
// as it is, because browsers send Windows paths ("C:\dir\a.txt") unescaped. An unquoted value is
// taken up to the next ';' and trimmed, which also admits the boundaries some clients send
// unquoted in spite of RFC 2046 ("a=b", "x/y"). nullopt when malformed.
std::optional<std::string> ReadParamValue(std::string_view* s) {
  std::string value;
  if (s->empty() || s->front() != '"') {
    const size_t semi = s->find(';');
    const std::string_view raw = TrimHttpSpace(s->substr(0, semi));
    if (raw.find('"') != std::string_view::npos) return std::nullopt;
    s->remove_prefix(semi == std::string_view::npos ? s->size() : semi);
    return std::string(raw);
  }
  size_t i = 1;
  while (true) {
    if (i >= s->size()) return std::nullopt;  // no closing quote
    const char c = (*s)[i];
    if (c == '"') break;
    if (c == '\\' && i + 1 < s->size() && ((*s)[i + 1] == '"' || (*s)[i + 1] == '\\')) {
      value.push_back((*s)[i + 1]);
      i += 2;
      continue;
    }
    value.push_back(c);
    ++i;
  }
  s->remove_prefix(i + 1);
  *s = TrimHttpSpace(*s);
  if (!s->empty() && s->front() != ';') return std::nullopt;  // text after the closing quote
  return value;
}

// Parses a Content-Type or Content-Disposition value. Empty parameters (";;", a trailing ';')
// are skipped; spaces around '=' are tolerated. nullopt when malformed.
std::optional<ParameterizedValue> ParseParameterized(std::string_view text) {
  ParameterizedValue out;
  const size_t semi = text.find(';');
  out.type = AsciiLower(TrimHttpSpace(text.substr(0, semi)));
  if (!IsTokenOrMediaType(out.type)) return std::nullopt;
  if (semi == std::string_view::npos) return out;
  text.remove_prefix(semi);
  while (!text.empty()) {
    text.remove_prefix(1);  // the ';'
    text = TrimHttpSpace(text);
    if (text.empty() || text.front() == ';') continue;
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view name = TrimHttpSpace(text.substr(0, eq));
    if (!IsToken(name)) return std::nullopt;
    text.remove_prefix(eq + 1);
    text = TrimHttpSpace(text);
    std::optional<std::string> value = ReadParamValue(&text);
    if (!value) return std::nullopt;
    out.params.push_back({AsciiLower(name), std::move(*value)});
  }
  return out;
}

// The value of parameter `name`; InvalidArgument when it appears more than once.
Result<std::optional<std::string>> UniqueParam(const ParameterizedValue& v, std::string_view name,
                                               std::string_view header) {
  std::optional<std::string> found;
  for (const HeaderParam& p : v.params) {
    if (p.name != name) continue;
    if (found) return Status::InvalidArgument(std::string(header) + " repeats the " + std::string(name) + " parameter");
    found = p.value;
  }
  return found;
}

// Visible ASCII and inner spaces. RFC 2046 allows fewer characters, but all that matters to the
// parser is that the delimiter holds no CR or LF (see State::Scan) and fits in one line.
bool IsValidBoundary(std::string_view b) {
  if (b.empty() || b.size() > kMaxBoundaryLength || b.back() == ' ') return false;
  return std::all_of(b.begin(), b.end(), [](char c) { return c >= ' ' && c <= '~'; });
}

}  // namespace

Result<std::string> FormBoundary(std::string_view content_type) {
  const std::optional<ParameterizedValue> parsed = ParseParameterized(content_type);
  if (!parsed) return Status::InvalidArgument("the Content-Type header is malformed");
  if (parsed->type != kFormDataType) return Status::InvalidArgument("a POST upload must be multipart/form-data");
  CAIRN_ASSIGN_OR_RETURN(const std::optional<std::string> boundary, UniqueParam(*parsed, "boundary", "Content-Type"));
  if (!boundary || boundary->empty()) return Status::InvalidArgument("multipart/form-data without a boundary");
  if (!IsValidBoundary(*boundary)) {
    return Status::InvalidArgument("the multipart boundary must be 1 to 70 printable ASCII characters");
  }
  return *boundary;
}

// ---- MultipartFormParser ----------------------------------------------------------------------
//
// The body is scanned for the delimiter "\r\n--" + boundary. The first boundary may open the body
// without a CRLF before it, so the scan starts as if "\r\n" had already been matched. Because the
// boundary holds no CR, a partial match can only restart at a '\r', so the bytes held back are
// always a prefix of the delimiter: they need no buffer of their own and are released from the
// delimiter string when the match fails. RFC 2046 forbids the delimiter inside a part, so a match
// always ends the part; what follows must be "--" (the close) or padding and CRLF.

struct MultipartFormParser::State {
  enum class Phase {
    kPreamble,          // before the first delimiter; bytes discarded
    kDelimiterEnd,      // just after a delimiter: "--" closes, else padding then CRLF
    kCloseDash,         // one '-' of the closing "--" seen
    kPadding,           // transport padding (spaces, tabs) before the CRLF
    kPaddingLf,         // the CR of the boundary line's CRLF seen
    kHeaders,           // a part's header lines, up to the empty line
    kField,             // a field's value, until the delimiter
    kFile,              // the file's bytes, until the delimiter
    kSkip,              // parts after the file, scanned only for the delimiter
    kSkipDelimiterEnd,  // just after a delimiter in kSkip: "--" closes, anything else is skipped
    kSkipCloseDash,     // one '-' after a delimiter in kSkip
    kClosed,            // the closing delimiter was seen; the epilogue is ignored
    kFailed,            // `error` is returned by every call
  };
  // The header a folded continuation line belongs to.
  enum class LastHeader { kNone, kOther, kDisposition, kContentType };

  State(std::string boundary, FormLimits l, Callbacks c)
      : delimiter("\r\n--" + boundary), limits(l), callbacks(std::move(c)) {}

  Status Consume(std::string_view data);
  Status Scan(std::string_view data, size_t* consumed, bool* found);
  Status Emit(std::string_view bytes);
  Status AppendFieldBytes(std::string_view bytes);
  Status OnDelimiter();
  Status HeaderByte(char c);
  Status HeaderLine();
  Status EndHeaders();
  Status BoundaryLineByte(char c);

  const std::string delimiter;
  const FormLimits limits;
  Callbacks callbacks;
  Phase phase = Phase::kPreamble;
  Status error;
  bool finished = false;

  // Delimiter bytes matched at the end of the input consumed so far. They are held back: part of
  // the data if the match fails, of the delimiter if it succeeds. 2 at the start: the virtual CRLF.
  size_t matched = 2;

  // The part whose headers are being read.
  std::string line;         // the current header line, without its CRLF
  bool line_cr = false;     // the line's CR has been seen, its LF is due
  size_t header_bytes = 0;  // bytes of this part's header block so far
  LastHeader last_header = LastHeader::kNone;
  std::optional<std::string> disposition;
  std::optional<std::string> content_type;

  // Fields.
  std::string field_name;
  std::string field_value;
  size_t fields = 0;
  size_t total_field_bytes = 0;  // names and values of all fields so far

  bool file_seen = false;
  bool file_done = false;
};

Status MultipartFormParser::State::AppendFieldBytes(std::string_view bytes) {
  // The result must not depend on how the body was split into Feed calls, so when both limits
  // are crossed by one append, the one crossed at the earlier byte is reported (the per-field
  // limit on a tie), as if the bytes had arrived one at a time.
  const size_t field_room = limits.max_field_bytes - std::min(limits.max_field_bytes, field_value.size());
  const size_t total_room = limits.max_total_field_bytes - std::min(limits.max_total_field_bytes, total_field_bytes);
  if (bytes.size() > field_room && field_room <= total_room) {
    return Status::InvalidArgument("form field '" + field_name + "' is longer than " +
                                   std::to_string(limits.max_field_bytes) + " bytes");
  }
  if (bytes.size() > total_room) {
    return Status::InvalidArgument("the form fields hold more than " + std::to_string(limits.max_total_field_bytes) +
                                   " bytes");
  }
  field_value.append(bytes);
  total_field_bytes += bytes.size();
  return Status::OK();
}

Status MultipartFormParser::State::Emit(std::string_view bytes) {
  if (bytes.empty()) return Status::OK();
  switch (phase) {
    case Phase::kField:
      return AppendFieldBytes(bytes);
    case Phase::kFile:
      if (!callbacks.on_file_data) return Status::OK();
      return callbacks.on_file_data(crypto::AsBytes(bytes));
    default:  // preamble, parts after the file
      return Status::OK();
  }
}

// Scans for the delimiter, emitting the content before it. Sets `*found` and `*consumed` (bytes
// up to and including the delimiter) when it ends in `data`; otherwise consumes all of `data`.
Status MultipartFormParser::State::Scan(std::string_view data, size_t* consumed, bool* found) {
  // Delimiter bytes matched before `data`: held back by an earlier call, so not in `data`.
  size_t carried = matched;
  for (size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == delimiter[matched]) {
      if (++matched < delimiter.size()) continue;
      const size_t delimiter_in_data = delimiter.size() - carried;
      CAIRN_RETURN_IF_ERROR(Emit(data.substr(0, i + 1 - delimiter_in_data)));
      matched = 0;
      *consumed = i + 1;
      *found = true;
      return Status::OK();
    }
    if (matched > 0) {
      // The partial match was content. Bytes of it from this call are emitted with the rest of
      // `data`; bytes carried from earlier calls come first and are emitted now.
      if (carried > 0) CAIRN_RETURN_IF_ERROR(Emit(std::string_view(delimiter).substr(0, carried)));
      carried = 0;
      matched = 0;
    }
    if (c == delimiter[0]) matched = 1;
  }
  // matched >= carried: either no match failed (carried bytes still part of it) or carried is 0.
  CAIRN_RETURN_IF_ERROR(Emit(data.substr(0, data.size() - (matched - carried))));
  *consumed = data.size();
  *found = false;
  return Status::OK();
}

Status MultipartFormParser::State::OnDelimiter() {
  switch (phase) {
    case Phase::kField:
      if (callbacks.on_field) CAIRN_RETURN_IF_ERROR(callbacks.on_field(std::move(field_name), std::move(field_value)));
      field_name.clear();
      field_value.clear();
      phase = Phase::kDelimiterEnd;
      return Status::OK();
    case Phase::kFile:
      file_done = true;
      phase = Phase::kSkipDelimiterEnd;
      if (callbacks.on_file_end) return callbacks.on_file_end();
      return Status::OK();
    case Phase::kSkip:
      phase = Phase::kSkipDelimiterEnd;
      return Status::OK();
    default:  // kPreamble
      phase = Phase::kDelimiterEnd;
      return Status::OK();
  }
}

// One byte of the line that follows a delimiter before the file: "--" or padding and CRLF.
Status MultipartFormParser::State::BoundaryLineByte(char c) {
  switch (phase) {
    case Phase::kDelimiterEnd:
      if (c == '-') {
        phase = Phase::kCloseDash;
        return Status::OK();
      }
      phase = Phase::kPadding;
      return BoundaryLineByte(c);
    case Phase::kCloseDash:
      if (c != '-') return Status::InvalidArgument("a multipart boundary is followed by a single '-'");
      phase = Phase::kClosed;
      return Status::OK();
    case Phase::kPadding:
      if (IsHttpSpace(c)) return Status::OK();
      if (c != '\r') return Status::InvalidArgument("a multipart boundary is followed by text on its line");
      phase = Phase::kPaddingLf;
      return Status::OK();
    default:  // kPaddingLf
      if (c != '\n') return Status::InvalidArgument("a multipart boundary line ends in a bare CR");
      phase = Phase::kHeaders;
      line.clear();
      line_cr = false;
      header_bytes = 0;
      last_header = LastHeader::kNone;
      disposition.reset();
      content_type.reset();
      return Status::OK();
  }
}

Status MultipartFormParser::State::HeaderByte(char c) {
  if (++header_bytes > limits.max_part_header_bytes) {
    return Status::InvalidArgument("a form part's headers are longer than " +
                                   std::to_string(limits.max_part_header_bytes) + " bytes");
  }
  if (line_cr) {
    if (c != '\n') return Status::InvalidArgument("a form part header holds a bare CR");
    line_cr = false;
    return HeaderLine();
  }
  if (c == '\r') {
    line_cr = true;
  } else if (c == '\n') {
    return Status::InvalidArgument("a form part header line ends in a bare LF");
  } else {
    line.push_back(c);
  }
  return Status::OK();
}

Status MultipartFormParser::State::HeaderLine() {
  const std::string text = std::exchange(line, std::string());
  if (text.empty()) return EndHeaders();
  if (IsHttpSpace(text.front())) {
    // An obsolete folded continuation of the previous header (RFC 7230 section 3.2.4).
    if (last_header == LastHeader::kNone) return Status::InvalidArgument("a form part's headers begin with a fold");
    std::optional<std::string>* target = last_header == LastHeader::kDisposition   ? &disposition
                                         : last_header == LastHeader::kContentType ? &content_type
                                                                                   : nullptr;
    if (target != nullptr) (**target).append(" ").append(TrimHttpSpace(text));
    return Status::OK();
  }
  const size_t colon = text.find(':');
  if (colon == std::string::npos || !IsToken(std::string_view(text).substr(0, colon))) {
    return Status::InvalidArgument("a form part has a malformed header line");
  }
  const std::string name = AsciiLower(std::string_view(text).substr(0, colon));
  const std::string_view value = TrimHttpSpace(std::string_view(text).substr(colon + 1));
  std::optional<std::string>* target = nullptr;
  if (name == "content-disposition") {
    last_header = LastHeader::kDisposition;
    target = &disposition;
  } else if (name == "content-type") {
    last_header = LastHeader::kContentType;
    target = &content_type;
  } else {
    last_header = LastHeader::kOther;
    return Status::OK();
  }
  if (target->has_value()) return Status::InvalidArgument("a form part repeats its " + name + " header");
  *target = std::string(value);
  return Status::OK();
}

Status MultipartFormParser::State::EndHeaders() {
  if (!disposition) return Status::InvalidArgument("a form part has no Content-Disposition header");
  const std::optional<ParameterizedValue> parsed = ParseParameterized(*disposition);
  if (!parsed || parsed->type != kFormDataDisposition) {
    return Status::InvalidArgument("a form part's Content-Disposition is not form-data with parameters");
  }
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> name, UniqueParam(*parsed, "name", "Content-Disposition"));
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> filename, UniqueParam(*parsed, "filename", "Content-Disposition"));
  if (!name || name->empty()) return Status::InvalidArgument("a form part's Content-Disposition has no name");

  if (EqualsIgnoreCase(*name, kFileFieldName)) {
    file_seen = true;
    phase = Phase::kFile;
    if (!callbacks.on_file_begin) return Status::OK();
    return callbacks.on_file_begin(filename.value_or(""), content_type.value_or(""));
  }
  if (++fields > limits.max_fields) {
    return Status::InvalidArgument("the form has more than " + std::to_string(limits.max_fields) + " fields");
  }
  if (name->size() > limits.max_total_field_bytes - std::min(limits.max_total_field_bytes, total_field_bytes)) {
    return Status::InvalidArgument("the form fields hold more than " + std::to_string(limits.max_total_field_bytes) +
                                   " bytes");
  }
  total_field_bytes += name->size();
  field_name = std::move(*name);
  field_value.clear();
  phase = Phase::kField;
  return Status::OK();
}

Status MultipartFormParser::State::Consume(std::string_view data) {
  while (!data.empty()) {
    switch (phase) {
      case Phase::kPreamble:
      case Phase::kField:
      case Phase::kFile:
      case Phase::kSkip: {
        size_t consumed = 0;
        bool found = false;
        CAIRN_RETURN_IF_ERROR(Scan(data, &consumed, &found));
        data.remove_prefix(consumed);
        if (found) CAIRN_RETURN_IF_ERROR(OnDelimiter());
        break;
      }
      case Phase::kDelimiterEnd:
      case Phase::kCloseDash:
      case Phase::kPadding:
      case Phase::kPaddingLf:
        CAIRN_RETURN_IF_ERROR(BoundaryLineByte(data.front()));
        data.remove_prefix(1);
        break;
      case Phase::kHeaders:
        CAIRN_RETURN_IF_ERROR(HeaderByte(data.front()));
        data.remove_prefix(1);
        break;
      case Phase::kSkipDelimiterEnd:
      case Phase::kSkipCloseDash:
        // Not "--": another ignored part begins, and this byte is its content (it may start a
        // delimiter, so it is scanned again rather than consumed here).
        if (data.front() != '-') {
          phase = Phase::kSkip;
          break;
        }
        phase = phase == Phase::kSkipDelimiterEnd ? Phase::kSkipCloseDash : Phase::kClosed;
        data.remove_prefix(1);
        break;
      case Phase::kClosed:
        return Status::OK();  // the epilogue
      case Phase::kFailed:
        return error;
    }
  }
  return Status::OK();
}

MultipartFormParser::MultipartFormParser(std::string boundary, FormLimits limits, Callbacks callbacks)
    : state_(std::make_shared<State>(boundary, limits, std::move(callbacks))) {
  // The scan relies on the boundary having no CR (see above); FormBoundary guarantees that, and
  // any other boundary fails every call rather than being misparsed.
  if (!IsValidBoundary(boundary)) {
    state_->phase = State::Phase::kFailed;
    state_->error = Status::InvalidArgument("the multipart boundary must be 1 to 70 printable ASCII characters");
  }
}

Status MultipartFormParser::Feed(std::span<const std::byte> data) {
  State& s = *state_;
  if (s.phase == State::Phase::kFailed) return s.error;
  if (s.finished) return Status::InvalidArgument("form body bytes after its end");
  Status status = s.Consume(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  if (!status.ok()) {
    s.phase = State::Phase::kFailed;
    s.error = status;
  }
  return status;
}

Status MultipartFormParser::Finish() {
  State& s = *state_;
  if (s.phase == State::Phase::kFailed) return s.error;
  s.finished = true;
  if (s.phase != State::Phase::kClosed) {
    s.error = Status::InvalidArgument("the form body ends before its closing boundary");
  } else if (!s.file_done) {
    s.error = Status::InvalidArgument("the form has no file field");
  } else {
    return Status::OK();
  }
  s.phase = State::Phase::kFailed;
  return s.error;
}

bool MultipartFormParser::file_seen() const { return state_->file_seen; }

// ---- POST policy ------------------------------------------------------------------------------

namespace {

using Json = nlohmann::json;

Status BadPolicy(std::string_view why) { return Status::InvalidPolicyDocument("Invalid Policy: " + std::string(why)); }

// A content-length-range bound: a non-negative integer, as a JSON number or a decimal string.
std::optional<uint64_t> LengthBound(const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t n = v.get<int64_t>();
    if (n < 0) return std::nullopt;
    return static_cast<uint64_t>(n);
  }
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  // 19 digits always fit in uint64_t.
  if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), IsAsciiDigit)) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) n = n * 10 + static_cast<uint64_t>(c - '0');
  return n;
}

Result<PostPolicyCondition> ParseArrayCondition(const Json& c) {
  if (c.size() != 3 || !c[0].is_string()) {
    return BadPolicy("a condition array must be [operator, field, value] or [content-length-range, min, max]");
  }
  const std::string op = AsciiLower(c[0].get_ref<const std::string&>());
  PostPolicyCondition out;
  if (op == "content-length-range") {
    const std::optional<uint64_t> min = LengthBound(c[1]);
    const std::optional<uint64_t> max = LengthBound(c[2]);
    if (!min || !max) return BadPolicy("content-length-range bounds must be non-negative integers");
    if (*min > *max) return BadPolicy("content-length-range has its minimum above its maximum");
    out.kind = PostPolicyCondition::Kind::kContentLengthRange;
    out.min = *min;
    out.max = *max;
    return out;
  }
  if (op == "eq") {
    out.kind = PostPolicyCondition::Kind::kEquals;
  } else if (op == "starts-with") {
    out.kind = PostPolicyCondition::Kind::kStartsWith;
  } else {
    return BadPolicy("unknown condition operator '" + c[0].get_ref<const std::string&>() + "'");
  }
  if (!c[1].is_string() || !c[2].is_string()) return BadPolicy("a condition's field and value must be strings");
  const std::string& field = c[1].get_ref<const std::string&>();
  if (field.size() < 2 || field.front() != '$') return BadPolicy("a condition's field must be '$' and a name");
  out.field = AsciiLower(std::string_view(field).substr(1));
  out.value = c[2].get_ref<const std::string&>();
  return out;
}

Result<PostPolicyCondition> ParseCondition(const Json& c) {
  if (c.is_array()) return ParseArrayCondition(c);
  if (!c.is_object()) return BadPolicy("a condition must be an object or an array");
  // S3's own rule and wording.
  if (c.size() != 1) {
    return BadPolicy("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.");
  }
  const auto it = c.begin();
  if (!it.value().is_string()) return BadPolicy("the value of a simple condition must be a string");
  if (it.key().empty()) return BadPolicy("a simple condition names an empty field");
  PostPolicyCondition out;
  out.kind = PostPolicyCondition::Kind::kEquals;
  out.field = AsciiLower(it.key());
  out.value = it.value().get_ref<const std::string&>();
  return out;
}

// How the S3 error message names a condition: ["eq", "$key", "value"].
std::string DescribeCondition(const PostPolicyCondition& c) {
  const auto quoted = [](std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') out.push_back('\\');
      out.push_back(ch);
    }
    return out + "\"";
  };
  const char* op = c.kind == PostPolicyCondition::Kind::kEquals ? "eq" : "starts-with";
  return std::string("[\"") + op + "\", " + quoted("$" + c.field) + ", " + quoted(c.value) + "]";
}

bool ConditionHolds(const PostPolicyCondition& c, std::string_view value) {
  if (c.kind == PostPolicyCondition::Kind::kEquals) return value == c.value;
  if (c.field != "content-type") return value.substr(0, c.value.size()) == c.value;
  // A Content-Type condition covers each of a comma-separated list of types.
  while (true) {
    const size_t comma = value.find(',');
    if (TrimHttpSpace(value.substr(0, comma)).substr(0, c.value.size()) != c.value) return false;
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

bool IsExemptField(std::string_view name) {
  return name == "x-amz-signature" || name == "file" || name == "policy" ||
         name.substr(0, kIgnoredFieldPrefix.size()) == kIgnoredFieldPrefix;
}

}  // namespace

Result<PostPolicy> ParsePostPolicy(std::string_view policy_base64) {
  // Some encoders wrap base64 in lines (Ruby's Base64.encode64); the signature covers the text as
  // sent, so dropping the whitespace for decoding only is harmless.
  std::string compact;
  compact.reserve(policy_base64.size());
  for (char c : policy_base64) {
    if (!IsHttpSpace(c) && c != '\r' && c != '\n') compact.push_back(c);
  }
  const std::optional<std::string> text = crypto::Base64Decode(compact);
  if (!text) return BadPolicy("the policy is not valid base64");
  const Json doc = Json::parse(text->begin(), text->end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return BadPolicy("Invalid JSON.");
  if (!doc.is_object()) return BadPolicy("the policy must be a JSON object");

  PostPolicy policy;
  const auto expiration = doc.find("expiration");
  if (expiration == doc.end()) return BadPolicy("Policy missing expiration.");
  if (!expiration->is_string()) return BadPolicy("Invalid 'expiration' value: not a string.");
  const std::optional<IsoInstant> expires = ParseIso8601(expiration->get_ref<const std::string&>());
  const std::optional<int64_t> expires_ms =
      expires ? std::optional<int64_t>(expires->seconds * 1000 + expires->nanos / 1000000) : std::nullopt;
  if (!expires_ms) return BadPolicy("Invalid 'expiration' value: '" + expiration->get_ref<const std::string&>() + "'");
  policy.expiration_unix_ms = *expires_ms;

  const auto conditions = doc.find("conditions");
  if (conditions == doc.end()) return BadPolicy("Policy missing conditions.");
  if (!conditions->is_array()) return BadPolicy("'conditions' must be an array.");
  for (const Json& c : *conditions) {
    CAIRN_ASSIGN_OR_RETURN(PostPolicyCondition condition, ParseCondition(c));
    policy.conditions.push_back(std::move(condition));
  }
  return policy;
}

Status CheckPostPolicy(const PostPolicy& policy, const std::map<std::string, std::string>& fields,
                       int64_t now_unix_ms) {
  // The policy is good up to and including its expiration instant.
  if (now_unix_ms > policy.expiration_unix_ms) {
    return Status::AccessDenied(std::string(kPolicyDenied) + "Policy expired.");
  }
  for (const PostPolicyCondition& c : policy.conditions) {
    if (c.kind == PostPolicyCondition::Kind::kContentLengthRange) continue;
    // A field the form lacks reads as empty, so ["starts-with", "$x", ""] admits its absence.
    const auto it = fields.find(c.field);
    const std::string_view value = it == fields.end() ? std::string_view() : std::string_view(it->second);
    if (!ConditionHolds(c, value)) {
      return Status::AccessDenied(std::string(kPolicyDenied) + "Policy Condition failed: " + DescribeCondition(c));
    }
  }
  for (const auto& field : fields) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const std::string& name = field.first;
    if (IsExemptField(name)) continue;
    const bool named =
        std::any_of(policy.conditions.begin(), policy.conditions.end(), [&](const PostPolicyCondition& c) {
          return c.kind != PostPolicyCondition::Kind::kContentLengthRange && c.field == name;
        });
    if (!named) return Status::AccessDenied(std::string(kPolicyDenied) + "Extra input fields: " + name);
  }
  return Status::OK();
}

std::optional<std::pair<uint64_t, uint64_t>> ContentLengthRange(const PostPolicy& policy) {
  std::optional<std::pair<uint64_t, uint64_t>> range;
  for (const PostPolicyCondition& c : policy.conditions) {
    if (c.kind == PostPolicyCondition::Kind::kContentLengthRange) range.emplace(c.min, c.max);
  }
  return range;
}

Result<PostSignature> VerifyPostSignature(const std::map<std::string, std::string>& fields, const SecretLookup& lookup,
                                          std::string_view region) {
  constexpr std::string_view kNames[] = {"policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                                         "x-amz-signature"};
  const std::string* values[std::size(kNames)] = {};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    const auto it = fields.find(std::string(kNames[i]));
    if (it == fields.end()) {
      return Status::InvalidArgument("a signed POST form needs the field " + std::string(kNames[i]));
    }
    values[i] = &it->second;
  }
  const std::string& policy = *values[0];
  const std::string& algorithm = *values[1];
  const std::string& credential = *values[2];
  const std::string& date = *values[3];
  const std::string& signature = *values[4];

  if (algorithm != kAlgorithm) return Status::InvalidArgument("x-amz-algorithm must be AWS4-HMAC-SHA256");
  SignatureInputs scope;
  if (std::string msg = ParseCredential(credential, &scope); !msg.empty()) {
    return Status::InvalidArgument("x-amz-credential: " + msg);
  }
  if (!ParseAmzDate(date)) return Status::InvalidArgument("x-amz-date must be yyyymmddThhmmssZ");
  const auto is_hex_digit = [](char c) { return HexDigitValue(c) >= 0; };
  if (signature.size() != kSignatureHexLength || !std::all_of(signature.begin(), signature.end(), is_hex_digit)) {
    return Status::InvalidArgument("x-amz-signature must be 64 hex digits");
  }
  // A well-formed credential for another scope: the same check and code as presigned URLs.
  if (std::string msg = CheckScope(scope, region, date); !msg.empty()) {
    return Status::AuthorizationQueryMalformed(msg);
  }

  const std::optional<std::string> secret = lookup(scope.access_key);
  if (!secret) return Status::InvalidAccessKeyId("access key " + scope.access_key + " is not known");
  const SigningKey key = DeriveSigningKey(*secret, scope.date, scope.region, scope.service);
  // The string to sign of a POST form is the base64 policy itself, as sent.
  const std::string expected = ComputeSignature(key, policy);
  if (!crypto::ConstantTimeEquals(expected, signature)) {
    return Status::SignatureDoesNotMatch("the form's signature does not match its policy and the access key's secret");
  }
  return PostSignature{scope.access_key};
}

}  // namespace cairn::gateway
