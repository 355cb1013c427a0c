// rdf-updater: applies one protected volume's image trail on the backup
// (see updater.h).
#include "common/process_main.h"
#include "common/status_macros.h"
#include "updater/updater.h"

int main(int argc, char** argv) {
  static std::string volume;
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-updater";
  spec.usage = "rdf-updater --config FILE [--node NAME] --volume NAME";
  spec.description =
      "Applies a protected volume's image trail to the backup volume (REDO),\n"
      "never past the receiver's save point, exactly once across crashes.\n"
      "Stops on SIGTERM or SIGINT.";
  spec.role = rdf::proto::BACKUP;
  spec.add_options = [](rdf::cli::Parser& p) {
    p.AddString("volume", &volume, "the protected volume to apply, e.g. $DATA01");
    p.Require("volume");
  };
  spec.run = [](const rdf::config::Config& cfg, const std::string& node,
                const std::atomic<bool>* stop) -> absl::Status {
    rdf::updater::UpdaterOptions o;
    o.config = &cfg;
    o.node = node;
    o.volume = volume;
    RDF_ASSIGN_OR_RETURN(auto u, rdf::updater::Updater::Open(o));
    return u->Run(stop);
  };
  return rdf::ProcessMain(argc, argv, spec);
}
