// Who may do what on a monitor's control port (docs/security.md, "Operator
// keys"). The ZAP handler admits the configured nodes' and operators' CURVE
// keys; this decides, per request, by the key the handshake proved:
//
//   caller                        may
//   ---------------------------   -------------------------------------------
//   an operator's key             every command
//   any node's key                read-only commands: STATUS (the peer
//                                 monitor's watch), VERIFY_FILES, VERIFY_SCAN
//   this node's own key           every command, only while the configuration
//                                 lists no operators (legacy: whoever reads
//                                 this node's secret key file controls this
//                                 node anyway)
//
// So another node's key never changes state here: in particular, after a
// takeover the old primary's key cannot stop the new primary or start an
// initialize on it, and a node that rejoins as backup is managed with the
// operators' keys (or, without operators, with its own key on its own host).
//
// Thread safety: pure functions.
#ifndef RDF_MONITOR_CONTROL_ACCESS_H_
#define RDF_MONITOR_CONTROL_ACCESS_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "common/config/config.h"
#include "control.pb.h"

namespace rdf::monitor {

struct Caller {
  enum Kind { kUnknown, kOperator, kNode };
  Kind kind = kUnknown;
  std::string name;  // the operator's or node's name
  std::string key;   // the client's public key (Z85)
  // "operator alice", "node primary", "unknown key"
  std::string ToString() const;
};

// Whom `key` belongs to: an operator (checked first), a node (by its
// configured public key, or the one in its key file: curve::PublicKeyOf), or
// nobody.
Caller IdentifyCaller(const config::Config& config, const std::string& key);

// The keys the ZAP handler admits on the control port: every node's and
// every operator's.
std::set<std::string> ControlPortKeys(const config::Config& config);

// Whether `command` only reads.
bool ReadOnlyCommand(proto::ControlRequest::Command command);

// OK when `caller` may make `command` on the monitor of `here`;
// kPermissionDenied with the reason and the fix otherwise. `takeover_epoch`:
// this node's takeover epoch (0: none), named in the reason.
absl::Status Authorize(const config::Config& config, const proto::NodeConfig& here,
                       const Caller& caller, proto::ControlRequest::Command command,
                       uint64_t takeover_epoch);

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_CONTROL_ACCESS_H_
