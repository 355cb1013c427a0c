// rdf-receiver: the backup node's receiver (see receiver.h).
#include "common/process_main.h"
#include "common/status_macros.h"
#include "receiver/receiver.h"

int main(int argc, char** argv) {
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-receiver";
  spec.usage = "rdf-receiver --config FILE [--node NAME]";
  spec.description =
      "Receives audit from the extractor over ZeroMQ/CURVE and writes the\n"
      "backup's image trails with save points. Stops on SIGTERM or SIGINT.";
  spec.role = rdf::proto::BACKUP;
  spec.run = [](const rdf::config::Config& cfg, const std::string& node,
                const std::atomic<bool>* stop) -> absl::Status {
    rdf::receiver::ReceiverOptions o;
    o.config = &cfg;
    o.node = node;
    RDF_ASSIGN_OR_RETURN(auto r, rdf::receiver::Receiver::Open(o));
    return r->Run(stop);
  };
  return rdf::ProcessMain(argc, argv, spec);
}
