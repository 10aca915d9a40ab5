/*
 * bench/echo.c — a trivial UDP "DNS server" that returns every query as its own answer
 * (QR set, NOERROR, nothing added). It does no DNS work at all, so the rate loadgen
 * reaches against it is the ceiling of the load generator + loopback on this machine.
 *
 *   gcc -O2 -Wall -o bench/out/echo bench/echo.c
 *   echo -p PORT [-s 127.0.0.1]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "s:p:")) != -1) {
        if (opt == 's') addr = optarg;
        else if (opt == 'p') port = atoi(optarg);
        else { fprintf(stderr, "usage: echo -p PORT [-s ADDR]\n"); return 2; }
    }
    if (port < 1 || port > 65535) { fprintf(stderr, "echo: need -p PORT\n"); return 2; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "echo: bad address\n"); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("echo: bind"); return 1; }

    static char buf[BATCH][1500];
    static struct sockaddr_in from[BATCH];
    struct mmsghdr msg[BATCH];
    struct iovec iov[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = buf[i]; iov[i].iov_len = sizeof buf[i];
            memset(&msg[i].msg_hdr, 0, sizeof msg[i].msg_hdr);
            msg[i].msg_hdr.msg_iov = &iov[i]; msg[i].msg_hdr.msg_iovlen = 1;
            msg[i].msg_hdr.msg_name = &from[i]; msg[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int n = recvmmsg(fd, msg, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) { if (errno == EINTR) continue; perror("echo: recvmmsg"); return 1; }
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (msg[i].msg_len < 12) continue;
            buf[i][2] |= (char)0x80;              /* QR */
            buf[i][3] &= (char)0xf0;              /* RA=0, rcode NOERROR */
            iov[m].iov_base = buf[i]; iov[m].iov_len = msg[i].msg_len;
            msg[m].msg_hdr.msg_iov = &iov[m];
            msg[m].msg_hdr.msg_name = &from[i]; msg[m].msg_hdr.msg_namelen = sizeof from[i];
            m++;
        }
        for (int off = 0; off < m;) {
            int r = sendmmsg(fd, msg + off, (unsigned)(m - off), 0);
            if (r <= 0) break;
            off += r;
        }
    }
}
