// rdfcom validate: checks that a configuration can run on this machine
// before anything is started (docs/rdfcom.md): the file loads, every node's
// key file is usable, the peers' public keys are known, every data_dir can be
// used, and the listening ports are free where they are local.
//
// It only looks: nothing is created, written or bound for longer than the
// probe of one port.
#ifndef RDF_RDFCOM_VALIDATE_H_
#define RDF_RDFCOM_VALIDATE_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"

namespace rdf::rdfcom {

struct ValidateOptions {
  std::string config_path;  // the configuration file
  std::string node;         // only this node; empty: every node
};

struct ValidateResult {
  int passed = 0;
  int failed = 0;
  bool ok() const { return failed == 0; }
};

// Runs every check and prints one line per check to `out`:
//   "ok   <what was checked>"            or
//   "FAIL <what is wrong>; <how to fix it>"
// then a summary line ("validate: all N checks passed" or
// "validate: F of N checks failed"). A configuration that does not load is
// one FAIL (with the loader's messages, one per line, indented) and stops
// the checks there; so does an unknown --node.
// Per selected node: the key file (exists, private, parses, matches the
// configured public_key), each peer's public key, the data_dir, and the
// node's non-zero audit_port, control_port and metrics_port (ProbeListenPort).
ValidateResult RunValidate(const ValidateOptions& options, std::ostream& out);

enum class PortState {
  kFree,      // a listener could bind it now
  kInUse,     // something listens there already (EADDRINUSE)
  kNotLocal,  // `host` is no address of this machine (EADDRNOTAVAIL)
};

// Tries to bind a TCP socket (SO_REUSEADDR, as ZeroMQ binds) to host:port
// and closes it at once. `host` is an IPv4 or IPv6 address or a host name;
// "*" means every interface. When the name resolves to several addresses,
// kInUse wins over kFree, and kNotLocal needs all of them to be non-local.
// Errors: kInvalidArgument when `host` does not resolve (or port is 0 or
// above 65535); any other bind failure (EACCES for a privileged port, ...)
// from errno, naming host and port.
absl::StatusOr<PortState> ProbeListenPort(const std::string& host, uint32_t port);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_VALIDATE_H_
