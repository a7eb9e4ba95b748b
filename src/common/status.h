// Status: the outcome of an operation, an error code from error_codes.h and a message.
//
// Errors are values in Cairn: no exception crosses a module boundary. Library exceptions are
// caught in the adapter that wraps the library and turned into a Status there. A Status is
// cheap to return when OK (no allocation). Thread-safety: a Status is a value; distinct objects
// may be used from distinct threads freely.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "common/error_codes.h"

namespace cairn {

enum class StatusCode : uint16_t {
#define CAIRN_ENUM_ROW(name, value, desc) k##name = value,
  CAIRN_ERROR_CODES(CAIRN_ENUM_ROW)
#undef CAIRN_ENUM_ROW
};

// Returns the code's name without the leading k, e.g. "NotFound".
std::string_view StatusCodeName(StatusCode code);
// Returns the description from the table.
std::string_view StatusCodeDescription(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string_view message);

  static Status OK() { return Status(); }
#define CAIRN_FACTORY_ROW(name, value, desc) \
  static Status name(std::string_view message = {}) { return Status(StatusCode::k##name, message); }
  CAIRN_ERROR_CODES(CAIRN_FACTORY_ROW)
#undef CAIRN_FACTORY_ROW

  // Builds a Status from an errno value: ENOSPC becomes kNoSpace, EROFS kReadOnly, ENOENT
  // kNotFound, EEXIST kAlreadyExists, everything else kIOError. `context` names the operation.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const;
  // "Corruption: segment 3 offset 4096: bad header crc"
  std::string ToString() const;

  // Same code and same message.
  friend bool operator==(const Status& a, const Status& b) { return a.code_ == b.code_ && a.message() == b.message(); }

  // Returns a copy with `context` prepended to the message.
  Status WithContext(std::string_view context) const;

#define CAIRN_PREDICATE_ROW(name, value, desc) \
  bool Is##name() const { return code_ == StatusCode::k##name; }
  CAIRN_ERROR_CODES(CAIRN_PREDICATE_ROW)
#undef CAIRN_PREDICATE_ROW

 private:
  StatusCode code_ = StatusCode::kOk;
  // Null when there is no message, so that an OK status costs no allocation.
  std::shared_ptr<const std::string> message_;
};

inline std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

}  // namespace cairn

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define CAIRN_RETURN_IF_ERROR(expr)             \
  do {                                          \
    ::cairn::Status _cairn_status = (expr);     \
    if (!_cairn_status.ok()) return _cairn_status; \
  } while (0)
