# Install layout, the exported CMake package, the pkg-config file and the
# Debian package. Paths follow GNUInstallDirs, so `cmake --install --prefix P`
# and distribution packaging both work.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS nydusd nydusctl nydus-image RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The client library and exactly the headers nydus/api/client.h includes
# (tests/install builds a consumer against them, so a missing one fails there).
install(TARGETS nydus_api_client EXPORT nydus-cpp-targets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# `--strip` (and CPack) strips executables only; the archive's debug info is
# most of its size, so it goes too.
install(CODE "if(CMAKE_INSTALL_DO_STRIP)
  execute_process(COMMAND ${CMAKE_STRIP} -g \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/$<TARGET_FILE_NAME:nydus_api_client>\" COMMAND_ERROR_IS_FATAL ANY)
endif()")
foreach(header api/client.h api/payloads.h api/types.h api/error.h json.h result.h
               config/blob_entry.h config/config_v2.h config/backend_config.h config/validate.h)
  get_filename_component(subdir ${header} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/include/nydus/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nydus/${subdir})
endforeach()

set(NYDUS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nydus-cpp)
install(EXPORT nydus-cpp-targets NAMESPACE nydus:: DESTINATION ${NYDUS_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nydus-cpp-config.cmake.in
  ${PROJECT_BINARY_DIR}/nydus-cpp-config.cmake INSTALL_DESTINATION ${NYDUS_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nydus-cpp-config-version.cmake
  COMPATIBILITY SameMinorVersion)  # 0.x: a minor bump may break the API
install(FILES ${PROJECT_BINARY_DIR}/nydus-cpp-config.cmake ${PROJECT_BINARY_DIR}/nydus-cpp-config-version.cmake
  DESTINATION ${NYDUS_CMAKE_DIR})

# pkg-config: paths relative to the .pc file's own directory, so the tree works
# at any --prefix (the install prefix is not known when configuring).
file(RELATIVE_PATH NYDUS_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/nydus-api-client.pc.in ${PROJECT_BINARY_DIR}/nydus-api-client.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/nydus-api-client.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The standalone shared daemon: its systemd unit and a sample configuration.
# The unit goes where Debian looks for package units; the configuration is
# documentation here and a conffile in /etc/nydus in the .deb (cmake/DebConffiles.cmake).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/nydusd.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/nydusd-config.json DESTINATION ${CMAKE_INSTALL_DATADIR}/nydus-cpp)

# `cpack -G DEB` in the build directory.
set(CPACK_PACKAGE_NAME nydus-cpp)
set(CPACK_PACKAGE_VENDOR nydus-cpp)
set(CPACK_PACKAGE_CONTACT "nydus-cpp maintainers <nydus-cpp@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Nydus image service daemon (RAFS v6 over FUSE), nydusctl, nydus-image and the API client library")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)  # debug info stays in the build tree
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # libfuse3-3, libcurl4, libssl3, … from the binaries
set(CPACK_DEBIAN_PACKAGE_DEPENDS fuse3)  # fusermount3 for unprivileged clean-up, /etc/fuse.conf
set(CPACK_DEBIAN_PACKAGE_CONFLICTS nydus)  # upstream's package ships the same /usr/bin names
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/DebConffiles.cmake)
set(CPACK_NYDUS_CONFFILE ${PROJECT_SOURCE_DIR}/packaging/nydusd-config.json)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
