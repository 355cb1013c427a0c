#include "common/state/takeover_state.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/config/config.h"
#include "common/layout/layout.h"

namespace rdf {

std::string TakeoverEpochPath(const proto::NodeConfig& node) {
  return layout::TakeoverEpochFile(config::TakeoverDir(node));
}

std::string TakeoverReportPath(const proto::NodeConfig& node, const std::string& ext) {
  return layout::TakeoverReportFile(config::TakeoverDir(node), ext);
}

std::string TakeoverVolumeResultPath(const proto::NodeConfig& node, const std::string& volume) {
  return layout::TakeoverVolumeFile(config::TakeoverDir(node), volume);
}

absl::StatusOr<std::optional<TakeoverEpoch>> ReadTakeoverEpoch(FileSystem* fs,
                                                               const proto::NodeConfig& node) {
  std::string path = TakeoverEpochPath(node);
  if (!fs->Exists(path)) return std::nullopt;
  RDF_ASSIGN_OR_RETURN(std::string text, ReadFileToString(fs, path));
  TakeoverEpoch e;
  bool have_number = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
    if (kv.first == "epoch") have_number = absl::SimpleAtoi(kv.second, &e.number);
    if (kv.first == "started_us" && !absl::SimpleAtoi(kv.second, &e.started_us)) {
      have_number = false;
      break;
    }
  }
  if (!have_number || e.number == 0) {
    return absl::DataLossError(absl::StrCat(path, ": not a takeover epoch file (expected "
                                            "\"epoch N\" and \"started_us T\" lines)"));
  }
  return e;
}

absl::Status WriteTakeoverEpoch(FileSystem* fs, const proto::NodeConfig& node,
                                const TakeoverEpoch& epoch) {
  RDF_RETURN_IF_ERROR(fs->CreateDirs(config::TakeoverDir(node)));
  return WriteFileAtomically(fs, TakeoverEpochPath(node),
                             absl::StrCat("epoch ", epoch.number, "\nstarted_us ",
                                          epoch.started_us, "\n"));
}

}  // namespace rdf
