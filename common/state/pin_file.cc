#include "common/state/pin_file.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/layout/layout.h"

namespace rdf {

std::string PinFilePath(const std::string& audit_dir) {
  return layout::PinFile(audit_dir);
}

absl::StatusOr<std::optional<uint64_t>> ReadPin(FileSystem* fs,
                                                const std::string& audit_dir) {
  std::string path = PinFilePath(audit_dir);
  if (!fs->Exists(path)) return std::optional<uint64_t>();
  absl::StatusOr<std::string> text = ReadFileToString(fs, path);
  if (!text.ok()) return text.status();
  uint64_t asn = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &asn)) {
    return absl::DataLossError(
        absl::StrCat("pin file ", path, " does not hold an ASN"));
  }
  return std::optional<uint64_t>(asn);
}

absl::Status WritePin(FileSystem* fs, const std::string& audit_dir,
                      uint64_t asn) {
  return WriteFileAtomically(fs, PinFilePath(audit_dir),
                             absl::StrCat(asn, "\n"));
}

}  // namespace rdf
