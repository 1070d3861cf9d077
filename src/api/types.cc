#include "nydus/api/types.h"

namespace nydus::api {

const OpTraits& traits_of(const ApiRequest& r) {
  return std::visit([](const auto& op) -> const OpTraits& { return std::decay_t<decltype(op)>::traits; }, r);
}

bool payload_fits(const ApiRequest& r, PayloadKind kind) {
  const OpTraits& t = traits_of(r);
  return kind == t.reply || (t.reply_may_be_empty && kind == PayloadKind::kEmpty);
}

}  // namespace nydus::api
