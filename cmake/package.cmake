# The Debian package: `cpack -G DEB` in a build tree (scripts/package does it for users) writes
# taskq_<version>_amd64.deb with the four programs, their man pages, the systemd units, the
# example configuration as the conffile /etc/taskq/taskq.toml and the maintainer scripts of
# packaging/debian/ (a `taskq` system user; no service is started on install).
#
# A plain `cmake --install` is not changed by this file: the Debian layout (/etc, /lib/systemd,
# gzip-compressed man pages, /usr/share/doc/taskq) is assembled by packaging/debian/stage.cmake
# in CPack's staging directory only.

set(TASKQ_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/packaging/debian)

# The newest changelog entry names the version being packaged: bump both together.
file(STRINGS ${TASKQ_DEBIAN_DIR}/changelog taskq_changelog_top LIMIT_COUNT 1)
if(NOT taskq_changelog_top MATCHES "^taskq \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/debian/changelog: the first entry is '${taskq_changelog_top}' but the project "
                      "version is ${PROJECT_VERSION}; add an entry 'taskq (${PROJECT_VERSION}) ...' at the top")
endif()

set(TASKQ_PACKAGE_MAINTAINER "taskq maintainers <maintainers@taskq.invalid>"
    CACHE STRING "Maintainer field of the Debian package")
set(TASKQ_PACKAGE_HOMEPAGE "" CACHE STRING "Homepage field of the Debian package (none when empty)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME taskq)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                               WORLD_READ WORLD_EXECUTE)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "background jobs on PostgreSQL: worker, scheduler, HTTP API and CLI")
# Lines of at most 80 characters (lintian).
set(CPACK_PACKAGE_DESCRIPTION
    "taskq runs background jobs with PostgreSQL as its only infrastructure: jobs\n"
    "are rows and wake-ups are LISTEN/NOTIFY. This package holds the operator CLI\n"
    "taskctl and three daemons managed by systemd: taskq-workerd claims jobs and\n"
    "runs each one isolated (a process or a webhook), taskq-schedulerd fires\n"
    "periodic jobs and keeps the queue healthy, and taskq-apid serves the HTTP/JSON\n"
    "API.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # taskq_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TASKQ_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
if(TASKQ_PACKAGE_HOMEPAGE)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${TASKQ_PACKAGE_HOMEPAGE}")
endif()
# The shared libraries the programs link (dpkg-shlibdeps), plus adduser for postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${TASKQ_DEBIAN_DIR}/conffiles ${TASKQ_DEBIAN_DIR}/postinst
                                       ${TASKQ_DEBIAN_DIR}/prerm ${TASKQ_DEBIAN_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Read by stage.cmake when CPack runs it.
set(CPACK_TASKQ_SOURCE_DIR ${PROJECT_SOURCE_DIR})
set(CPACK_PRE_BUILD_SCRIPTS ${TASKQ_DEBIAN_DIR}/stage.cmake)

include(CPack)
