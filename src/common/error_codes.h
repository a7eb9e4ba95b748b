// The one table of Cairn's error codes, grouped by subsystem.
//
// Each row is X(Name, value, "description"). A code exists only where a caller acts differently
// on it; everything else is kInternal or kIOError with a message. Values are stable: they travel
// in RPCs between nodes and appear in logs, so a value is never reused for another meaning.
// The S3 gateway maps these codes to S3 error codes in one place, reading this table.
#pragma once

// clang-format off
#define CAIRN_ERROR_CODES(X)                                                                   \
  /* generic */                                                                                \
  X(Ok,               0,    "ok")                                                              \
  X(InvalidArgument,  1,    "invalid argument")                                                \
  X(NotFound,         2,    "not found")                                                       \
  X(AlreadyExists,    3,    "already exists")                                                  \
  X(Internal,         4,    "internal error")                                                  \
  X(NotSupported,     5,    "not supported")                                                   \
  X(Cancelled,        6,    "cancelled")                                                       \
  X(Timeout,          7,    "timed out")                                                       \
  X(Busy,             8,    "busy, retry later")                                               \
  /* io: the storage device said no */                                                        \
  X(IOError,          100,  "i/o error")                                                       \
  X(NoSpace,          101,  "no space left on device")                                         \
  X(ReadOnly,         102,  "read-only: writes refused after an earlier failure")              \
  /* data integrity */                                                                         \
  X(Corruption,       200,  "data corruption detected")                                        \
  X(ChecksumMismatch, 201,  "checksum supplied by the caller does not match the data")         \
  /* config */                                                                                 \
  X(ConfigError,      300,  "configuration error")
// clang-format on
