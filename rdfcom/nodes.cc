#include "rdfcom/nodes.h"

#include "common/base/status_macros.h"

namespace rdf::rdfcom {

absl::StatusOr<std::vector<const proto::NodeConfig*>> SelectedNodes(
    const config::Config& config, const std::string& node) {
  if (!node.empty()) {
    RDF_ASSIGN_OR_RETURN(const proto::NodeConfig* n,
                         config::SelectNode(config, node, proto::NODE_ROLE_UNSPECIFIED));
    return std::vector<const proto::NodeConfig*>{n};
  }
  std::vector<const proto::NodeConfig*> nodes;
  for (const proto::NodeConfig& n : config.proto.nodes()) nodes.push_back(&n);
  return nodes;
}

}  // namespace rdf::rdfcom
