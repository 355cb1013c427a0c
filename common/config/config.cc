#include "common/config/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/layout/layout.h"
#include "common/trail/format.h"
#include "common/wire/wire.h"

namespace rdf::config {
namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;
using ParseInfoTree = pb::TextFormat::ParseInfoTree;

// A configuration is a few kilobytes; this bound keeps sizes within int.
constexpr size_t kMaxConfigBytes = 16u << 20;

// A 0-based position in the text, as protobuf reports it.
struct Pos {
  int line = 0;
  int column = 0;
};

bool Before(const Pos& a, const Pos& b) {
  return a.line < b.line || (a.line == b.line && a.column < b.column);
}

// One problem, ready to print.
struct Issue {
  Pos pos;
  std::string field;    // "nodes[1].audit_port"
  std::string message;  // "<problem>; <fix>"
};

std::string FormatIssues(std::vector<Issue> issues, const std::string& file) {
  std::stable_sort(issues.begin(), issues.end(),
                   [](const Issue& a, const Issue& b) { return Before(a.pos, b.pos); });
  std::vector<std::string> lines;
  for (const Issue& i : issues) {
    lines.push_back(absl::StrCat(file, ":", i.pos.line + 1, ":", i.pos.column + 1, ": ",
                                 i.field.empty() ? "(top level)" : i.field, ": ", i.message));
  }
  return absl::StrJoin(lines, "\n");
}

// ---------------------------------------------------------------------------
// Syntax errors. Protobuf's parser knows the position but not the field path,
// so a small token walk over the text recovers the path of the field being
// parsed at that position.

struct RawError {
  Pos pos;
  std::string message;
};

class Collector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors.push_back({{line, column}, message});
  }
  std::vector<RawError> errors;
};

class SilentCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int, pb::io::ColumnNumber, const std::string&) override {}
};

// Where a syntax error sits: the enclosing message, the field name being
// parsed, and the start of the token before the error position (protobuf
// reports some errors, such as an unknown field, just after the offender).
struct SyntaxContext {
  const pb::Descriptor* message = nullptr;  // nullptr when unknown
  std::string path;                         // "nodes[1]" ("" at top level)
  std::string field;                        // "prot" ("" when none)
  Pos previous_token;
};

// Walks tokens before `at`, tracking `name {`, `name: {`, `name: [{...}, ...]`
// nesting. State machine over tokens; tolerant of broken input.
SyntaxContext ContextAt(std::string_view text, Pos at) {
  struct Frame {
    const pb::Descriptor* message;
    std::string path;
    std::map<std::string, int> counts;
    bool in_list = false;
    std::string list_field;
  };
  std::vector<Frame> stack{{proto::SystemConfig::descriptor(), "", {}, false, ""}};
  std::string name;
  bool after_colon = false;
  Pos previous;

  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  SilentCollector silent;
  pb::io::Tokenizer tokens(&input, &silent);
  tokens.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  while (tokens.Next()) {
    const pb::io::Tokenizer::Token& t = tokens.current();
    if (!Before({t.line, t.column}, at)) break;
    previous = {t.line, t.column};
    Frame& top = stack.back();
    const std::string& s = t.text;
    if (t.type == pb::io::Tokenizer::TYPE_IDENTIFIER) {
      if (!after_colon && !top.in_list) name = s;
      after_colon = false;
    } else if (t.type != pb::io::Tokenizer::TYPE_SYMBOL) {
      after_colon = false;  // a value
    } else if (s == ":") {
      after_colon = true;
    } else if (s == "[") {
      if (after_colon) {
        top.in_list = true;
        top.list_field = name;
      }
      after_colon = false;
    } else if (s == "]") {
      top.in_list = false;
    } else if (s == "{" || s == "<") {
      std::string field_name = top.in_list ? top.list_field : name;
      const pb::FieldDescriptor* f =
          top.message == nullptr ? nullptr : top.message->FindFieldByName(field_name);
      int index = top.counts[field_name]++;
      std::string path = top.path.empty() ? field_name : absl::StrCat(top.path, ".", field_name);
      if (f != nullptr && f->is_repeated()) absl::StrAppend(&path, "[", index, "]");
      stack.push_back({f == nullptr ? nullptr : f->message_type(), path, {}, false, ""});
      name.clear();
      after_colon = false;
    } else if (s == "}" || s == ">") {
      if (stack.size() > 1) stack.pop_back();
      name.clear();
      after_colon = false;
    }
  }
  return {stack.back().message, stack.back().path, name, previous};
}

std::string FieldNames(const pb::Descriptor& d) {
  std::vector<std::string> names;
  for (int i = 0; i < d.field_count(); ++i) names.push_back(d.field(i)->name());
  return absl::StrJoin(names, ", ");
}

std::string EnumNames(const pb::EnumDescriptor& e) {
  std::vector<std::string> names;
  for (int i = 0; i < e.value_count(); ++i) {
    if (e.value(i)->number() != 0 || e.value_count() == 1 ||
        !absl::EndsWith(e.value(i)->name(), "_UNSPECIFIED")) {
      names.push_back(e.value(i)->name());
    }
  }
  return absl::StrJoin(names, ", ");
}

Issue DescribeSyntaxError(std::string_view text, RawError e) {
  while (!e.message.empty() && (e.message.back() == '.' || e.message.back() == ' ')) {
    e.message.pop_back();
  }
  SyntaxContext c = ContextAt(text, e.pos);
  std::string field =
      c.field.empty() ? c.path : (c.path.empty() ? c.field : absl::StrCat(c.path, ".", c.field));
  const pb::FieldDescriptor* f =
      c.message == nullptr ? nullptr : c.message->FindFieldByName(c.field);
  if (absl::StrContains(e.message, "has no field named")) {
    std::string problem = c.message == nullptr ? absl::StrCat("unknown field \"", c.field, "\"")
                                               : absl::StrCat("unknown field \"", c.field, "\" in ",
                                                              c.message->name());
    std::string fix =
        c.message == nullptr
            ? "check its spelling against docs/configuration.md"
            : absl::StrCat("check its spelling; ", c.message->name(), " has the fields ",
                           FieldNames(*c.message), " (docs/configuration.md)");
    return {c.previous_token, field, absl::StrCat(problem, "; ", fix)};
  }
  if (absl::StrContains(e.message, "Unknown enumeration value") && f != nullptr &&
      f->enum_type() != nullptr) {
    return {c.previous_token, field,
            absl::StrCat(e.message, "; use one of ", EnumNames(*f->enum_type()))};
  }
  if (absl::StrContains(e.message, "specified multiple times")) {
    return {c.previous_token, field,
            absl::StrCat(e.message,
                         "; keep one of them (only repeated fields may appear "
                         "more than once)")};
  }
  return {e.pos, field,
          absl::StrCat(e.message,
                       "; fix the text-format syntax (field: value, "
                       "message { ... }, strings in double quotes)")};
}

// `p` resolved against `dir` (an absolute `p` stays), lexically normal, with
// no trailing '/'.
std::string MakeAbsolute(const std::string& dir, const std::string& p) {
  std::string s = (fs::path(dir) / p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// ---------------------------------------------------------------------------
// Semantic validation. Fields are addressed by a path of (name, index) steps
// from SystemConfig; the parse info tree gives their position. An absent
// field is reported at its enclosing message (or at 1:1 at top level).

struct Step {
  const char* name;
  int index = -1;  // -1 for a singular field
};
using Where = std::vector<Step>;

class Validator {
 public:
  Validator(const proto::SystemConfig& c, const ParseInfoTree& tree, std::string dir)
      : c_(c), tree_(tree), dir_(std::move(dir)) {}

  std::vector<Issue> Run() {
    CheckVersion();
    CheckNodes();
    CheckVolumes();
    CheckTuning();
    return std::move(issues_);
  }

 private:
  // Position of the field at `where`, falling back to the nearest enclosing
  // field (or an earlier element of a list, whose positions protobuf records
  // only for the first element of `name: [ ... ]`) that has one.
  Pos Locate(const Where& where) const {
    Pos best;
    const ParseInfoTree* tree = &tree_;
    const pb::Descriptor* d = proto::SystemConfig::descriptor();
    for (const Step& s : where) {
      const pb::FieldDescriptor* f = d->FindFieldByName(s.name);
      if (f == nullptr || tree == nullptr) break;
      int index = f->is_repeated() ? std::max(s.index, 0) : -1;
      for (int i = index;; --i) {
        auto loc = tree->GetLocation(f, i);
        if (loc.line >= 0) {
          best = {loc.line, loc.column};
          break;
        }
        if (i <= 0) break;
      }
      if (f->message_type() == nullptr) break;
      tree = tree->GetTreeForNested(f, index);
      d = f->message_type();
    }
    return best;
  }

  static std::string PathOf(const Where& where) {
    std::string out;
    for (const Step& s : where) {
      if (!out.empty()) out += ".";
      out += s.name;
      if (s.index >= 0) absl::StrAppend(&out, "[", s.index, "]");
    }
    return out;
  }

  // "nodes[0], line 12": a reference to another field, for "also ..." notes.
  std::string Ref(const Where& where) const {
    return absl::StrCat(PathOf(where), ", line ", Locate(where).line + 1);
  }

  void Error(const Where& where, std::string problem, std::string_view fix) {
    issues_.push_back(
        {Locate(where), PathOf(where), absl::StrCat(problem, "; ", std::string(fix))});
  }
  // A problem with a whole repeated field (`name`), shown at its last element.
  void ErrorAtLast(const char* name, int size, std::string problem, std::string_view fix) {
    issues_.push_back({Locate({{name, std::max(size - 1, 0)}}), name,
                       absl::StrCat(problem, "; ", std::string(fix))});
  }

  void CheckVersion() {
    if (c_.version() != 0 && c_.version() != kConfigVersion) {
      Error({{"version"}}, absl::StrCat("unsupported configuration version ", c_.version()),
            absl::StrCat("this build reads version ", kConfigVersion,
                         ": set version: ", kConfigVersion, " and check docs/configuration.md"));
    }
  }

  // --- nodes -----------------------------------------------------------------

  void CheckNodes() {
    for (int i = 0; i < c_.nodes_size(); ++i) CheckNode(i);
    CheckRoles();
    CheckPorts();
    CheckDataDirs();
    CheckKeys();
  }

  void CheckNode(int i) {
    const proto::NodeConfig& n = c_.nodes(i);
    if (n.name().empty()) {
      Error({{"nodes", i}, {"name"}}, "missing node name", "set name, e.g. name: \"primary\"");
    }
    for (int j = 0; j < i && !n.name().empty(); ++j) {
      if (c_.nodes(j).name() == n.name()) {
        Error(
            {{"nodes", i}, {"name"}},
            absl::StrCat("duplicate node name \"", n.name(), "\" (also ", Ref({{"nodes", j}}), ")"),
            "rename one of them");
        break;
      }
    }
    if (n.host().empty()) {
      Error({{"nodes", i}, {"host"}}, "missing host",
            "set host to the address the node listens on and its peer dials, e.g. "
            "host: \"127.0.0.1\"");
    }
    if (n.data_dir().empty()) {
      Error({{"nodes", i}, {"data_dir"}}, "missing data_dir",
            "set data_dir to a directory of this node's own, e.g. data_dir: \"primary\" "
            "(relative to the configuration file's folder)");
    }
    if (n.key_file().empty()) {
      Error({{"nodes", i}, {"key_file"}}, "missing key_file",
            "set key_file to this node's secret-key file, e.g. key_file: "
            "\"keys/primary.key\" (rdfcom keygen writes it)");
    }
    if (!n.public_key().empty() && !IsZ85Key(n.public_key())) {
      Error({{"nodes", i}, {"public_key"}},
            absl::StrCat("public_key is not 40 Z85 characters (", n.public_key().size(),
                         " characters)"),
            "paste the public key that rdfcom keygen printed, or leave public_key empty");
    }
  }

  static bool IsZ85Key(std::string_view key) {
    static constexpr std::string_view kZ85 =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (key.size() != 40) return false;
    return std::all_of(key.begin(), key.end(),
                       [](char ch) { return kZ85.find(ch) != std::string_view::npos; });
  }

  void CheckRoles() {
    std::optional<int> primary, backup;
    for (int i = 0; i < c_.nodes_size(); ++i) {
      proto::NodeRole role = c_.nodes(i).role();
      std::optional<int>* seen = role == proto::PRIMARY  ? &primary
                                 : role == proto::BACKUP ? &backup
                                                         : nullptr;
      if (seen == nullptr) {
        Error({{"nodes", i}, {"role"}},
              absl::StrCat("node \"", c_.nodes(i).name(), "\" has no role"),
              "set role: PRIMARY or role: BACKUP");
      } else if (seen->has_value()) {
        Error({{"nodes", i}, {"role"}},
              absl::StrCat("a second ", proto::NodeRole_Name(role), " node (also ",
                           Ref({{"nodes", **seen}}), ")"),
              "make exactly one node PRIMARY and one BACKUP");
      } else {
        *seen = i;
      }
    }
    if (!primary.has_value()) {
      ErrorAtLast("nodes", c_.nodes_size(), "no PRIMARY node",
                  "add a node with role: PRIMARY (docs/configuration.md)");
    }
    if (!backup.has_value()) {
      ErrorAtLast("nodes", c_.nodes_size(), "no BACKUP node",
                  "add a node with role: BACKUP (docs/configuration.md)");
    }
  }

  // Hosts that are the same listening address for clash purposes.
  static std::string HostKey(std::string_view host) {
    std::string h = absl::AsciiStrToLower(std::string(host));
    if (h == "localhost") return "127.0.0.1";
    return h;
  }
  static bool IsWildcard(std::string_view host) {
    return host == "0.0.0.0" || host == "::" || host == "*";
  }

  void CheckPorts() {
    struct Listener {
      std::string host;
      uint32_t port;
      Where where;
    };
    static constexpr const char* kPorts[] = {"audit_port", "control_port", "metrics_port"};
    std::vector<Listener> seen;
    for (int i = 0; i < c_.nodes_size(); ++i) {
      const proto::NodeConfig& n = c_.nodes(i);
      const uint32_t ports[] = {n.audit_port(), n.control_port(), n.metrics_port()};
      for (int k = 0; k < 3; ++k) {
        Where where{{"nodes", i}, {kPorts[k]}};
        if (ports[k] > 65535) {
          Error(where, absl::StrCat("port ", ports[k], " is out of range"),
                "use a port in 1..65535 (0: does not listen)");
          continue;
        }
        if (ports[k] == 0) continue;  // not listening
        std::string host = HostKey(n.host());
        for (const Listener& l : seen) {
          if (l.port != ports[k]) continue;
          if (l.host != host && !IsWildcard(l.host) && !IsWildcard(host)) continue;
          Error(where,
                absl::StrCat("port clash: ", n.host(), ":", ports[k], " is also ", Ref(l.where)),
                "use a different port");
          break;
        }
        seen.push_back({host, ports[k], where});
      }
    }
    for (int i = 0; i < c_.nodes_size(); ++i) {
      if (c_.nodes(i).role() == proto::BACKUP && c_.nodes(i).audit_port() == 0) {
        Error({{"nodes", i}, {"audit_port"}},
              "the BACKUP node has no audit_port: its receiver would not listen",
              "set audit_port, e.g. audit_port: 17420");
      }
    }
  }

  std::string Absolute(const std::string& p) const { return MakeAbsolute(dir_, p); }

  // True when `inner` is `outer` or lies below it (lexically).
  static bool Within(const std::string& inner, const std::string& outer) {
    if (!absl::StartsWith(inner, outer)) return false;
    return inner.size() == outer.size() || outer == "/" || inner[outer.size()] == '/';
  }

  // The absolute form of one path field of every node, made once: the
  // checks below compare all pairs of nodes.
  template <typename Field>
  std::vector<std::string> AbsolutePaths(Field field) const {
    std::vector<std::string> out;
    for (const proto::NodeConfig& n : c_.nodes()) out.push_back(Absolute((n.*field)()));
    return out;
  }

  void CheckDataDirs() {
    const std::vector<std::string> dirs = AbsolutePaths(&proto::NodeConfig::data_dir);
    for (int i = 0; i < c_.nodes_size(); ++i) {
      if (c_.nodes(i).data_dir().empty()) continue;
      const std::string& a = dirs[i];
      for (int j = 0; j < i; ++j) {
        if (c_.nodes(j).data_dir().empty()) continue;
        const std::string& b = dirs[j];
        std::string how = a == b         ? "is the same as"
                          : Within(a, b) ? "is inside"
                          : Within(b, a) ? "contains"
                                         : "";
        if (how.empty()) continue;
        Error({{"nodes", i}, {"data_dir"}},
              absl::StrCat("data_dir ", a, " ", how, " the data_dir of node \"", c_.nodes(j).name(),
                           "\" (", Ref({{"nodes", j}, {"data_dir"}}), ")"),
              "give each node its own data_dir, neither inside the other");
        break;
      }
    }
  }

  void CheckKeys() {
    const std::vector<std::string> key_files = AbsolutePaths(&proto::NodeConfig::key_file);
    for (int i = 0; i < c_.nodes_size(); ++i) {
      const proto::NodeConfig& n = c_.nodes(i);
      for (int j = 0; j < i; ++j) {
        const proto::NodeConfig& m = c_.nodes(j);
        if (!n.key_file().empty() && key_files[i] == key_files[j]) {
          Error({{"nodes", i}, {"key_file"}},
                absl::StrCat("key_file ", key_files[i],
                             " is also the key_file of "
                             "node \"",
                             m.name(), "\" (", Ref({{"nodes", j}, {"key_file"}}), ")"),
                "give each node its own key file (a node's secret key authenticates it)");
        }
        if (!n.public_key().empty() && n.public_key() == m.public_key()) {
          Error({{"nodes", i}, {"public_key"}},
                absl::StrCat("public_key is also the public key of node \"", m.name(), "\" (",
                             Ref({{"nodes", j}, {"public_key"}}), ")"),
                "each node needs its own key pair: run rdfcom keygen for each node");
        }
      }
    }
  }

  // --- volumes ---------------------------------------------------------------

  static bool IsVolumeName(std::string_view v) {
    if (v.size() < 2 || v.size() > 17 || v[0] != '$' || !absl::ascii_isalpha(v[1])) return false;
    return std::all_of(v.begin() + 1, v.end(), [](char ch) { return absl::ascii_isalnum(ch); });
  }

  void CheckVolumes() {
    bool any_protected = false;
    for (int i = 0; i < c_.volumes_size(); ++i) {
      const proto::VolumeConfig& v = c_.volumes(i);
      any_protected |= !v.unprotected();
      if (!IsVolumeName(v.name())) {
        Error({{"volumes", i}, {"name"}}, absl::StrCat("invalid volume name \"", v.name(), "\""),
              "use '$', a letter, then at most 15 letters or digits, e.g. \"$DATA01\"");
      }
      for (int j = 0; j < i; ++j) {
        if (!v.name().empty() && absl::EqualsIgnoreCase(c_.volumes(j).name(), v.name())) {
          Error({{"volumes", i}, {"name"}},
                absl::StrCat("duplicate volume \"", v.name(), "\" (also ", Ref({{"volumes", j}}),
                             "; volume names ignore case)"),
                "rename one of them, or merge their files into one volume");
          break;
        }
      }
      CheckFiles(i);
      CheckPatterns(i, "include", v.include());
      CheckPatterns(i, "exclude", v.exclude());
      if (v.map_bytes() != 0 && v.map_bytes() < kMinMapBytes) {
        Error({{"volumes", i}, {"map_bytes"}},
              absl::StrCat("map_bytes ", v.map_bytes(), " is below the minimum ", kMinMapBytes,
                           " (1 MiB)"),
              "set at least 1048576, or remove it to use lmdb.map_bytes");
      }
    }
    if (!any_protected) {
      ErrorAtLast("volumes", c_.volumes_size(), "no protected volume",
                  "add a volume (e.g. volumes { name: \"$DATA01\" }) without unprotected: true");
    }
  }

  void CheckFiles(int v) {
    const proto::VolumeConfig& vol = c_.volumes(v);
    for (int i = 0; i < vol.files_size(); ++i) {
      const std::string& name = vol.files(i).name();
      Where where{{"volumes", v}, {"files", i}, {"name"}};
      if (name.empty()) {
        Error(where, "missing file name", "set name, e.g. name: \"LOAD\"");
        continue;
      }
      if (absl::StartsWith(name, "__")) {
        Error(where,
              absl::StrCat("file name \"", name,
                           "\" starts with \"__\", which is reserved for bookkeeping"),
              "rename the file");
      }
      for (int j = 0; j < i; ++j) {
        if (vol.files(j).name() == name) {
          Error(where,
                absl::StrCat("duplicate file \"", name, "\" in volume ", vol.name(), " (also ",
                             Ref({{"volumes", v}, {"files", j}}), ")"),
                "remove or rename one of them");
          break;
        }
      }
    }
  }

  void CheckPatterns(int v, const char* field, const pb::RepeatedPtrField<std::string>& patterns) {
    for (int i = 0; i < patterns.size(); ++i) {
      const std::string& p = patterns[i];
      Where where{{"volumes", v}, {field, i}};
      if (p.empty()) {
        Error(where, "empty pattern", "remove it, or write a file name or a prefix ending in '*'");
      } else if (size_t star = p.find('*'); star != std::string::npos && star + 1 != p.size()) {
        Error(where, absl::StrCat("pattern \"", p, "\" has '*' before its end"),
              "'*' may only end a pattern (e.g. \"ORD*\"); list such files one by one");
      }
    }
  }

  // --- tuning ----------------------------------------------------------------

  void MinBytes(const Where& where, uint64_t value, uint64_t min, const char* min_text) {
    if (value == 0 || value >= min) return;
    Error(where,
          absl::StrCat(where.back().name, " ", value, " is below the minimum ", min, " (", min_text,
                       ")"),
          absl::StrCat("set at least ", min, ", or remove it for the default"));
  }

  // A block's checkpoint_mode and checkpoint_copy_ms (tmf, updater).
  void CheckpointCopy(const char* block, int mode, uint32_t copy_ms) {
    if (copy_ms != 0 &&
        (copy_ms < kMinCheckpointCopyMs || copy_ms > kMaxCheckpointCopyMs)) {
      Error({{block}, {"checkpoint_copy_ms"}},
            absl::StrCat("checkpoint_copy_ms ", copy_ms, " is outside ", kMinCheckpointCopyMs,
                         "..", kMaxCheckpointCopyMs),
            absl::StrCat("set checkpoint_copy_ms within that range, or remove it for the "
                         "default (", kDefaultCheckpointCopyMs, ")"));
    }
    KnownEnum({{block}, {"checkpoint_mode"}}, proto::UpdaterConfig::CheckpointMode_descriptor(),
              mode);
  }

  void KnownEnum(const Where& where, const pb::EnumDescriptor* e, int value) {
    if (e->FindValueByNumber(value) != nullptr) return;
    Error(where, absl::StrCat("unknown value ", value), absl::StrCat("use one of ", EnumNames(*e)));
  }

  void CheckTuning() {
    const auto& t = c_.trail();
    MinBytes({{"trail"}, {"audit_segment_bytes"}}, t.audit_segment_bytes(), kMinSegmentBytes,
             "64 KiB");
    MinBytes({{"trail"}, {"image_segment_bytes"}}, t.image_segment_bytes(), kMinSegmentBytes,
             "64 KiB");
    MinBytes({{"trail"}, {"event_segment_bytes"}}, t.event_segment_bytes(), kMinSegmentBytes,
             "64 KiB");
    MinBytes({{"lmdb"}, {"map_bytes"}}, c_.lmdb().map_bytes(), kMinMapBytes, "1 MiB");
    MinBytes({{"extractor"}, {"batch_bytes"}}, c_.extractor().batch_bytes(), wire::kMinBatchBytes,
             "4 KiB: the first fragment of a large record holds its header");

    const auto& tmf = c_.tmf();
    KnownEnum({{"tmf"}, {"retention_policy"}}, proto::TmfConfig::RetentionPolicy_descriptor(),
              tmf.retention_policy());
    CheckpointCopy("tmf", tmf.checkpoint_mode(), tmf.checkpoint_copy_ms());
    uint64_t segment =
        t.audit_segment_bytes() ? t.audit_segment_bytes() : kDefaultAuditSegmentBytes;
    uint64_t retention =
        tmf.audit_retention_bytes() ? tmf.audit_retention_bytes() : kDefaultAuditRetentionBytes;
    if (retention < segment) {
      Error({{"tmf"}, {"audit_retention_bytes"}},
            absl::StrCat("audit_retention_bytes ", retention,
                         " is smaller than one audit segment (", segment, " bytes)"),
            "raise tmf.audit_retention_bytes or lower trail.audit_segment_bytes");
    }

    uint32_t batch =
        c_.extractor().batch_bytes() ? c_.extractor().batch_bytes() : kDefaultExtractorBatchBytes;
    uint32_t max_message = c_.receiver().max_message_bytes() ? c_.receiver().max_message_bytes()
                                                             : kDefaultMaxMessageBytes;
    // A batch is at most batch_bytes of records (a record larger than that
    // travels in fragments of at most batch_bytes, docs/protocol.md) plus
    // the message envelope, and the receiver refuses a message above
    // max_message_bytes.
    if (uint64_t{batch} + wire::kMessageEnvelopeBytes > max_message) {
      Error({{"extractor"}, {"batch_bytes"}},
            absl::StrCat("extractor.batch_bytes ", batch,
                         batch > max_message ? " exceeds receiver.max_message_bytes "
                                             : " leaves no room for the message envelope (",
                         batch > max_message ? absl::StrCat(max_message)
                                             : absl::StrCat(wire::kMessageEnvelopeBytes,
                                                            " bytes) within receiver.max_message_bytes ",
                                                            max_message)),
            absl::StrCat("lower extractor.batch_bytes or raise receiver.max_message_bytes (to at "
                         "least batch_bytes + ", wire::kMessageEnvelopeBytes, ")"));
    }
    // One audit record can be as large as a whole transaction's audit, and
    // every record must fit in a trail frame (on both nodes).
    const uint64_t max_txn = tmf.max_txn_bytes() ? tmf.max_txn_bytes() : kDefaultMaxTxnBytes;
    if (max_txn > trail::kMaxPayload) {
      Error({{"tmf"}, {"max_txn_bytes"}},
            absl::StrCat("max_txn_bytes ", max_txn, " exceeds the largest trail record (",
                         trail::kMaxPayload, " bytes), so a transaction tmf accepts could not be "
                         "written or shipped"),
            absl::StrCat("set tmf.max_txn_bytes to at most ", trail::kMaxPayload));
    }
    if (tmf.image_memory_bytes() != 0 && tmf.image_memory_bytes() < kMinImageMemoryBytes) {
      Error({{"tmf"}, {"image_memory_bytes"}},
            absl::StrCat("image_memory_bytes ", tmf.image_memory_bytes(), " is below the minimum ",
                         kMinImageMemoryBytes),
            absl::StrCat("set image_memory_bytes to ", kMinImageMemoryBytes,
                         " or more, or remove it for the default (", kDefaultImageMemoryBytes,
                         ")"));
    }

    if (c_.updater().batch_records() > kMaxUpdaterBatchRecords) {
      Error({{"updater"}, {"batch_records"}},
            absl::StrCat("batch_records ", c_.updater().batch_records(), " exceeds the maximum ",
                         kMaxUpdaterBatchRecords),
            absl::StrCat("set batch_records to at most ", kMaxUpdaterBatchRecords,
                         ", or remove it for the default (", kDefaultUpdaterBatchRecords, ")"));
    }
    uint32_t batch_bytes = c_.updater().batch_bytes();
    if (batch_bytes != 0 && batch_bytes < kMinUpdaterBatchBytes) {
      Error({{"updater"}, {"batch_bytes"}},
            absl::StrCat("batch_bytes ", batch_bytes, " is below the minimum ",
                         kMinUpdaterBatchBytes),
            absl::StrCat("set batch_bytes to ", kMinUpdaterBatchBytes,
                         " or more, or remove it for the default (", kDefaultUpdaterBatchBytes,
                         ")"));
    }

    uint32_t checkpoint_ms = c_.updater().checkpoint_ms();
    if (checkpoint_ms != 0 &&
        (checkpoint_ms < kMinUpdaterCheckpointMs || checkpoint_ms > kMaxUpdaterCheckpointMs)) {
      Error({{"updater"}, {"checkpoint_ms"}},
            absl::StrCat("checkpoint_ms ", checkpoint_ms, " is outside ", kMinUpdaterCheckpointMs,
                         "..", kMaxUpdaterCheckpointMs),
            absl::StrCat("set checkpoint_ms within that range, or remove it for the default (",
                         kDefaultUpdaterCheckpointMs, ")"));
    }
    CheckpointCopy("updater", c_.updater().checkpoint_mode(), c_.updater().checkpoint_copy_ms());
    uint32_t takeover_retry_ms = c_.updater().takeover_retry_ms();
    if (takeover_retry_ms != 0 &&
        (takeover_retry_ms < kMinTakeoverRetryMs || takeover_retry_ms > kMaxTakeoverRetryMs)) {
      Error({{"updater"}, {"takeover_retry_ms"}},
            absl::StrCat("takeover_retry_ms ", takeover_retry_ms, " is outside ",
                         kMinTakeoverRetryMs, "..", kMaxTakeoverRetryMs),
            absl::StrCat("set takeover_retry_ms within that range, or remove it for the "
                         "default (", kDefaultTakeoverRetryMs, ")"));
    }

    const pb::EnumDescriptor* policy = proto::UpdaterConfig::ErrorPolicy_descriptor();
    KnownEnum({{"updater"}, {"duplicate_key"}}, policy, c_.updater().duplicate_key());
    KnownEnum({{"updater"}, {"missing_key"}}, policy, c_.updater().missing_key());

    uint32_t retain = c_.purger().retain_count();
    if (retain != 0 && retain < kMinRetainCount) {
      Error({{"purger"}, {"retain_count"}},
            absl::StrCat("retain_count ", retain, " is below the minimum ", kMinRetainCount),
            "set retain_count: 2 or more, or remove it for the default (2)");
    }

    Monitor();
    Operators();

    const std::string& severity = c_.notify().min_severity();
    if (!severity.empty() && severity != "WARNING" && severity != "ERROR" &&
        severity != "CRITICAL") {
      Error({{"notify"}, {"min_severity"}}, absl::StrCat("unknown severity \"", severity, "\""),
            "use \"WARNING\", \"ERROR\" or \"CRITICAL\" (upper case)");
    }
  }

  void Monitor() {
    const proto::MonitorConfig& m = c_.monitor();
    if (m.has_stall_after_ms() && m.stall_after_ms() != 0 &&
        m.stall_after_ms() < kMinStallAfterMs) {
      Error({{"monitor"}, {"stall_after_ms"}},
            absl::StrCat("stall_after_ms ", m.stall_after_ms(), " is below the minimum ",
                         kMinStallAfterMs, " (processes publish their status about once a second)"),
            absl::StrCat("set stall_after_ms to ", kMinStallAfterMs, " or more, 0 to turn stall "
                         "detection off, or remove it for the default (", kDefaultStallAfterMs,
                         ")"));
    }
    const uint32_t hung = m.has_hung_after_ms() ? m.hung_after_ms() : kDefaultHungAfterMs;
    if (hung != 0 && hung < kMinHungAfterMs) {
      Error({{"monitor"}, {"hung_after_ms"}},
            absl::StrCat("hung_after_ms ", hung, " is below the minimum ", kMinHungAfterMs,
                         " (processes publish their status about once a second)"),
            absl::StrCat("set hung_after_ms to ", kMinHungAfterMs, " or more, 0 to turn hang "
                         "detection off, or remove it for the default (", kDefaultHungAfterMs,
                         ")"));
    }
    if (!m.has_hung_restart_after_ms() || m.hung_restart_after_ms() == 0) return;
    if (hung == 0) {
      Error({{"monitor"}, {"hung_restart_after_ms"}},
            "hung_restart_after_ms is set but hang detection is off (hung_after_ms: 0)",
            "set hung_after_ms, or remove hung_restart_after_ms");
    } else if (m.hung_restart_after_ms() <= hung) {
      Error({{"monitor"}, {"hung_restart_after_ms"}},
            absl::StrCat("hung_restart_after_ms ", m.hung_restart_after_ms(),
                         " is not above hung_after_ms ", hung),
            "set it above hung_after_ms, or 0 never to restart a hung process");
    }
  }

  void Operators() {
    std::set<std::string> names, keys;
    for (const proto::NodeConfig& n : c_.nodes()) keys.insert(n.public_key());
    for (int i = 0; i < c_.operators_size(); ++i) {
      const proto::OperatorConfig& o = c_.operators(i);
      if (o.name().empty()) {
        Error({{"operators", i}, {"name"}}, "missing name",
              "name the operator, e.g. name: \"alice\"");
      } else if (!names.insert(o.name()).second) {
        Error({{"operators", i}, {"name"}}, absl::StrCat("operator \"", o.name(), "\" twice"),
              "give each operator a name of its own");
      }
      if (!IsZ85Key(o.public_key())) {
        Error({{"operators", i}, {"public_key"}},
              absl::StrCat("public_key is not 40 Z85 characters (", o.public_key().size(),
                           " characters)"),
              "paste the public key that `rdfcom keygen --operator NAME` printed");
      } else if (!keys.insert(o.public_key()).second) {
        Error({{"operators", i}, {"public_key"}},
              "public_key is also a node's or another operator's key",
              "give each operator a key pair of its own (`rdfcom keygen --operator NAME`)");
      }
    }
  }

  const proto::SystemConfig& c_;
  const ParseInfoTree& tree_;
  std::string dir_;
  std::vector<Issue> issues_;
};

// ---------------------------------------------------------------------------
// Defaults and paths.

#define RDF_CONFIG_DEFAULT_(msg, field, value) \
  if ((msg).field() == 0) (msg).set_##field(value)

void FillDefaults(proto::SystemConfig& c) {
  if (c.version() == 0) c.set_version(kConfigVersion);
  auto& t = *c.mutable_trail();
  RDF_CONFIG_DEFAULT_(t, audit_segment_bytes, kDefaultAuditSegmentBytes);
  RDF_CONFIG_DEFAULT_(t, image_segment_bytes, kDefaultImageSegmentBytes);
  RDF_CONFIG_DEFAULT_(t, event_segment_bytes, kDefaultEventSegmentBytes);
  RDF_CONFIG_DEFAULT_(t, event_segments_kept, kDefaultEventSegmentsKept);
  auto& l = *c.mutable_lmdb();
  RDF_CONFIG_DEFAULT_(l, map_bytes, kDefaultMapBytes);
  RDF_CONFIG_DEFAULT_(l, max_dbs, kDefaultMaxDbs);
  for (auto& v : *c.mutable_volumes()) RDF_CONFIG_DEFAULT_(v, map_bytes, l.map_bytes());
  auto& tmf = *c.mutable_tmf();
  RDF_CONFIG_DEFAULT_(tmf, max_txn_bytes, kDefaultMaxTxnBytes);
  RDF_CONFIG_DEFAULT_(tmf, lock_timeout_ms, kDefaultLockTimeoutMs);
  RDF_CONFIG_DEFAULT_(tmf, retain_count, kDefaultAuditRetainCount);
  RDF_CONFIG_DEFAULT_(tmf, audit_retention_bytes, kDefaultAuditRetentionBytes);
  RDF_CONFIG_DEFAULT_(tmf, apply_batch_txns, kDefaultApplyBatchTxns);
  RDF_CONFIG_DEFAULT_(tmf, image_memory_bytes, kDefaultImageMemoryBytes);
  RDF_CONFIG_DEFAULT_(tmf, apply_interval_ms, kDefaultApplyIntervalMs);
  RDF_CONFIG_DEFAULT_(tmf, checkpoint_copy_max_bytes, kDefaultCheckpointCopyMaxBytes);
  RDF_CONFIG_DEFAULT_(tmf, checkpoint_copy_ms, kDefaultCheckpointCopyMs);
  auto& x = *c.mutable_extractor();
  RDF_CONFIG_DEFAULT_(x, batch_bytes, kDefaultExtractorBatchBytes);
  RDF_CONFIG_DEFAULT_(x, batch_wait_ms, kDefaultExtractorBatchWaitMs);
  RDF_CONFIG_DEFAULT_(x, window, kDefaultExtractorWindow);
  RDF_CONFIG_DEFAULT_(x, heartbeat_ms, kDefaultHeartbeatMs);
  RDF_CONFIG_DEFAULT_(x, rtd_warning_ms, kDefaultRtdWarningMs);
  auto& r = *c.mutable_receiver();
  RDF_CONFIG_DEFAULT_(r, max_message_bytes, kDefaultMaxMessageBytes);
  RDF_CONFIG_DEFAULT_(r, save_point_max_wait_ms, kDefaultSavePointMaxWaitMs);
  auto& u = *c.mutable_updater();
  RDF_CONFIG_DEFAULT_(u, batch_records, kDefaultUpdaterBatchRecords);
  RDF_CONFIG_DEFAULT_(u, batch_bytes, kDefaultUpdaterBatchBytes);
  RDF_CONFIG_DEFAULT_(u, checkpoint_ms, kDefaultUpdaterCheckpointMs);
  RDF_CONFIG_DEFAULT_(u, checkpoint_copy_max_bytes, kDefaultCheckpointCopyMaxBytes);
  RDF_CONFIG_DEFAULT_(u, checkpoint_copy_ms, kDefaultCheckpointCopyMs);
  RDF_CONFIG_DEFAULT_(u, rtd_warning_ms, kDefaultRtdWarningMs);
  RDF_CONFIG_DEFAULT_(u, takeover_retry_ms, kDefaultTakeoverRetryMs);
  auto& p = *c.mutable_purger();
  RDF_CONFIG_DEFAULT_(p, interval_ms, kDefaultPurgerIntervalMs);
  RDF_CONFIG_DEFAULT_(p, retain_count, kDefaultRetainCount);
  if (c.notify().min_severity().empty()) c.mutable_notify()->set_min_severity(kDefaultMinSeverity);
  auto& m = *c.mutable_monitor();
  if (!m.has_hung_after_ms()) m.set_hung_after_ms(kDefaultHungAfterMs);
  if (!m.has_stall_after_ms()) m.set_stall_after_ms(kDefaultStallAfterMs);
  if (!m.has_hung_restart_after_ms()) m.set_hung_restart_after_ms(kDefaultHungRestartAfterMs);
}

#undef RDF_CONFIG_DEFAULT_

bool PatternMatches(std::string_view pattern, std::string_view name) {
  if (!pattern.empty() && pattern.back() == '*') {
    return name.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == name;
}

bool AnyMatches(const pb::RepeatedPtrField<std::string>& patterns, std::string_view name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return PatternMatches(p, name); });
}

}  // namespace

// ---------------------------------------------------------------------------

const proto::NodeConfig* Config::FindNode(std::string_view name) const {
  for (const auto& n : proto.nodes()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

const proto::NodeConfig* Config::NodeWithRole(proto::NodeRole role) const {
  if (role == proto::NODE_ROLE_UNSPECIFIED) return nullptr;
  for (const auto& n : proto.nodes()) {
    if (n.role() == role) return &n;
  }
  return nullptr;
}

const proto::VolumeConfig* Config::FindVolume(std::string_view name) const {
  for (const auto& v : proto.volumes()) {
    if (v.name() == name) return &v;
  }
  return nullptr;
}

std::vector<const proto::VolumeConfig*> Config::ProtectedVolumes() const {
  std::vector<const proto::VolumeConfig*> out;
  for (const auto& v : proto.volumes()) {
    if (!v.unprotected()) out.push_back(&v);
  }
  return out;
}

bool Config::IsProtected(std::string_view volume, std::string_view file) const {
  const proto::VolumeConfig* v = FindVolume(volume);
  if (v == nullptr || v->unprotected() || file.starts_with("__")) return false;
  for (const auto& f : v->files()) {
    if (f.name() == file && f.unprotected()) return false;
  }
  if (!v->include().empty() && !AnyMatches(v->include(), file)) return false;
  return !AnyMatches(v->exclude(), file);
}

absl::StatusOr<Config> Parse(std::string_view text, const std::string& path) {
  const std::string display = path.empty() ? "<config>" : path;
  std::error_code ec;
  fs::path absolute = fs::absolute(path.empty() ? fs::path("<config>") : fs::path(path), ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat(display, ": cannot resolve path"));
  absolute = absolute.lexically_normal();

  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat(display, ": ", text.size(),
                                                   " bytes is too large for a configuration; "
                                                   "the limit is ",
                                                   kMaxConfigBytes));
  }

  Config config;
  config.path = absolute.string();
  config.dir = absolute.parent_path().string();

  pb::TextFormat::Parser parser;
  Collector errors;
  ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  parser.AllowUnknownField(false);
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  if (!parser.Parse(&input, &config.proto)) {
    std::vector<Issue> issues;
    for (const RawError& e : errors.errors) issues.push_back(DescribeSyntaxError(text, e));
    if (issues.empty())
      issues.push_back({{}, "", "cannot parse the configuration; check its syntax"});
    return absl::InvalidArgumentError(FormatIssues(std::move(issues), display));
  }

  std::vector<Issue> issues = Validator(config.proto, tree, config.dir).Run();
  if (!issues.empty()) return absl::InvalidArgumentError(FormatIssues(std::move(issues), display));

  FillDefaults(config.proto);
  for (auto& n : *config.proto.mutable_nodes()) {
    n.set_data_dir(MakeAbsolute(config.dir, n.data_dir()));
    n.set_key_file(MakeAbsolute(config.dir, n.key_file()));
  }
  for (auto& o : *config.proto.mutable_operators()) {
    if (!o.key_file().empty()) o.set_key_file(MakeAbsolute(config.dir, o.key_file()));
  }
  return config;
}

absl::StatusOr<Config> Load(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoToStatus(errno, absl::StrCat(path, ": cannot open configuration"));
  std::string text;
  char buf[64 * 1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) return ErrnoToStatus(err, absl::StrCat(path, ": cannot read configuration"));
  return Parse(text, path);
}

absl::StatusOr<const proto::NodeConfig*> SelectNode(const Config& config, std::string_view name,
                                                    proto::NodeRole default_role) {
  const proto::NodeConfig* node =
      name.empty() ? config.NodeWithRole(default_role) : config.FindNode(name);
  if (node != nullptr) return node;
  std::vector<std::string> known;
  for (const auto& n : config.proto.nodes()) known.push_back(absl::StrCat("\"", n.name(), "\""));
  if (name.empty()) {
    return absl::NotFoundError(
        absl::StrCat(config.path, ": no node has role ", proto::NodeRole_Name(default_role),
                     "; pass --node (known nodes: ", absl::StrJoin(known, ", "), ")"));
  }
  return absl::NotFoundError(absl::StrCat(config.path, ": no node named \"", std::string(name),
                                          "\"; known nodes: ", absl::StrJoin(known, ", ")));
}

std::string VolumeDirName(std::string_view volume) { return layout::VolumeDirName(volume); }
std::string VolumeDir(const proto::NodeConfig& node, std::string_view volume) {
  return layout::VolumeDir(node.data_dir(), volume);
}
std::string AuditDir(const proto::NodeConfig& node) { return layout::AuditDir(node.data_dir()); }
std::string ImageTrailDir(const proto::NodeConfig& node) {
  return layout::ImageTrailDir(node.data_dir());
}
std::string TakeoverDir(const proto::NodeConfig& node) {
  return layout::TakeoverDir(node.data_dir());
}
std::string EventDir(const proto::NodeConfig& node) { return layout::EventDir(node.data_dir()); }
std::string ExceptionDir(const proto::NodeConfig& node) {
  return layout::ExceptionDir(node.data_dir());
}
std::string LockDir(const proto::NodeConfig& node) { return layout::LockDir(node.data_dir()); }

}  // namespace rdf::config
