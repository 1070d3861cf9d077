// breaks: fs renders no JSON; it returns snapshots the daemon renders.
#include <nlohmann/json.hpp>
