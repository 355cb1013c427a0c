#include "rdfcom/exceptions_cmd.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "common/events/log.h"
#include "common/layout/layout.h"

namespace rdf::rdfcom {
namespace {

// Escapes what the updater's C-escaping cannot have produced: bytes outside
// printable ASCII.
std::string Printable(const std::string& s) {
  if (s.empty()) return "\"\"";
  std::string out;
  for (const unsigned char ch : s) {
    if (ch >= 0x20 && ch < 0x7f) {
      out.push_back(static_cast<char>(ch));
    } else {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", ch));
    }
  }
  return out;
}

// Pads every column but the last to its widest cell, two spaces apart.
std::string AlignedTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// The log files to read: every *.jsonl of the folder, or the volume's one.
absl::StatusOr<std::vector<std::string>> LogFiles(FileSystem* fs, const std::string& dir,
                                                  const proto::VolumeConfig* volume) {
  if (volume != nullptr) {
    std::string name = absl::StrCat(config::VolumeDirName(volume->name()), layout::kExceptionLogSuffix);
    if (!fs->Exists(JoinPath(dir, name))) return std::vector<std::string>{};
    return std::vector<std::string>{name};
  }
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
  if (absl::IsNotFound(names.status())) return std::vector<std::string>{};  // none yet
  RDF_RETURN_IF_ERROR(names.status());
  std::vector<std::string> logs;
  for (std::string& n : *names) {
    if (absl::EndsWith(n, layout::kExceptionLogSuffix)) logs.push_back(std::move(n));
  }
  return logs;
}

// Parses one log file's lines into `entries`; reports bad lines on `err`.
absl::Status ReadLog(FileSystem* fs, const std::string& path, std::vector<ExceptionEntry>* entries,
                     std::ostream& err, size_t* malformed) {
  RDF_ASSIGN_OR_RETURN(std::string text, ReadFileToString(fs, path));
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;  // fields are only ever added
  size_t number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    ExceptionEntry e;
    e.line = std::string(line);
    const auto parsed = google::protobuf::util::JsonStringToMessage(e.line, &e.record, o);
    if (!parsed.ok()) {
      // The parser's message may go on with a line holding a caret.
      const std::string why(parsed.message().data(), parsed.message().size());
      err << path << ":" << number << ": malformed exception record ("
          << absl::StripAsciiWhitespace(why.substr(0, why.find('\n'))) << "); skipped\n";
      ++*malformed;
      continue;
    }
    entries->push_back(std::move(e));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<const proto::VolumeConfig*> FindVolumeByName(const config::Config& config,
                                                            std::string_view name) {
  const std::string wanted = config::VolumeDirName(name);
  std::vector<std::string> known;
  for (const proto::VolumeConfig& v : config.proto.volumes()) {
    if (!wanted.empty() && absl::EqualsIgnoreCase(config::VolumeDirName(v.name()), wanted)) {
      return &v;
    }
    known.push_back(v.name());
  }
  return absl::NotFoundError(absl::StrCat(config.path, ": no volume named \"", std::string(name),
                                          "\"; its volumes are ", absl::StrJoin(known, ", ")));
}

std::string FormatExceptionTable(const std::vector<ExceptionEntry>& entries) {
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "VOLUME", "ERROR", "OP", "FILE", "KEY", "TXID", "ASN", "ACTION"}};
  for (const ExceptionEntry& e : entries) {
    const proto::ExceptionRecord& r = e.record;
    rows.push_back({events::FormatTimeUs(r.time_us()), Printable(r.volume()),
                    absl::StrCat(r.error()), Printable(r.op()), Printable(r.file()),
                    Printable(r.key()), absl::StrCat(r.txid()), absl::StrCat(r.asn()),
                    Printable(r.action())});
  }
  return AlignedTable(rows);
}

absl::StatusOr<ExceptionsResult> RunExceptions(const ExceptionsOptions& options,
                                               std::ostream& out, std::ostream& err,
                                               FileSystem* fs) {
  const config::Config& c = *options.config;
  RDF_ASSIGN_OR_RETURN(const proto::NodeConfig* node,
                       config::SelectNode(c, options.node, proto::BACKUP));
  const proto::VolumeConfig* volume = nullptr;
  if (!options.volume.empty()) {
    RDF_ASSIGN_OR_RETURN(volume, FindVolumeByName(c, options.volume));
  }
  const std::string dir = config::ExceptionDir(*node);
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> files, LogFiles(fs, dir, volume));
  ExceptionsResult result;
  std::vector<ExceptionEntry> entries;
  for (const std::string& f : files) {
    RDF_RETURN_IF_ERROR(ReadLog(fs, JoinPath(dir, f), &entries, err, &result.malformed));
  }
  // Each file is in time order already; the stable sort merges them.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const ExceptionEntry& a, const ExceptionEntry& b) {
                     return a.record.time_us() < b.record.time_us();
                   });
  result.printed = entries.size();
  if (options.json) {
    for (const ExceptionEntry& e : entries) out << e.line << "\n";
  } else if (entries.empty()) {
    out << "no exceptions\n";
  } else {
    out << FormatExceptionTable(entries);
  }
  return result;
}

}  // namespace rdf::rdfcom
