// rdf-updater: applies one protected volume's image trail on the backup
// (see updater.h).
#include <cstdio>

#include "common/base/status_macros.h"
#include "common/json/proto.h"
#include "common/process/main.h"
#include "updater/updater.h"

int main(int argc, char** argv) {
  static std::string volume;
  static bool takeover = false;
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-updater";
  spec.usage = "rdf-updater --config FILE [--node NAME] --volume NAME [--takeover]";
  spec.description =
      "Applies a protected volume's image trail to the backup volume (REDO),\n"
      "never past the receiver's save point, exactly once across crashes.\n"
      "Stops on SIGTERM or SIGINT.\n"
      "--takeover (run by rdfcom takeover): apply up to the receiver's final save\n"
      "point, undo the transactions whose outcome never arrived, print the\n"
      "volume's result as JSON and exit; restartable.";
  spec.role = rdf::proto::BACKUP;
  spec.add_options = [](rdf::cli::Parser& p) {
    p.AddString("volume", &volume, "the protected volume to apply, e.g. $DATA01");
    p.AddBool("takeover", &takeover, "run this volume's part of a takeover, then exit");
    p.Require("volume");
  };
  spec.run = [](const rdf::config::Config& cfg, const std::string& node,
                const std::atomic<bool>* stop) -> absl::Status {
    rdf::updater::UpdaterOptions o;
    o.config = &cfg;
    o.node = node;
    o.volume = volume;
    RDF_ASSIGN_OR_RETURN(auto u, rdf::updater::Updater::Open(o));
    if (!takeover) return u->Run(stop);
    RDF_ASSIGN_OR_RETURN(rdf::proto::VolumeTakeoverResult r, u->Takeover(stop));
    std::printf("%s\n", rdf::json::MessageToJson(r).c_str());
    return absl::OkStatus();
  };
  return rdf::ProcessMain(argc, argv, spec);
}
