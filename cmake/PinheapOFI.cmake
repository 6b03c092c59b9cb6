# The libfabric provider: libpinheap-ofi.{so,a} and include/pinheap_ofi.h,
# built on libpinheap's public API. On by default when pkg-config finds
# libfabric.
pkg_check_modules(LIBFABRIC IMPORTED_TARGET libfabric)
option(PINHEAP_OFI "Build the libfabric provider (libpinheap-ofi)" ${LIBFABRIC_FOUND})
if(NOT PINHEAP_OFI)
  return()
endif()
if(NOT LIBFABRIC_FOUND)
  message(FATAL_ERROR "PINHEAP_OFI is on but pkg-config finds no libfabric (Debian: libfabric-dev)")
endif()

# The shared library links libpinheap.so, the static one libpinheap.a.
foreach(kind SHARED STATIC)
  if(kind STREQUAL SHARED)
    set(t pinheap_ofi)
    set(core pinheap)
  else()
    set(t pinheap_ofi_static)
    set(core pinheap_static)
  endif()
  add_library(${t} ${kind} comm/prov_ofi.c)
  set_target_properties(${t} PROPERTIES OUTPUT_NAME pinheap-ofi C_VISIBILITY_PRESET hidden)
  target_include_directories(${t} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    ${LIBFABRIC_INCLUDE_DIRS})
  target_link_libraries(${t} PUBLIC ${core} ${LIBFABRIC_LINK_LIBRARIES} PRIVATE Threads::Threads)
endforeach()
set_target_properties(pinheap_ofi PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
add_library(pinheap::pinheap_ofi ALIAS pinheap_ofi)

install(FILES include/pinheap_ofi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS pinheap_ofi pinheap_ofi_static EXPORT pinheapTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
configure_file(cmake/pinheap-ofi.pc.in ${PROJECT_BINARY_DIR}/pinheap-ofi.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pinheap-ofi.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
