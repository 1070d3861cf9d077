#include "nydus/api/types.h"

#include <array>

namespace nydus::api {
namespace {

// Upstream's ApiRequest variant names, in the order of the ApiRequest alternatives.
constexpr std::array<std::string_view, 25> kRequestNames = {
    "GetDaemonInfo",        "GetDaemonInfoV2",        "ConfigureDaemon",       "GetEvents",
    "ExportFsBackendInfo",  "Start",                  "Exit",                  "SendFuseFd",
    "TakeoverFuseFd",       "Mount",                  "Remount",               "Umount",
    "ExportFsGlobalMetrics", "ExportFsFilesMetrics",  "ExportFsAccessPatterns", "ExportBackendMetrics",
    "ExportBlobcacheMetrics", "ExportFsInflightMetrics", "GetConfig",          "UpdateConfig",
    "GetBlobObject",        "CreateBlobObject",       "DeleteBlobObject",      "DeleteBlobFile",
    "ExportPrometheusMetrics"};
static_assert(kRequestNames.size() == std::variant_size_v<ApiRequest>);

}  // namespace

std::string_view request_name(const ApiRequest& r) { return kRequestNames[r.index()]; }

}  // namespace nydus::api
