// What the fuzz targets share: a check that aborts (so libFuzzer, and the
// replay driver under ctest, report a property violation like a crash).
#ifndef RDF_TESTS_FUZZ_FUZZ_CHECK_H_
#define RDF_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

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

#endif  // RDF_TESTS_FUZZ_FUZZ_CHECK_H_
