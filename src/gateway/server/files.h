// Small files of the data directory (root credentials, the server key): read whole, and created
// once, durably, never over an existing file.
// Thread-safety: functions on distinct paths may run concurrently.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "common/status.h"

namespace cairn::gateway::server {

// The file's contents (at most 1 MiB). NotFound when it does not exist; IOError (with the
// reason) when it exists but cannot be read, which callers must not treat as absence.
Result<std::string> ReadSmallFile(const std::string& path);

// Creates `path` with `contents` and `mode`: written to a temporary file, fsynced, linked into
// place (AlreadyExists if `path` appeared meanwhile: nothing is overwritten), and the directory
// fsynced.
Status CreateFileDurably(const std::string& path, const std::string& contents, mode_t mode);

}  // namespace cairn::gateway::server
