/* Context of the README's OpenSHMEM program: the block is the whole
 * program, run at 2 PEs with libpinheap-shmem linked and preloaded; it
 * exits 0 only when its put landed. */
#pragma readme top
#pragma readme body
