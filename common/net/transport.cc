#include "common/net/transport.h"

namespace rdf::net {

Transport::~Transport() = default;

}  // namespace rdf::net
