# The MPI provider (include/pinheap_mpi.h, comm/prov_mpi.c), a library over
# libpinheap. Open MPI and MPICH have different ABIs, so it is built once per
# MPI found: libpinheap-mpi-openmpi and libpinheap-mpi-mpich, each shared and
# static. Sets PINHEAP_MPI_FLAVOURS to the flavours built (tests/mpi uses it).

include(${CMAKE_CURRENT_LIST_DIR}/PinheapWrapper.cmake)

option(PINHEAP_MPI "Build the MPI provider for each MPI found (Open MPI, MPICH)" ON)
set(PINHEAP_MPI_FLAVOURS "")

# Flags of one MPI, into PINHEAP_MPI_<flavour>_{INCLUDE,LIBS,CFLAGS,LDFLAGS,
# REQUIRES}: from its pkg-config module, else from its compiler wrapper.
function(pinheap_mpi_flags flavour module wrapper compile_flag link_flag)
  set(pfx PINHEAP_MPI_${flavour})
  pkg_check_modules(${pfx}_PC QUIET ${module})
  if(${pfx}_PC_FOUND)
    set(${pfx}_INCLUDE "${${pfx}_PC_INCLUDE_DIRS}" PARENT_SCOPE)
    set(${pfx}_LIBS "${${pfx}_PC_LINK_LIBRARIES}" PARENT_SCOPE)
    set(${pfx}_CFLAGS "${${pfx}_PC_CFLAGS_OTHER}" PARENT_SCOPE)
    set(${pfx}_LDFLAGS "${${pfx}_PC_LDFLAGS_OTHER}" PARENT_SCOPE)
    set(${pfx}_REQUIRES ${module} PARENT_SCOPE)
    set(${pfx}_FOUND TRUE PARENT_SCOPE)
    return()
  endif()
  pinheap_wrapper_flags(${pfx} ${wrapper} ${compile_flag} ${link_flag})
  foreach(v INCLUDE LIBS CFLAGS LDFLAGS FOUND)
    set(${pfx}_${v} "${${pfx}_${v}}" PARENT_SCOPE)
  endforeach()
  set(${pfx}_REQUIRES "" PARENT_SCOPE)
endfunction()

# The provider for one MPI: targets pinheap_mpi_<flavour> (shared, over
# libpinheap) and pinheap_mpi_<flavour>_static (over libpinheap.a), both
# named pinheap-mpi-<flavour>, installed and exported with pinheap's CMake
# package, and a pkg-config file. The MPI's include directories and
# libraries are absolute paths, so the exported targets carry them.
function(pinheap_mpi_add flavour)
  set(pfx PINHEAP_MPI_${flavour})
  foreach(kind "" _static)
    set(t pinheap_mpi_${flavour}${kind})
    if(kind STREQUAL "")
      add_library(${t} SHARED comm/prov_mpi.c)
      set_target_properties(${t} PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
      target_link_libraries(${t} PUBLIC pinheap)
    else()
      add_library(${t} STATIC comm/prov_mpi.c)
      target_link_libraries(${t} PUBLIC pinheap_static)
    endif()
    set_target_properties(${t} PROPERTIES OUTPUT_NAME pinheap-mpi-${flavour})
    target_include_directories(${t} PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_include_directories(${t} SYSTEM PUBLIC ${${pfx}_INCLUDE})
    target_compile_options(${t} PUBLIC ${${pfx}_CFLAGS})
    # Named in the message of a program whose MPI is not this one.
    target_compile_definitions(${t} PRIVATE PINHEAP_MPI_FLAVOUR="${flavour}")
    target_link_libraries(${t} PUBLIC ${${pfx}_LIBS} ${${pfx}_LDFLAGS} Threads::Threads PRIVATE ${CMAKE_DL_LIBS})
    install(TARGETS ${t} EXPORT pinheapTargets
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  endforeach()
  set(PINHEAP_MPI_PC_FLAVOUR ${flavour})
  set(PINHEAP_MPI_PC_REQUIRES ${${pfx}_REQUIRES})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/pinheap-mpi.pc.in
    ${PROJECT_BINARY_DIR}/pinheap-mpi-${flavour}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pinheap-mpi-${flavour}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

if(PINHEAP_MPI)
  pinheap_mpi_flags(openmpi ompi-c mpicc.openmpi -showme:compile -showme:link)
  pinheap_mpi_flags(mpich mpich mpicc.mpich -compile_info -link_info)
  foreach(flavour openmpi mpich)
    if(PINHEAP_MPI_${flavour}_FOUND)
      pinheap_mpi_add(${flavour})
      list(APPEND PINHEAP_MPI_FLAVOURS ${flavour})
    endif()
  endforeach()
  if(PINHEAP_MPI_FLAVOURS)
    string(REPLACE ";" ", " _flavours "${PINHEAP_MPI_FLAVOURS}")
    message(STATUS "pinheap: MPI provider built for: ${_flavours}")
    install(FILES include/pinheap_mpi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  else()
    message(STATUS "pinheap: MPI provider not built: neither Open MPI (ompi-c, mpicc.openmpi) nor MPICH (mpich, mpicc.mpich) found")
  endif()
else()
  message(STATUS "pinheap: MPI provider not built (PINHEAP_MPI=OFF)")
endif()
