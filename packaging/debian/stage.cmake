# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) after `cmake --install` has filled its staging
# directory, before the .deb is written: adds what only the Debian package carries.
#   /etc/taskq/taskq.toml          the example configuration, a conffile, mode 0640 (postinst
#                                  gives it to group taskq)
#   /lib/systemd/system/*.service  the units of config/systemd/
#   /usr/share/man/*/*.gz          the installed man pages, gzip-compressed without name or time
#   /usr/share/doc/taskq/          copyright, changelog.gz (a native package: no Debian revision)
#   /usr/bin/*                     without the .comment section (cpack's strip leaves it)
#   /usr/share/lintian/overrides/  the lintian tags explained in packaging/debian/lintian-overrides
cmake_minimum_required(VERSION 3.25)

set(src ${CPACK_TASKQ_SOURCE_DIR})
set(deb ${src}/packaging/debian)
set(root ${CPACK_TEMPORARY_DIRECTORY})
if(NOT IS_DIRECTORY "${root}/usr/bin")
  message(FATAL_ERROR "stage.cmake: no usr/bin in the staging directory '${root}'")
endif()

set(rw_r_r OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Writes `gzip -9n < from` to `to`.
function(gzip_to from to)
  execute_process(COMMAND gzip -9 -n -c ${from} OUTPUT_FILE ${to} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "stage.cmake: gzip ${from} failed (${rc})")
  endif()
  file(CHMOD ${to} PERMISSIONS ${rw_r_r})
endfunction()

file(MAKE_DIRECTORY ${root}/etc/taskq)
file(COPY_FILE ${src}/config/taskq.example.toml ${root}/etc/taskq/taskq.toml)
file(CHMOD ${root}/etc/taskq/taskq.toml PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

file(GLOB units ${src}/config/systemd/*.service)
file(COPY ${units} DESTINATION ${root}/lib/systemd/system FILE_PERMISSIONS ${rw_r_r})

file(GLOB_RECURSE man_pages ${root}/usr/share/man/*)
foreach(page IN LISTS man_pages)
  if(NOT page MATCHES "\\.gz$")
    gzip_to(${page} ${page}.gz)
    file(REMOVE ${page})
  endif()
endforeach()

file(COPY ${deb}/copyright DESTINATION ${root}/usr/share/doc/taskq FILE_PERMISSIONS ${rw_r_r})
gzip_to(${deb}/changelog ${root}/usr/share/doc/taskq/changelog.gz)

file(GLOB programs ${root}/usr/bin/*)
foreach(program IN LISTS programs)
  execute_process(COMMAND objcopy --remove-section=.comment ${program} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "stage.cmake: objcopy --remove-section=.comment ${program} failed (${rc})")
  endif()
endforeach()

file(MAKE_DIRECTORY ${root}/usr/share/lintian/overrides)
file(COPY_FILE ${deb}/lintian-overrides ${root}/usr/share/lintian/overrides/taskq)
file(CHMOD ${root}/usr/share/lintian/overrides/taskq PERMISSIONS ${rw_r_r})
