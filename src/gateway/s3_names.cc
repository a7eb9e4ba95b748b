// Bucket name and object key rules, listing URL encoding; see s3_names.h.
// Thread-safety: pure functions.
#include "gateway/s3_names.h"

#include <cstdint>

#include "gateway/text.h"

namespace cairn::gateway {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Four non-empty groups of digits separated by dots, e.g. 192.168.5.4.
bool LooksLikeIpv4(std::string_view name) {
  int groups = 0;
  size_t i = 0;
  while (i <= name.size()) {
    size_t digits = 0;
    while (i < name.size() && IsAsciiDigit(name[i])) ++i, ++digits;
    if (digits == 0) return false;
    ++groups;
    if (i == name.size()) break;
    if (name[i] != '.') return false;
    ++i;
  }
  return groups == 4;
}

Status BadBucket(std::string_view name, std::string_view reason) {
  std::string msg = "bucket name '";
  msg.append(name);
  msg.append("': ");
  msg.append(reason);
  return Status::InvalidArgument(msg);
}

constexpr std::string_view kReservedPrefixes[] = {"xn--", "sthree-", "amzn-s3-demo-"};
constexpr std::string_view kReservedSuffixes[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"};

}  // namespace

Status ValidateBucketName(std::string_view name) {
  if (name.size() < kMinBucketNameLength || name.size() > kMaxBucketNameLength) {
    return BadBucket(name, "must be 3 to 63 characters long");
  }
  for (const char c : name) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-') {
      return BadBucket(name, "only lowercase letters, digits, '.' and '-' are allowed");
    }
  }
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) {
    return BadBucket(name, "must begin and end with a letter or digit");
  }
  if (name.find("..") != std::string_view::npos) return BadBucket(name, "must not contain \"..\"");
  if (name.find(".-") != std::string_view::npos || name.find("-.") != std::string_view::npos) {
    return BadBucket(name, "must not contain \".-\" or \"-.\"");
  }
  if (LooksLikeIpv4(name)) return BadBucket(name, "must not be formatted as an IP address");
  for (const std::string_view prefix : kReservedPrefixes) {
    if (name.starts_with(prefix)) return BadBucket(name, "uses a reserved prefix");
  }
  for (const std::string_view suffix : kReservedSuffixes) {
    if (name.ends_with(suffix)) return BadBucket(name, "uses a reserved suffix");
  }
  return Status::OK();
}

Status ValidateObjectKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("object key is empty");
  if (key.size() > kMaxObjectKeyBytes) {
    return Status::InvalidArgument("object key is " + std::to_string(key.size()) + " bytes, more than 1024");
  }
  if (!IsValidUtf8(key)) return Status::InvalidArgument("object key is not valid UTF-8");
  return Status::OK();
}

std::string UrlEncodeListingValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsAsciiDigit(c) || c == '.' || c == '-' || c == '_' ||
        c == '*' || c == '/') {
      out.push_back(c);
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  return out;
}

}  // namespace cairn::gateway
