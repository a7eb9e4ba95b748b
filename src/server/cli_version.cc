// `cairn version`: prints the release, the compiler and whether assertions are compiled in.
//
// Thread-safety: see cli.h.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "server/cli.h"

namespace cairn::cli {
namespace {

// Bumped by hand at each release.
constexpr const char* kCairnVersion = "0.1.0-dev";

#ifdef NDEBUG
constexpr const char* kAssertions = "off";
#else
constexpr const char* kAssertions = "on";
#endif

}  // namespace

void AddVersionCommand(CLI::App& root, CommandAction& action) {
  CLI::App* version = root.add_subcommand("version", "Print the version of cairn and how it was built");
  version->callback([&action] {
    action = [] {
      std::printf("cairn %s\ncompiler: %s, C++ %ld, assertions %s\n", kCairnVersion, __VERSION__,
                  static_cast<long>(__cplusplus), kAssertions);
      return 0;
    };
  });
}

}  // namespace cairn::cli
