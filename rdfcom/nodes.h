// Which nodes an rdfcom command acts on.
#ifndef RDF_RDFCOM_NODES_H_
#define RDF_RDFCOM_NODES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/config.h"

namespace rdf::rdfcom {

// The node named `node`, or every node of the configuration when `node` is
// empty (kNotFound for an unknown name).
absl::StatusOr<std::vector<const proto::NodeConfig*>> SelectedNodes(
    const config::Config& config, const std::string& node);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_NODES_H_
