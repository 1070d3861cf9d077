# Captures the version block that nydusd reports. `git_commit` must be identical in
# `nydusd --version` and in GET /api/v1/daemon: nydus-snapshotter compares the two.
find_package(Git QUIET)
set(NYDUS_GIT_COMMIT "unknown")
set(NYDUS_PACKAGE_VER "v${PROJECT_VERSION}")
if(GIT_FOUND AND EXISTS "${CMAKE_SOURCE_DIR}/.git")
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse HEAD
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _commit
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _commit)
    set(NYDUS_GIT_COMMIT "${_commit}")
  endif()
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --tags --always --dirty
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _describe
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _describe AND NOT _describe STREQUAL _commit)
    string(REGEX MATCH "^v[0-9]" _is_tag "${_describe}")
    if(_is_tag)
      set(NYDUS_PACKAGE_VER "${_describe}")
    endif()
  endif()
endif()
string(TIMESTAMP NYDUS_BUILD_TIME "%Y-%m-%dT%H:%M:%SZ" UTC)
if(CMAKE_BUILD_TYPE MATCHES "Debug")
  set(NYDUS_BUILD_PROFILE "debug")
else()
  set(NYDUS_BUILD_PROFILE "release")
endif()
set(NYDUS_COMPILER "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
