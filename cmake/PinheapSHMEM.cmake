# libpinheap-shmem (shmem/): OpenSHMEM's allocation routines, shmem_malloc
# and the others, served by a pinheap symmetric heap inside one block of the
# implementation's own symmetric heap, for unmodified OpenSHMEM programs
# (linked before the implementation, or in LD_PRELOAD under oshrun). A
# library over libpinheap's public API, shared and static, like the comm
# layers' providers. Built when Open MPI's OSHMEM is found through its
# wrapper, oshcc, with its profiling interface (pshmem_*), through which
# the library reaches the implementation.
#
# Sets PINHEAP_OSHMEM_{INCLUDE,LIBS,CFLAGS,LDFLAGS,FOUND} (OSHMEM's flags:
# tests/shmem and bench/ build their OpenSHMEM programs with them) and
# PINHEAP_SHMEM_BUILT.

include(${CMAKE_CURRENT_LIST_DIR}/PinheapWrapper.cmake)
include(CheckSymbolExists)

option(PINHEAP_SHMEM "Build libpinheap-shmem when Open MPI's OSHMEM (oshcc) is found" ON)
set(PINHEAP_SHMEM_BUILT OFF)
pinheap_wrapper_flags(PINHEAP_OSHMEM oshcc --showme:compile --showme:link)
if(PINHEAP_OSHMEM_FOUND)
  set(CMAKE_REQUIRED_INCLUDES ${PINHEAP_OSHMEM_INCLUDE})
  set(CMAKE_REQUIRED_LIBRARIES ${PINHEAP_OSHMEM_LIBS})
  check_symbol_exists(pshmem_align pshmem.h PINHEAP_OSHMEM_PROFILING)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
endif()

if(NOT PINHEAP_SHMEM)
  message(STATUS "pinheap: libpinheap-shmem not built (PINHEAP_SHMEM=OFF)")
  return()
endif()
if(NOT PINHEAP_OSHMEM_FOUND OR NOT PINHEAP_OSHMEM_PROFILING)
  message(STATUS "pinheap: libpinheap-shmem not built: no OpenSHMEM with its profiling interface (oshcc, pshmem_align)")
  return()
endif()
set(PINHEAP_SHMEM_BUILT ON)

set(PINHEAP_SHMEM_SOURCES shmem/shserve.c shmem/shconfig.c shmem/shblock.c shmem/shgather.c)
# The shared library links libpinheap.so, the static one libpinheap.a; both
# carry OSHMEM's flags, so that a program linked with the target needs no
# wrapper, and name OSHMEM's libraries after themselves, so that their
# shmem_* come first.
foreach(kind SHARED STATIC)
  if(kind STREQUAL SHARED)
    set(t pinheap_shmem)
    set(core pinheap)
  else()
    set(t pinheap_shmem_static)
    set(core pinheap_static)
  endif()
  add_library(${t} ${kind} ${PINHEAP_SHMEM_SOURCES})
  set_target_properties(${t} PROPERTIES OUTPUT_NAME pinheap-shmem C_VISIBILITY_PRESET hidden)
  target_include_directories(${t} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_include_directories(${t} SYSTEM PUBLIC ${PINHEAP_OSHMEM_INCLUDE})
  target_compile_options(${t} PUBLIC ${PINHEAP_OSHMEM_CFLAGS})
  target_link_libraries(${t} PUBLIC ${core} ${PINHEAP_OSHMEM_LIBS} ${PINHEAP_OSHMEM_LDFLAGS} Threads::Threads)
endforeach()
# Preloaded, it must find libpinheap beside itself without the program's
# help (LD_PRELOAD=$PREFIX/lib/libpinheap-shmem.so, no LD_LIBRARY_PATH).
set_target_properties(pinheap_shmem PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  INSTALL_RPATH "$ORIGIN")
add_library(pinheap::pinheap_shmem ALIAS pinheap_shmem)

install(TARGETS pinheap_shmem pinheap_shmem_static EXPORT pinheapTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# pkg-config: OSHMEM has no .pc file of its own; its wrapper's flags go in.
string(REPLACE ";" " " PINHEAP_SHMEM_PC_LIBS "${PINHEAP_OSHMEM_LIBS}")
set(PINHEAP_SHMEM_PC_CFLAGS "")
foreach(d ${PINHEAP_OSHMEM_INCLUDE})
  string(APPEND PINHEAP_SHMEM_PC_CFLAGS " -I${d}")
endforeach()
configure_file(cmake/pinheap-shmem.pc.in ${PROJECT_BINARY_DIR}/pinheap-shmem.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pinheap-shmem.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
message(STATUS "pinheap: libpinheap-shmem built for ${PINHEAP_OSHMEM_WRAPPER}")
