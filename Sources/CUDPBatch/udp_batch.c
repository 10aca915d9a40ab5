#define _GNU_SOURCE
#include "udp_batch.h"
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct udp_batch {
    int capacity;
    int timeout_ms;             /* the SO_RCVTIMEO last set on the socket read; -1 none yet */
    int size;
    size_t stride;              /* bytes from one datagram's buffer to the next: size + a line */
    int received;
    int used;                   /* entries to reset before the next receive: the last batch's */
    struct mmsghdr *in;
    struct mmsghdr *out;
    struct iovec *in_iov;
    struct iovec *out_iov;
    struct sockaddr_storage *peers;
    int *reply_length;
    uint8_t *in_buffers;
    uint8_t *out_buffers;
};

udp_batch *udp_batch_create(int capacity, int size) {
    udp_batch *batch = calloc(1, sizeof(udp_batch));
    if (batch == NULL) { return NULL; }
    batch->capacity = capacity;
    batch->size = size;
    /* Buffers a power of two apart would all start in the same sets of the L1 cache (4 KiB
       apart: one set of 64 lines), so the first lines of 64 datagrams, where all of a DNS
       message is, would evict each other in both the kernel's copies and ours. One line more
       puts each start in the next set. */
    batch->stride = (((size_t)size + 63) & ~(size_t)63) + 64;
    batch->timeout_ms = -1;
    batch->in = calloc((size_t)capacity, sizeof(struct mmsghdr));
    batch->out = calloc((size_t)capacity, sizeof(struct mmsghdr));
    batch->in_iov = calloc((size_t)capacity, sizeof(struct iovec));
    batch->out_iov = calloc((size_t)capacity, sizeof(struct iovec));
    batch->peers = calloc((size_t)capacity, sizeof(struct sockaddr_storage));
    batch->reply_length = calloc((size_t)capacity, sizeof(int));
    batch->in_buffers = malloc((size_t)capacity * batch->stride);
    batch->out_buffers = malloc((size_t)capacity * batch->stride);
    if (!batch->in || !batch->out || !batch->in_iov || !batch->out_iov || !batch->peers
        || !batch->reply_length || !batch->in_buffers || !batch->out_buffers) {
        udp_batch_destroy(batch);
        return NULL;
    }
    for (int i = 0; i < capacity; i++) {
        batch->in_iov[i].iov_base = batch->in_buffers + (size_t)i * batch->stride;
        batch->in_iov[i].iov_len = (size_t)size;
        batch->in[i].msg_hdr.msg_iov = &batch->in_iov[i];
        batch->in[i].msg_hdr.msg_iovlen = 1;
        batch->in[i].msg_hdr.msg_name = &batch->peers[i];
    }
    batch->used = capacity;     /* the first receive sets every entry up */
    return batch;
}

void udp_batch_destroy(udp_batch *batch) {
    if (batch == NULL) { return; }
    free(batch->in);
    free(batch->out);
    free(batch->in_iov);
    free(batch->out_iov);
    free(batch->peers);
    free(batch->reply_length);
    free(batch->in_buffers);
    free(batch->out_buffers);
    free(batch);
}

int udp_batch_bind(const struct sockaddr *address, socklen_t length, int reuseport) {
    /* Blocking, so that one recvmmsg both waits and reads (udp_batch_receive); sends say
       MSG_DONTWAIT themselves. */
    int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { return -errno; }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
        || (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        || (address->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        || bind(fd, address, length) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    /* A receive buffer for a burst, or for a pause of the worker (a reload, a page fault, the
       scheduler): at the default 208 KiB a socket holds some 300 queries, 6 ms of them at
       50 000/s, and drops the rest; 4 MiB holds about a tenth of a second (NSD's so-rcvbuf
       is the same knob). Asked for, and what the system allows taken: net.core.rmem_max caps
       SO_RCVBUF, root may go past it with SO_RCVBUFFORCE; a smaller one is no reason to fail. */
    int size = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    return fd;
}

int udp_batch_receive(udp_batch *batch, int fd, int timeout_ms) {
    batch->received = 0;
    /* One system call per batch: recvmmsg blocks (up to SO_RCVTIMEO) for the first datagram
       and, with MSG_WAITFORONE, returns at once with whatever else is waiting. A poll(2)
       before a non-blocking read would be a second call per batch, and at moderate rates
       a batch is a few datagrams, so that call would cost as much as the answers. */
    if (timeout_ms < 1) { timeout_ms = 1; }   /* a zero SO_RCVTIMEO would wait for ever */
    if (batch->timeout_ms != timeout_ms) {
        struct timeval wait = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) < 0) { return -errno; }
        batch->timeout_ms = timeout_ms;
    }
    /* Only the entries the last batch used were changed (by the kernel, and by replies):
       at moderate rates a batch is a few datagrams of the 64, and resetting all of them
       was most of this function's work. */
    for (int i = 0; i < batch->used; i++) {
        batch->in[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        batch->in[i].msg_hdr.msg_flags = 0;
        batch->reply_length[i] = 0;
    }
    batch->used = 0;
    int count = recvmmsg(fd, batch->in, (unsigned)batch->capacity, MSG_WAITFORONE, NULL);
    if (count < 0) {
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    }
    batch->received = count;
    batch->used = count;
    return count;
}

const uint8_t *udp_batch_packet(const udp_batch *batch, int index, int *length) {
    // A datagram longer than the buffer arrives cut (MSG_TRUNC): report what we have; the
    // decoder then sees a malformed message, which is what it is to us.
    *length = (int)(batch->in[index].msg_len > (unsigned)batch->size ? (unsigned)batch->size : batch->in[index].msg_len);
    return batch->in_buffers + (size_t)index * batch->stride;
}

const struct sockaddr *udp_batch_peer(const udp_batch *batch, int index) {
    return (const struct sockaddr *)&batch->peers[index];
}

uint8_t *udp_batch_reply_buffer(udp_batch *batch, int index) {
    return batch->out_buffers + (size_t)index * batch->stride;
}

void udp_batch_set_reply(udp_batch *batch, int index, int length) {
    batch->reply_length[index] = length;
}

int udp_batch_send(udp_batch *batch, int fd) {
    int count = 0;
    for (int i = 0; i < batch->received; i++) {
        if (batch->reply_length[i] <= 0) { continue; }
        batch->out_iov[count].iov_base = udp_batch_reply_buffer(batch, i);
        batch->out_iov[count].iov_len = (size_t)batch->reply_length[i];
        memset(&batch->out[count].msg_hdr, 0, sizeof(struct msghdr));
        batch->out[count].msg_hdr.msg_iov = &batch->out_iov[count];
        batch->out[count].msg_hdr.msg_iovlen = 1;
        batch->out[count].msg_hdr.msg_name = &batch->peers[i];
        batch->out[count].msg_hdr.msg_namelen = batch->in[i].msg_hdr.msg_namelen;
        count++;
    }
    int sent = 0, delivered = 0;
    while (sent < count) {
        int result = sendmmsg(fd, batch->out + sent, (unsigned)(count - sent), MSG_DONTWAIT);
        if (result < 0) {
            if (errno == EINTR) { continue; }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // The socket buffer is full: wait briefly for room rather than drop.
                struct pollfd room = { .fd = fd, .events = POLLOUT };
                if (poll(&room, 1, 10) > 0) { continue; }
                break;
            }
            // One peer's error (ECONNREFUSED from an earlier ICMP, EPERM, …) must not stop
            // the replies to everyone else: skip that datagram.
            sent++;
            continue;
        }
        sent += result;
        delivered += result;
    }
    batch->received = 0;
    return delivered;
}

void udp_batch_name_thread(const char *name) {
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = 0;
    (void)pthread_setname_np(pthread_self(), cut);
}

int udp_batch_nice_thread(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : -errno;
}

int udp_batch_usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) { return CPU_COUNT(&set); }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
