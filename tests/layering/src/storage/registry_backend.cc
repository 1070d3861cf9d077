// fine: allowed by name in CheckLayering.cmake (the registry's token reply).
#include <nlohmann/json.hpp>
