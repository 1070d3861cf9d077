# CPack pre-build script: puts the sample configuration at /etc/nydus in the
# staged .deb tree. An install() rule cannot: its destination is relative to
# the prefix (/usr in the package), and an absolute one would write to the
# real /etc on `cmake --install --prefix <dir>`.
file(COPY ${CPACK_NYDUS_CONFFILE} DESTINATION ${CPACK_TEMPORARY_INSTALL_DIRECTORY}/etc/nydus)
