// What the fuzz targets share: a check that aborts (so libFuzzer, and the
// replay driver under ctest, report a property violation like a crash), and
// a temporary folder of the process's own.
#ifndef RDF_TESTS_FUZZ_FUZZ_CHECK_H_
#define RDF_TESTS_FUZZ_FUZZ_CHECK_H_

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

// Aborts with `what` when `cond` is false. For properties the code promises
// (a repaired trail reads back what was appended), never for mere errors:
// every error status on fuzzed input is fine.
#define RDF_FUZZ_CHECK(cond, what)                                     \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s (%s)\n",      \
                   __FILE__, __LINE__, #cond, what);                   \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

namespace rdf::fuzz {

// "<temp>/<prefix>.<pid>", made on the first call and removed when the
// process exits (the replay under ctest, a fuzzer). One per process: the
// prefix of the first call names it.
inline const std::string& ProcessTempDir(const char* prefix) {
  static const std::string* dir = [prefix] {
    auto* d = new std::string(std::filesystem::temp_directory_path() /
                              (std::string(prefix) + "." + std::to_string(getpid())));
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return d;
  }();
  return *dir;
}

}  // namespace rdf::fuzz

#endif  // RDF_TESTS_FUZZ_FUZZ_CHECK_H_
