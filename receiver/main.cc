// rdf-receiver: the backup node's receiver (see receiver.h).
#include "common/base/status_macros.h"
#include "common/process/main.h"
#include "receiver/receiver.h"

int main(int argc, char** argv) {
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-receiver";
  static bool finalize = false;
  spec.usage = "rdf-receiver --config FILE [--node NAME] [--finalize]";
  spec.description =
      "Receives audit from the extractor over ZeroMQ/CURVE and writes the\n"
      "backup's image trails with save points. Stops on SIGTERM or SIGINT.\n"
      "Once a takeover is issued it refuses the old primary and writes its final\n"
      "save point; --finalize does only that, without listening, and exits\n"
      "(rdfcom takeover runs it when no receiver is running).";
  spec.add_options = [](rdf::cli::Parser& p) {
    p.AddBool("finalize", &finalize, "takeover: fix the final save point and exit");
  };
  spec.role = rdf::proto::BACKUP;
  spec.run = [](const rdf::config::Config& cfg, const std::string& node,
                const std::atomic<bool>* stop) -> absl::Status {
    rdf::receiver::ReceiverOptions o;
    o.config = &cfg;
    o.node = node;
    o.finalize_only = finalize;
    RDF_ASSIGN_OR_RETURN(auto r, rdf::receiver::Receiver::Open(o));
    return r->Run(stop);
  };
  return rdf::ProcessMain(argc, argv, spec);
}
