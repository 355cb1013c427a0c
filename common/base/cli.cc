#include "common/base/cli.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rdf::cli {

Parser::Parser(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void Parser::AddString(std::string name, std::string* value, std::string help) {
  options_.push_back({std::move(name), std::move(help), false, false, false,
                      *value, [value](absl::string_view v) {
                        *value = std::string(v);
                        return true;
                      }});
}

void Parser::AddInt(std::string name, int64_t* value, std::string help) {
  options_.push_back({std::move(name), std::move(help), false, false, false,
                      absl::StrCat(*value), [value](absl::string_view v) {
                        return absl::SimpleAtoi(v, value);
                      }});
}

void Parser::AddUint(std::string name, uint64_t* value, std::string help) {
  options_.push_back({std::move(name), std::move(help), false, false, false,
                      absl::StrCat(*value), [value](absl::string_view v) {
                        return !v.empty() && v[0] != '-' &&
                               absl::SimpleAtoi(v, value);
                      }});
}

void Parser::AddDouble(std::string name, double* value, std::string help) {
  options_.push_back({std::move(name), std::move(help), false, false, false,
                      absl::StrCat(*value), [value](absl::string_view v) {
                        return absl::SimpleAtod(v, value);
                      }});
}

void Parser::AddBool(std::string name, bool* value, std::string help) {
  options_.push_back({std::move(name), std::move(help), true, false, false, "",
                      [value](absl::string_view) {
                        *value = true;
                        return true;
                      }});
}

void Parser::Require(std::string name) {
  if (Option* o = Find(name)) o->required = true;
}

Parser::Option* Parser::Find(absl::string_view name) {
  for (Option& o : options_) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string Parser::Usage() const {
  std::string s = absl::StrCat("usage: ", usage_, "\n\n", description_, "\n\noptions:\n");
  for (const Option& o : options_) {
    std::string left = absl::StrCat("  --", o.name, o.is_switch ? "" : " VALUE");
    if (left.size() < 28) left.resize(28, ' ');
    absl::StrAppend(&s, left, " ", o.help);
    if (o.required) absl::StrAppend(&s, " (required)");
    else if (!o.is_switch && !o.default_text.empty() && o.default_text != "0")
      absl::StrAppend(&s, " (default ", o.default_text, ")");
    absl::StrAppend(&s, "\n");
  }
  absl::StrAppend(&s, "  --help                       print this help and exit\n");
  return s;
}

void Parser::Fail(absl::string_view problem) const {
  std::fprintf(stderr, "%s\n\n%s", std::string(problem).c_str(), Usage().c_str());
  std::exit(2);
}

std::vector<std::string> Parser::Parse(int argc, char** argv) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(Usage().c_str(), stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional.emplace_back(arg);
      continue;
    }
    absl::string_view name = arg.substr(2);
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Option* o = Find(name);
    if (o == nullptr) Fail(absl::StrCat("unknown option --", name));
    if (!o->is_switch && !has_value) {
      if (i + 1 >= argc) Fail(absl::StrCat("option --", name, " needs a value"));
      value = argv[++i];
    }
    if (o->is_switch && has_value) {
      Fail(absl::StrCat("option --", name, " takes no value"));
    }
    if (!o->set(value)) {
      Fail(absl::StrCat("bad value '", value, "' for --", name));
    }
    o->seen = true;
  }
  for (const Option& o : options_) {
    if (o.required && !o.seen) Fail(absl::StrCat("missing --", o.name));
  }
  return positional;
}

}  // namespace rdf::cli
