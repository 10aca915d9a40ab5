#ifndef RESOLVERD_UDP_BATCH_H
#define RESOLVERD_UDP_BATCH_H
#include <stdint.h>
#include <sys/socket.h>

/// A batch of datagrams read with one recvmmsg(2) and answered with one sendmmsg(2).
/// All storage (headers, addresses, buffers) is allocated once, so serving a batch
/// allocates nothing. Only the system calls live here; DNS is done in Swift.
typedef struct udp_batch udp_batch;

/// `capacity` datagrams of at most `size` bytes each, in and out.
udp_batch *udp_batch_create(int capacity, int size);
void udp_batch_destroy(udp_batch *batch);

/// Binds a blocking UDP socket (SO_REUSEPORT when `reuseport`, IPV6_V6ONLY for IPv6
/// addresses) for `udp_batch_receive`. Returns the descriptor, or -errno.
int udp_batch_bind(const struct sockaddr *address, socklen_t length, int reuseport);

/// Waits up to `timeout_ms` (at least 1) for a datagram, then reads every datagram waiting,
/// up to the batch's capacity, in one recvmmsg(2). Returns how many (0 on timeout), or -errno.
int udp_batch_receive(udp_batch *batch, int fd, int timeout_ms);

/// Datagram `index` of the last receive, its length, and its sender.
const uint8_t *udp_batch_packet(const udp_batch *batch, int index, int *length);
const struct sockaddr *udp_batch_peer(const udp_batch *batch, int index);

/// The buffer where the reply to datagram `index` is written (`size` bytes), and its length
/// (0: no reply).
uint8_t *udp_batch_reply_buffer(udp_batch *batch, int index);
void udp_batch_set_reply(udp_batch *batch, int index, int length);

/// Sends every reply set since the last receive, to the sender of its datagram. Returns
/// how many were sent; the rest were dropped (a full socket buffer or an unreachable peer).
int udp_batch_send(udp_batch *batch, int fd);

/* Names the calling thread (Linux keeps 15 bytes): what top -H and /proc/.../comm show. */
void udp_batch_name_thread(const char *name);

/* Sets the calling thread's nice value (Linux: per thread); returns 0 or -errno. */
int udp_batch_nice_thread(int nice);

/* How many CPUs the calling thread may run on (its affinity mask: taskset, cpusets);
   the online CPUs when that cannot be read. */
int udp_batch_usable_cpus(void);

/* Asks the CPU to bring the cache line at `address` in for reading, without waiting: a hint
   (no fault, no effect on what the program computes), inlined into the Swift that calls it. */
static inline void udp_batch_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
