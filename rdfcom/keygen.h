// rdfcom keygen: makes a CURVE key pair for each node of a configuration,
// writes each node's key file (mode 0600) and puts the public keys into the
// configuration file (docs/rdfcom.md, docs/security.md).
#ifndef RDF_RDFCOM_KEYGEN_H_
#define RDF_RDFCOM_KEYGEN_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace rdf::rdfcom {

struct KeygenOptions {
  std::string config_path;  // the configuration file (rewritten in place)
  std::string node;         // only this node; empty: every node
  bool force = false;       // replace existing key files
  // Non-empty: make an operator key pair instead (RunOperatorKeygen).
  std::string operator_name;
};

// Loads the configuration, then for each selected node generates a key pair
// and writes the node's key_file, then sets the nodes' public_key in the
// configuration file (curve::SetPublicKeysInConfig). Prints one line per
// node and one for the configuration to `out`.
// Without `force`, when any selected node's key file exists, nothing is
// written at all: kAlreadyExists naming every such file and the --force
// option. Errors from loading the configuration, writing files or updating
// the configuration as they come (a failure after some key files were
// written says so: rerun with --force).
absl::Status RunKeygen(const KeygenOptions& options, std::ostream& out);

// `rdfcom keygen --operator NAME`: writes a fresh key pair to
// keys/operator-NAME.key in the configuration's folder (mode 0600) and
// appends `operators { name public_key key_file }` to the configuration file
// (atomically, only if the result loads), so rdfcom on this host uses it.
// kInvalidArgument for a name outside [A-Za-z0-9_.-]; kAlreadyExists when
// the configuration already has that operator, or the key file exists and
// `force` is false. To run rdfcom elsewhere, copy the key file there (mode
// 0600) and pass --key-file.
absl::Status RunOperatorKeygen(const KeygenOptions& options, std::ostream& out);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_KEYGEN_H_
