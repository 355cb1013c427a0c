// rdf-purger: deletes the backup's image-trail segments that nothing needs
// any more (see purger.h, docs/purger.md).
#include "common/base/status_macros.h"
#include "common/process/main.h"
#include "purger/purger.h"

int main(int argc, char** argv) {
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-purger";
  spec.usage = "rdf-purger --config FILE [--node NAME]";
  spec.description =
      "Every purger.interval_ms deletes image-trail segments that every updater\n"
      "has passed and that hold no record of a transaction takeover could still\n"
      "have to undo, keeping the newest purger.retain_count of each trail.\n"
      "Stops on SIGTERM or SIGINT.";
  spec.role = rdf::proto::BACKUP;
  spec.run = [](const rdf::config::Config& cfg, const std::string& node,
                const std::atomic<bool>* stop) -> absl::Status {
    rdf::purger::PurgerOptions o;
    o.config = &cfg;
    o.node = node;
    RDF_ASSIGN_OR_RETURN(auto p, rdf::purger::Purger::Open(o));
    return p->Run(stop);
  };
  return rdf::ProcessMain(argc, argv, spec);
}
