#include "monitor/control_access.h"

#include "absl/strings/str_cat.h"
#include "common/net/curve_keys.h"

namespace rdf::monitor {

std::string Caller::ToString() const {
  switch (kind) {
    case kOperator:
      return absl::StrCat("operator ", name);
    case kNode:
      return absl::StrCat("node ", name);
    case kUnknown:
      break;
  }
  return "unknown key";
}

Caller IdentifyCaller(const config::Config& config, const std::string& key) {
  Caller c;
  c.key = key;
  if (key.empty()) return c;
  for (const proto::OperatorConfig& o : config.proto.operators()) {
    if (o.public_key() == key) {
      c.kind = Caller::kOperator;
      c.name = o.name();
      return c;
    }
  }
  for (const proto::NodeConfig& n : config.proto.nodes()) {
    absl::StatusOr<std::string> k = curve::PublicKeyOf(config, n);
    if (k.ok() && *k == key) {
      c.kind = Caller::kNode;
      c.name = n.name();
      return c;
    }
  }
  return c;
}

std::set<std::string> ControlPortKeys(const config::Config& config) {
  std::set<std::string> keys;
  for (const proto::NodeConfig& n : config.proto.nodes()) {
    absl::StatusOr<std::string> key = curve::PublicKeyOf(config, n);
    if (key.ok()) keys.insert(*key);
  }
  for (const proto::OperatorConfig& o : config.proto.operators()) keys.insert(o.public_key());
  return keys;
}

bool ReadOnlyCommand(proto::ControlRequest::Command command) {
  return command == proto::ControlRequest::STATUS ||
         command == proto::ControlRequest::VERIFY_FILES ||
         command == proto::ControlRequest::VERIFY_SCAN;
}

absl::Status Authorize(const config::Config& config, const proto::NodeConfig& here,
                       const Caller& caller, proto::ControlRequest::Command command,
                       uint64_t takeover_epoch) {
  if (caller.kind == Caller::kOperator) return absl::OkStatus();
  if (caller.kind == Caller::kUnknown) {
    return absl::PermissionDeniedError("the client key is neither a node's nor an operator's");
  }
  if (ReadOnlyCommand(command)) return absl::OkStatus();
  const bool own = caller.name == here.name();
  if (own && config.proto.operators().empty()) return absl::OkStatus();
  const std::string what = proto::ControlRequest::Command_Name(command);
  if (own) {
    return absl::PermissionDeniedError(absl::StrCat(
        what, " needs an operator key: with operators configured, a node's own key only "
        "reads; run rdfcom with --key-file (or an operator key_file) of an operator"));
  }
  std::string why = absl::StrCat("the key of node '", caller.name, "' may only read on node '",
                                 here.name(), "'");
  if (takeover_epoch > 0) {
    absl::StrAppend(&why, " (which took over from it: takeover epoch ", takeover_epoch, ")");
  }
  return absl::PermissionDeniedError(absl::StrCat(
      why, "; ", what, " needs an operator key (or, while no operators are configured, the "
      "key of node '", here.name(), "' itself; docs/security.md)"));
}

}  // namespace rdf::monitor
