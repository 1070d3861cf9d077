# The layering rule, checked mechanically (ctest `layering`, or by hand):
#   cmake -DROOT=<source tree> -P cmake/CheckLayering.cmake
# Every #include "nydus/<layer>/..." in src/<layer>/ and include/nydus/<layer>/
# must name a layer that one may use. Lower layers never see higher ones:
#   common/config < storage < (builder | fs) < daemon < tools
# and api (typed model, router, client) sits beside them on config and the
# HTTP transport: only daemon and tools use it. The transport (src/api/http/,
# public header nydus/api/http_server.h) knows only common. Top-level headers
# (nydus/result.h, ...) are common. Wire formats live at the edge: fs and
# storage include no JSON library (nlohmann/json*.hpp, nydus/json.h); they
# return typed snapshots and error codes that api/daemon render. Exits
# non-zero listing each offending include. tests/layering/ holds a tree that
# breaks each rule once.
cmake_minimum_required(VERSION 3.25)
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source tree> -P CheckLayering.cmake")
endif()

set(allowed_common common)
set(allowed_config common config)
set(allowed_storage common config storage)
set(allowed_builder common config storage builder)
set(allowed_fs common config storage fs)
set(allowed_api common config http api)
set(allowed_http common http)
set(allowed_daemon common config storage fs http api daemon)

# Layers that must not see a JSON library, and the files of theirs that may,
# each with its reason (none of them renders or parses the management API).
set(no_json_layers storage fs)
set(json_allowed
  src/storage/registry_backend.cc  # parses the registry's token reply (Bearer auth), not our wire
)

# Layer of a file under src/ or include/nydus/, or "" for one the rule does not cover.
function(layer_of path out)
  set(layer "")
  if(path MATCHES "^(src|include/nydus)/api/http/" OR path MATCHES "^include/nydus/api/http_server\\.h$")
    set(layer http)
  elseif(path MATCHES "^(src|include/nydus)/([a-z_]+)/")
    set(layer ${CMAKE_MATCH_2})
  elseif(path MATCHES "^include/nydus/[^/]+$")
    set(layer common)
  endif()
  set(${out} ${layer} PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE files RELATIVE ${ROOT} ${ROOT}/src/*.h ${ROOT}/src/*.cc ${ROOT}/include/nydus/*.h)
set(violations "")
foreach(file IN LISTS files)
  layer_of(${file} layer)
  if(layer STREQUAL "" OR NOT DEFINED allowed_${layer})
    continue()
  endif()
  if(layer IN_LIST no_json_layers AND NOT file IN_LIST json_allowed)
    file(STRINGS ${ROOT}/${file} json_includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<](nlohmann/json|nydus/json\\.h)")
    foreach(line IN LISTS json_includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]+)[\">].*" "\\1" header "${line}")
      list(APPEND violations "${file}: ${layer} includes ${header} (JSON belongs to api/daemon)")
    endforeach()
  endif()
  file(STRINGS ${ROOT}/${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]nydus/")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]+)[\">].*" "\\1" header "${line}")
    if(header STREQUAL "nydus/build_info_values.h")
      set(used daemon)  # generated for the daemon, in its build tree
    else()
      layer_of(include/${header} used)
    endif()
    if(NOT used IN_LIST allowed_${layer})
      list(APPEND violations "${file}: ${layer} includes ${header} (${used})")
    endif()
  endforeach()
endforeach()

list(LENGTH files count)
if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "layering: a lower layer includes a higher layer's header or a JSON library:\n  ${text}")
endif()
message(STATUS "layering: ${count} files, every include points down, no JSON below api/daemon")
