#include "rdfcom/keygen.h"
#include "rdfcom/nodes.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"
#include "common/config/config.h"
#include "common/net/curve_keys.h"

namespace rdf::rdfcom {
namespace {

// Without --force, refuses before writing anything when a key file exists.
absl::Status CheckNoKeyFiles(const std::vector<const proto::NodeConfig*>& nodes) {
  std::vector<std::string> existing;
  for (const proto::NodeConfig* n : nodes) {
    if (access(n->key_file().c_str(), F_OK) == 0) existing.push_back(n->key_file());
  }
  if (existing.empty()) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrCat(
      existing.size() == 1 ? "key file " : "key files ", absl::StrJoin(existing, ", "),
      existing.size() == 1 ? " already exists" : " already exist",
      "; nothing was changed. To replace the keys run keygen again with --force "
      "(then restart every rdf process, and give each node its new key file)"));
}

}  // namespace

absl::Status RunKeygen(const KeygenOptions& options, std::ostream& out) {
  RDF_ASSIGN_OR_RETURN(config::Config config, config::Load(options.config_path));
  RDF_ASSIGN_OR_RETURN(std::vector<const proto::NodeConfig*> nodes,
                       SelectedNodes(config, options.node));
  if (!options.force) RDF_RETURN_IF_ERROR(CheckNoKeyFiles(nodes));
  std::map<std::string, std::string> public_keys;
  std::vector<std::string> names;  // configuration order
  for (const proto::NodeConfig* n : nodes) {
    RDF_ASSIGN_OR_RETURN(curve::KeyPair keys, curve::GenerateKeyPair());
    absl::Status s = curve::WriteKeyFile(n->key_file(), keys, options.force);
    if (!s.ok() && !public_keys.empty()) {
      return Annotate(s, "some key files were written but the configuration was not updated; "
                         "rerun keygen with --force");
    }
    RDF_RETURN_IF_ERROR(s);
    out << n->name() << ": wrote " << n->key_file() << " (mode 0600), public key "
        << keys.public_key << "\n";
    public_keys[n->name()] = keys.public_key;
    names.push_back(n->name());
  }
  absl::Status s = curve::SetPublicKeysInConfig(options.config_path, public_keys);
  if (!s.ok()) {
    return Annotate(s, absl::StrCat("key files written, but ", options.config_path,
                                    " was not updated; set each node's public_key as printed "
                                    "above, or rerun keygen with --force"));
  }
  out << "updated " << config.path << ": public_key of " << absl::StrJoin(names, ", ") << "\n";
  return absl::OkStatus();
}

absl::Status RunOperatorKeygen(const KeygenOptions& options, std::ostream& out) {
  const std::string& name = options.operator_name;
  const bool bad_name = std::any_of(name.begin(), name.end(), [](char c) {
    return !absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-';
  });
  if (bad_name) {
    return absl::InvalidArgumentError(absl::StrCat(
        "operator name '", name, "': use letters, digits, '_', '.' and '-' only"));
  }
  RDF_ASSIGN_OR_RETURN(config::Config config, config::Load(options.config_path));
  for (const proto::OperatorConfig& o : config.proto.operators()) {
    if (o.name() == name) {
      return absl::AlreadyExistsError(absl::StrCat(
          "operator '", name, "' is already in ", config.path,
          "; remove its operators block first to give it a new key"));
    }
  }
  const std::string relative = absl::StrCat("keys/operator-", name, ".key");
  const std::string key_file = absl::StrCat(config.dir, "/", relative);
  RDF_ASSIGN_OR_RETURN(curve::KeyPair keys, curve::GenerateKeyPair());
  RDF_RETURN_IF_ERROR(curve::WriteKeyFile(key_file, keys, options.force));
  out << "operator " << name << ": wrote " << key_file << " (mode 0600), public key "
      << keys.public_key << "\n";
  const std::string block =
      absl::StrCat("operators { name: \"", name, "\" public_key: \"", keys.public_key,
                   "\" key_file: \"", relative, "\" }\n");
  RDF_ASSIGN_OR_RETURN(std::string text, ReadFileToString(FileSystem::Default(), config.path));
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += block;
  absl::Status loads = config::Parse(text, config.path).status();
  if (loads.ok()) loads = WriteFileAtomically(FileSystem::Default(), config.path, text);
  if (!loads.ok()) {
    return Annotate(loads, absl::StrCat("the key file is written, but ", config.path,
                                        " was not updated; add this line to it: ", block));
  }
  out << "updated " << config.path << ": " << block;
  return absl::OkStatus();
}

}  // namespace rdf::rdfcom
