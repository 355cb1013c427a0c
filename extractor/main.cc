// rdf-extractor: the primary node's extractor (see extractor.h).
#include "common/base/status_macros.h"
#include "common/process/main.h"
#include "extractor/extractor.h"

int main(int argc, char** argv) {
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-extractor";
  spec.usage = "rdf-extractor --config FILE [--node NAME]";
  spec.description =
      "Ships the primary's audit trail to the receiver over ZeroMQ/CURVE,\n"
      "filtered to the protected volumes and files. Stops on SIGTERM or SIGINT.";
  spec.role = rdf::proto::PRIMARY;
  spec.run = [](const rdf::config::Config& cfg, const std::string& node,
                const std::atomic<bool>* stop) -> absl::Status {
    rdf::extractor::ExtractorOptions o;
    o.config = &cfg;
    o.node = node;
    RDF_ASSIGN_OR_RETURN(auto e, rdf::extractor::Extractor::Open(o));
    return e->Run(stop);
  };
  return rdf::ProcessMain(argc, argv, spec);
}
