// The one assertion the fuzz targets use. A fuzz target checks properties of what the code under
// test returns, not only that it returns: a violated property prints what was expected and aborts,
// which libFuzzer reports as a crash and saves the input as an artifact. Unlike assert(), it is
// active in every build type (the fuzz preset builds RelWithDebInfo, with NDEBUG).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)

// ASCII lowercase, written independently of the code under test (the targets compare against it).
inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}
