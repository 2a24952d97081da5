/* bench/empty.c — an LD_PRELOAD library that does nothing: the floor for the
 * start-up cost of any preloaded library (loader work only). */
int sfy_bench_empty_marker;
