// A fresh, empty folder per test: <TempDir>/<suite>.<pid>/<test name>.
#ifndef RDF_COMMON_TESTING_TEMP_DIR_H_
#define RDF_COMMON_TESTING_TEMP_DIR_H_

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace rdf::testing {

// Creates (emptying first) the folder for the running test.
inline std::string MakeTestDir(const std::string& suite) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              absl::StrCat(suite, ".", getpid()) / info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// Removes what MakeTestDir made (the per-process parent too).
inline void RemoveTestDir(const std::string& dir) {
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

}  // namespace rdf::testing

#endif  // RDF_COMMON_TESTING_TEMP_DIR_H_
