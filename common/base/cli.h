// A small command-line parser shared by every rdf executable, so they all
// behave alike: "--name value" or "--name=value", --help prints usage to
// stdout and exits 0, and a bad argument prints the problem and the usage to
// stderr and exits 2.
#ifndef RDF_COMMON_BASE_CLI_H_
#define RDF_COMMON_BASE_CLI_H_

#include <cstdint>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace rdf::cli {

class Parser {
 public:
  // `usage` is the first line ("rdf-load --config FILE [options]");
  // `description` follows it.
  Parser(std::string usage, std::string description);

  void AddString(std::string name, std::string* value, std::string help);
  void AddInt(std::string name, int64_t* value, std::string help);
  void AddUint(std::string name, uint64_t* value, std::string help);
  void AddDouble(std::string name, double* value, std::string help);
  void AddBool(std::string name, bool* value, std::string help);  // a switch
  // Marks an option as required.
  void Require(std::string name);

  // Parses argv. Positional arguments are returned in order (e.g. rdfcom's
  // command words). Exits as described above on --help or an error.
  std::vector<std::string> Parse(int argc, char** argv);

  // Prints "<problem>\n\n<usage>" to stderr and exits 2.
  [[noreturn]] void Fail(absl::string_view problem) const;
  std::string Usage() const;

 private:
  struct Option {
    std::string name;
    std::string help;
    bool is_switch = false;
    bool required = false;
    bool seen = false;
    std::string default_text;
    std::function<bool(absl::string_view)> set;
  };
  Option* Find(absl::string_view name);
  std::string usage_;
  std::string description_;
  std::vector<Option> options_;
};

}  // namespace rdf::cli

#endif  // RDF_COMMON_BASE_CLI_H_
