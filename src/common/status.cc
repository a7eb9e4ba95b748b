#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace cairn {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
#define CAIRN_NAME_ROW(name, value, desc) \
  case StatusCode::k##name:               \
    return #name;
    CAIRN_ERROR_CODES(CAIRN_NAME_ROW)
#undef CAIRN_NAME_ROW
  }
  return "Unknown";
}

std::string_view StatusCodeDescription(StatusCode code) {
  switch (code) {
#define CAIRN_DESC_ROW(name, value, desc) \
  case StatusCode::k##name:               \
    return desc;
    CAIRN_ERROR_CODES(CAIRN_DESC_ROW)
#undef CAIRN_DESC_ROW
  }
  return "unknown error";
}

Status::Status(StatusCode code, std::string_view message) : code_(code) {
  if (!message.empty()) message_ = std::make_shared<const std::string>(message);
}

Status Status::FromErrno(int err, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return Status(StatusCode::kNoSpace, msg);
    case EROFS:
      return Status(StatusCode::kReadOnly, msg);
    case ENOENT:
      return Status(StatusCode::kNotFound, msg);
    case EEXIST:
      return Status(StatusCode::kAlreadyExists, msg);
    case EINVAL:
      return Status(StatusCode::kInvalidArgument, msg);
    case EOPNOTSUPP:
      return Status(StatusCode::kNotSupported, msg);
    default:
      return Status(StatusCode::kIOError, msg);
  }
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return message_ ? *message_ : kEmpty;
}

std::string Status::ToString() const {
  std::string out(StatusCodeName(code_));
  if (message_) {
    out += ": ";
    out += *message_;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  if (message_) {
    msg += ": ";
    msg += *message_;
  }
  return Status(code_, msg);
}

}  // namespace cairn
