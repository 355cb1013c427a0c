#include "rdfcom/keygen.h"
#include "rdfcom/nodes.h"

#include <unistd.h>

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/curve_keys.h"
#include "common/status_macros.h"

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

}  // namespace rdf::rdfcom
