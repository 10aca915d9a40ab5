/*
 * bench/loadgen.c — a small batching UDP DNS load generator for bench/compare.sh.
 *
 *   gcc -O2 -Wall -o bench/out/loadgen bench/loadgen.c
 *   loadgen -s 127.0.0.1 -p 5353 -f queries.txt -d 10 [-o 200 | -r 50000] [options]
 *
 * Query file: one query per line, `name TYPE [ecs=PREFIX/LEN]`; `;` starts a comment,
 * blank lines are ignored. Every query is pre-encoded once (RD=0, EDNS(0) with a UDP size
 * of 1232, an ECS option when given) and the file is cycled in order.
 *
 * Several connected UDP sockets (-n, default 4) are driven from one thread with
 * sendmmsg/recvmmsg batches (-b, default 32) and ppoll. Two modes:
 *   closed loop (default, -o N): N queries in flight, each answer (or timeout) frees a
 *       slot that is refilled at once — the server's maximum rate at that concurrency;
 *   open loop (-r QPS): queries are offered at a fixed rate, paced in small batches,
 *       whatever the server does.
 * Every in-flight query has a slot indexed by (socket, DNS ID) holding its send time and
 * query; a query unanswered after -t ms (default 1000) counts as lost. Every response is
 * checked: its ID must match an outstanding query on that socket, QR must be set and its
 * question must equal the query's (names compared case-insensitively). Rcodes, TC, ECS
 * (present / scope > 0) and the first A address of each answer are counted; latency goes
 * into a histogram of 1 µs buckets (mean, p50, p99, p99.9, max).
 *
 * Output: a human line, then one machine-readable line starting with "loadgen-result".
 * Exit status 0 when the run is acceptable, 1 when a response had an rcode not in -a
 * (default NOERROR,NXDOMAIN), lost > -l percent (default 1), any response was malformed
 * or nothing was answered, 2 on usage or setup errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 64
#define MAX_BATCH 256
#define PKT_MAX 1500           /* queries are tiny; responses up to 1232 + slack */
#define RESP_MAX 4096
#define RING_BITS 18           /* per-socket FIFO of sent (id, seq), for timeouts */
#define RING_SIZE (1u << RING_BITS)
#define MAX_ADDRS 16           /* distinct first-A addresses counted individually */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ queries */

struct query {
    uint8_t *pkt;              /* whole query, ID bytes overwritten per send */
    uint16_t len;
    uint16_t qlen;             /* question section length (starts at offset 12) */
};

static struct query *queries;
static size_t nqueries;

static const struct { const char *name; uint16_t code; } qtypes[] = {
    {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"HINFO", 13}, {"MX", 15},
    {"TXT", 16}, {"AAAA", 28}, {"LOC", 29}, {"SRV", 33}, {"NAPTR", 35}, {"DS", 43},
    {"SSHFP", 44}, {"RRSIG", 46}, {"NSEC", 47}, {"DNSKEY", 48}, {"TLSA", 52}, {"SVCB", 64},
    {"HTTPS", 65}, {"SPF", 99}, {"ANY", 255}, {"CAA", 257},
};

static int parse_type(const char *s, uint16_t *out)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
        if (strcasecmp(s, qtypes[i].name) == 0) { *out = qtypes[i].code; return 0; }
    if (strncasecmp(s, "TYPE", 4) == 0 && s[4]) {
        char *end;
        unsigned long v = strtoul(s + 4, &end, 10);
        if (*end == 0 && v <= 65535) { *out = (uint16_t)v; return 0; }
    }
    return -1;
}

/* Encodes a presentation name (no escapes) as wire labels; returns length or -1. */
static int encode_name(const char *name, uint8_t *out, size_t cap)
{
    size_t pos = 0;
    if (strcmp(name, ".") == 0) { if (cap < 1) return -1; out[0] = 0; return 1; }
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || pos + 1 + l + 1 > cap || pos + 1 + l + 1 > 255) return -1;
        out[pos++] = (uint8_t)l;
        memcpy(out + pos, p, l);
        pos += l;
        if (!dot) break;
        p = dot + 1;
    }
    out[pos++] = 0;
    return (int)pos;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static void add_query(const char *file, int lineno, char *line, int edns_size, int rd)
{
    char *cmt = strchr(line, ';');
    if (cmt) *cmt = 0;
    char *tok[4];
    int n = 0;
    for (char *t = strtok(line, " \t\r\n"); t; t = strtok(NULL, " \t\r\n")) {
        if (n == 4) die("%s:%d: too many fields", file, lineno);
        tok[n++] = t;
    }
    if (n == 0) return;
    if (n < 2) die("%s:%d: expected 'name TYPE [ecs=PREFIX/LEN]'", file, lineno);
    if (n > 3) die("%s:%d: expected 'name TYPE [ecs=PREFIX/LEN]'", file, lineno);

    uint8_t buf[PKT_MAX];
    memset(buf, 0, 12);
    if (rd) buf[2] = 0x01;                         /* RD */
    put16(buf + 4, 1);                             /* QDCOUNT */
    int nl = encode_name(tok[0], buf + 12, 256);
    if (nl < 0) die("%s:%d: bad name '%s'", file, lineno, tok[0]);
    uint16_t qtype;
    if (parse_type(tok[1], &qtype)) die("%s:%d: unknown type '%s'", file, lineno, tok[1]);
    size_t pos = 12 + (size_t)nl;
    put16(buf + pos, qtype); put16(buf + pos + 2, 1); pos += 4;
    uint16_t qlen = (uint16_t)(pos - 12);

    uint8_t ecs[24];
    size_t ecslen = 0;
    if (n == 3) {
        if (strncmp(tok[2], "ecs=", 4) != 0) die("%s:%d: unknown field '%s'", file, lineno, tok[2]);
        if (edns_size == 0) die("%s:%d: ECS needs EDNS (do not use -E)", file, lineno);
        char *addr = tok[2] + 4, *slash = strchr(addr, '/');
        if (!slash) die("%s:%d: ecs needs PREFIX/LEN", file, lineno);
        *slash = 0;
        char *end;
        long plen = strtol(slash + 1, &end, 10);
        uint8_t a[16];
        int family, max;
        if (inet_pton(AF_INET, addr, a) == 1) { family = 1; max = 32; }
        else if (inet_pton(AF_INET6, addr, a) == 1) { family = 2; max = 128; }
        else die("%s:%d: bad ECS address '%s'", file, lineno, addr);
        if (*end || plen < 0 || plen > max) die("%s:%d: bad ECS prefix length", file, lineno);
        int bytes = (int)(plen + 7) / 8;
        if (plen % 8) a[bytes - 1] &= (uint8_t)(0xff << (8 - plen % 8));   /* RFC 7871 §6 */
        put16(ecs, 8);                             /* OPTION-CODE: edns-client-subnet */
        put16(ecs + 2, (uint16_t)(4 + bytes));
        put16(ecs + 4, (uint16_t)family);
        ecs[6] = (uint8_t)plen;
        ecs[7] = 0;                                /* SCOPE PREFIX-LENGTH */
        memcpy(ecs + 8, a, (size_t)bytes);
        ecslen = 8 + (size_t)bytes;
    }
    if (edns_size) {
        put16(buf + 10, 1);                        /* ARCOUNT */
        buf[pos++] = 0;                            /* root owner */
        put16(buf + pos, 41); put16(buf + pos + 2, (uint16_t)edns_size);
        memset(buf + pos + 4, 0, 4);               /* ext rcode 0, version 0, DO 0 */
        put16(buf + pos + 8, (uint16_t)ecslen);
        pos += 10;
        memcpy(buf + pos, ecs, ecslen);
        pos += ecslen;
    }
    static size_t cap;
    if (nqueries == cap) {
        cap = cap ? cap * 2 : 256;
        queries = realloc(queries, cap * sizeof *queries);
        if (!queries) die("out of memory");
    }
    struct query *q = &queries[nqueries++];
    q->pkt = malloc(pos);
    if (!q->pkt) die("out of memory");
    memcpy(q->pkt, buf, pos);
    q->len = (uint16_t)pos;
    q->qlen = qlen;
}

static void load_queries(const char *file, int edns_size, int rd)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) die("cannot open %s: %s", file, strerror(errno));
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        add_query(file, lineno, line, edns_size, rd);
    }
    if (f != stdin) fclose(f);
    if (nqueries == 0) die("%s: no queries", file);
}

/* ------------------------------------------------------------------ state */

struct sock {
    int fd;
    uint16_t next_id;
    uint32_t next_seq;
    uint32_t inflight;
    uint32_t target;           /* closed loop: queries to keep in flight on this socket */
    uint32_t *seq;             /* [65536] 0 = free, else sequence of the occupant */
    uint32_t *qidx;            /* [65536] query index */
    uint64_t *ts;              /* [65536] send time, ns */
    uint32_t *ring_id, *ring_seq;
    uint32_t head, tail;       /* ring of sent queries in send order */
};

static struct sock socks[MAX_SOCKETS];
static int nsocks = 4;

static struct {
    uint64_t sent, received, received_window, lost, unexpected, malformed, tc;
    uint64_t rcode[16];
    uint64_t ecs, ecs_scoped, send_eagain, send_errors, recv_errors;
    uint64_t lat_sum_us;
    uint64_t *hist;            /* [hist_max + 1], 1 µs buckets */
    uint32_t hist_max;
    uint32_t addr[MAX_ADDRS];
    uint64_t addr_count[MAX_ADDRS];
    int naddr;
    uint64_t addr_other, no_a;
} st;

static const char *rcode_names[16] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

/* ------------------------------------------------------------------ response parsing */

/* Skips a (possibly compressed) name; returns the new offset or 0 on error. */
static size_t skip_name(const uint8_t *p, size_t len, size_t off)
{
    for (int hops = 0; hops < 128; hops++) {
        if (off >= len) return 0;
        uint8_t l = p[off];
        if ((l & 0xc0) == 0xc0) return off + 2 <= len ? off + 2 : 0;
        if (l & 0xc0) return 0;
        if (l == 0) return off + 1;
        off += 1 + (size_t)l;
    }
    return 0;
}

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void count_addr(uint32_t a)
{
    for (int i = 0; i < st.naddr; i++)
        if (st.addr[i] == a) { st.addr_count[i]++; return; }
    if (st.naddr < MAX_ADDRS) { st.addr[st.naddr] = a; st.addr_count[st.naddr++] = 1; return; }
    st.addr_other++;
}

/* Walks answer/authority/additional: first A in the answer, ECS in the OPT record. */
static int inspect(const uint8_t *p, size_t len, size_t off)
{
    unsigned an = get16(p + 6), ns = get16(p + 8), ar = get16(p + 10);
    int seen_a = 0;
    for (unsigned i = 0; i < an + ns + ar; i++) {
        off = skip_name(p, len, off);
        if (!off || off + 10 > len) return -1;
        uint16_t type = get16(p + off), rdlen = get16(p + off + 8);
        size_t rd = off + 10;
        if (rd + rdlen > len) return -1;
        if (i < an && type == 1 && rdlen == 4 && !seen_a) {
            uint32_t a;
            memcpy(&a, p + rd, 4);
            count_addr(a);
            seen_a = 1;
        }
        if (i >= an + ns && type == 41) {
            for (size_t o = rd; o + 4 <= rd + rdlen;) {
                uint16_t code = get16(p + o), olen = get16(p + o + 2);
                if (o + 4 + olen > rd + rdlen) return -1;
                if (code == 8 && olen >= 4) {
                    st.ecs++;
                    if (p[o + 7] > 0) st.ecs_scoped++;
                }
                o += 4 + (size_t)olen;
            }
        }
        off = rd + rdlen;
    }
    if (!seen_a) st.no_a++;
    return 0;
}

static int question_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i] && tolower(a[i]) != tolower(b[i])) return 0;
    return 1;
}

static void handle_response(struct sock *s, const uint8_t *p, size_t len, uint64_t now, int in_window)
{
    if (len < 12) { st.malformed++; return; }
    uint16_t id = get16(p);
    if (s->seq[id] == 0) { st.unexpected++; return; }   /* late (already timed out) or stray */
    if (!(p[2] & 0x80)) { st.malformed++; return; }     /* QR not set */
    const struct query *q = &queries[s->qidx[id]];
    if (get16(p + 4) != 1 || len < 12u + q->qlen || !question_equal(p + 12, q->pkt + 12, q->qlen)) {
        st.malformed++;        /* the slot stays in flight and times out */
        return;
    }
    uint64_t lat = (now - s->ts[id]) / 1000;
    if (lat > st.hist_max) lat = st.hist_max;
    st.hist[lat]++;
    st.lat_sum_us += lat;
    st.received++;
    if (in_window) st.received_window++;
    st.rcode[p[3] & 0x0f]++;
    if (p[2] & 0x02) st.tc++;
    if (inspect(p, len, 12u + q->qlen) != 0) st.malformed++;
    s->seq[id] = 0;
    s->inflight--;
}

/* ------------------------------------------------------------------ send / receive */

static uint8_t sendbuf[MAX_BATCH][PKT_MAX];
static uint8_t recvbuf[MAX_BATCH][RESP_MAX];
static struct mmsghdr smsg[MAX_BATCH], rmsg[MAX_BATCH];
static struct iovec siov[MAX_BATCH], riov[MAX_BATCH];
static size_t qcursor;
static int batch = 32;

/* Sends up to k queries on s; returns how many went out (0 when the socket is full). */
static int send_batch(struct sock *s, int k)
{
    if (k > batch) k = batch;
    uint32_t room = RING_SIZE - (s->tail - s->head);
    if ((uint32_t)k > room) k = (int)room;
    if (k <= 0) return 0;
    uint16_t ids[MAX_BATCH];
    uint32_t qis[MAX_BATCH];
    uint16_t id = s->next_id;
    int m = 0;
    for (; m < k; m++) {
        int tries = 0;
        while (s->seq[id] != 0 && tries++ < 65536) id++;
        if (s->seq[id] != 0) break;                     /* every ID of this socket in flight */
        ids[m] = id++;
        qis[m] = (uint32_t)(qcursor++ % nqueries);
        const struct query *q = &queries[qis[m]];
        memcpy(sendbuf[m], q->pkt, q->len);
        put16(sendbuf[m], ids[m]);
        siov[m].iov_len = q->len;
    }
    if (m == 0) return 0;
    int r = sendmmsg(s->fd, smsg, (unsigned)m, MSG_DONTWAIT);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) st.send_eagain++;
        else st.send_errors++;   /* e.g. ECONNREFUSED from an ICMP error: counted, retried */
        r = 0;
    }
    qcursor -= (size_t)(m - r);  /* unsent queries go out next time, mix order kept */
    uint64_t now = now_ns();
    for (int i = 0; i < r; i++) {
        uint32_t seq = ++s->next_seq ? s->next_seq : ++s->next_seq;
        s->seq[ids[i]] = seq;
        s->qidx[ids[i]] = qis[i];
        s->ts[ids[i]] = now;
        s->ring_id[s->tail & (RING_SIZE - 1)] = ids[i];
        s->ring_seq[s->tail & (RING_SIZE - 1)] = seq;
        s->tail++;
    }
    s->next_id = r > 0 ? (uint16_t)(ids[r - 1] + 1) : s->next_id;
    s->inflight += (uint32_t)r;
    st.sent += (uint64_t)r;
    return r;
}

/* Reads what is queued on s (at most a few batches); returns the number of datagrams. */
static int recv_some(struct sock *s, uint64_t window_end)
{
    int total = 0;
    for (int round = 0; round < 4; round++) {
        int r = recvmmsg(s->fd, rmsg, (unsigned)batch, MSG_DONTWAIT, NULL);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) st.recv_errors++;
            break;
        }
        uint64_t now = now_ns();
        for (int i = 0; i < r; i++) handle_response(s, recvbuf[i], rmsg[i].msg_len, now, now <= window_end);
        total += r;
        if (r < batch) break;
    }
    return total;
}

static uint64_t timeout_ns = 1000000000u;

/* Drops answered entries from the head of the ring and counts timed-out ones as lost. */
static void expire(struct sock *s, uint64_t now, int all)
{
    while (s->head != s->tail) {
        uint32_t i = s->head & (RING_SIZE - 1);
        uint32_t id = s->ring_id[i];
        if (s->seq[id] == s->ring_seq[i]) {
            if (!all && now - s->ts[id] < timeout_ns) break;
            s->seq[id] = 0;
            s->inflight--;
            st.lost++;
        }
        s->head++;
    }
}

/* Earliest time a query on any socket would time out (UINT64_MAX when none in flight). */
static uint64_t next_expiry(void)
{
    uint64_t t = UINT64_MAX;
    for (int i = 0; i < nsocks; i++) {
        struct sock *s = &socks[i];
        while (s->head != s->tail) {
            uint32_t j = s->head & (RING_SIZE - 1);
            if (s->seq[s->ring_id[j]] != s->ring_seq[j]) { s->head++; continue; }
            uint64_t e = s->ts[s->ring_id[j]] + timeout_ns;
            if (e < t) t = e;
            break;
        }
    }
    return t;
}

static void wait_readable(uint64_t until)
{
    struct pollfd pfd[MAX_SOCKETS];
    for (int i = 0; i < nsocks; i++) { pfd[i].fd = socks[i].fd; pfd[i].events = POLLIN; }
    uint64_t now = now_ns();
    uint64_t d = until > now ? until - now : 0;
    struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u) };
    ppoll(pfd, (nfds_t)nsocks, &ts, NULL);
}

/* ------------------------------------------------------------------ main */

static uint32_t percentile(double p, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)n + 0.999999), cum = 0;
    if (want < 1) want = 1;
    for (uint32_t i = 0; i <= st.hist_max; i++) {
        cum += st.hist[i];
        if (cum >= want) return i;
    }
    return st.hist_max;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: loadgen -f QUERYFILE [-s 127.0.0.1] [-p 53] [-d SECONDS] [-o OUTSTANDING | -r QPS]\n"
        "               [-n SOCKETS] [-b BATCH] [-t TIMEOUT_MS] [-a NOERROR,NXDOMAIN] [-l LOST_PCT]\n"
        "               [-B EDNS_SIZE] [-E] [-R] [-L LABEL]\n"
        "  -f  queries, one 'name TYPE [ecs=PREFIX/LEN]' a line (';' comments); '-' = stdin\n"
        "  -s  server address (IPv4 or IPv6, default 127.0.0.1)    -p  port (default 53)\n"
        "  -d  seconds to send (default 10, 0.1 to 3600)\n"
        "  -o  closed loop: queries kept in flight (default 200)\n"
        "  -r  open loop: fixed offered rate, queries/s (overrides -o)\n"
        "  -n  UDP sockets (default 4, max %d)     -b  sendmmsg/recvmmsg batch (default 32, max %d)\n"
        "  -t  timeout per query in ms (default 1000); unanswered by then = lost\n"
        "  -a  allowed rcodes, comma separated (default NOERROR,NXDOMAIN)\n"
        "  -l  maximum lost percentage before exiting 1 (default 1)\n"
        "  -B  EDNS UDP size (default 1232)   -E  no EDNS at all   -R  set RD\n"
        "  -L  label copied into the machine-readable line (label=...)\n",
        MAX_SOCKETS, MAX_BATCH);
    exit(2);
}

static int parse_rcode(const char *s)
{
    for (int i = 0; i < 16; i++) if (strcasecmp(s, rcode_names[i]) == 0) return i;
    char *end;
    long v = strtol(s, &end, 10);
    return (*end == 0 && v >= 0 && v < 16) ? (int)v : -1;
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *file = NULL, *allowed = "NOERROR,NXDOMAIN", *label = "";
    int port = 53, outstanding = 200, edns_size = 1232, rd = 0;
    double duration = 10, rate = 0, max_lost_pct = 1, timeout_ms = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "s:p:f:d:o:r:n:b:t:a:l:B:ERL:h")) != -1) {
        switch (opt) {
        case 's': server = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'f': file = optarg; break;
        case 'd': duration = atof(optarg); break;
        case 'o': outstanding = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'n': nsocks = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 't': timeout_ms = atof(optarg); break;
        case 'a': allowed = optarg; break;
        case 'l': max_lost_pct = atof(optarg); break;
        case 'B': edns_size = atoi(optarg); break;
        case 'E': edns_size = 0; break;
        case 'R': rd = 1; break;
        case 'L': label = optarg; break;
        default: usage();
        }
    }
    if (!file || optind != argc) usage();
    if (port < 1 || port > 65535) die("bad port");
    if (!(duration >= 0.1 && duration <= 3600)) die("-d must be between 0.1 and 3600 seconds");
    if (nsocks < 1 || nsocks > MAX_SOCKETS) die("-n must be 1..%d", MAX_SOCKETS);
    if (batch < 1 || batch > MAX_BATCH) die("-b must be 1..%d", MAX_BATCH);
    if (outstanding < 1 || outstanding > 65535 * nsocks) die("-o must be 1..%d", 65535 * nsocks);
    if (rate < 0 || rate > 1e8) die("bad -r");
    if (!(timeout_ms >= 1 && timeout_ms <= 60000)) die("-t must be 1..60000 ms");
    if (edns_size != 0 && (edns_size < 512 || edns_size > 65535)) die("-B must be 512..65535");
    timeout_ns = (uint64_t)(timeout_ms * 1e6);

    int ok_rcode[16] = {0};
    {
        char *list = strdup(allowed);
        for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
            int c = parse_rcode(t);
            if (c < 0) die("unknown rcode '%s' in -a", t);
            ok_rcode[c] = 1;
        }
        free(list);
    }

    load_queries(file, edns_size, rd);

    struct sockaddr_storage sa;
    socklen_t salen;
    memset(&sa, 0, sizeof sa);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    if (inet_pton(AF_INET, server, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET; s4->sin_port = htons((uint16_t)port); salen = sizeof *s4;
    } else if (inet_pton(AF_INET6, server, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6; s6->sin6_port = htons((uint16_t)port); salen = sizeof *s6;
    } else die("-s must be a numeric IPv4 or IPv6 address");

    for (int i = 0; i < nsocks; i++) {
        struct sock *s = &socks[i];
        s->fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) die("socket: %s", strerror(errno));
        int sz = 4 << 20;
        if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0)
            setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        if (setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0)
            setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        if (connect(s->fd, (struct sockaddr *)&sa, salen) != 0) die("connect: %s", strerror(errno));
        s->seq = calloc(65536, sizeof *s->seq);
        s->qidx = calloc(65536, sizeof *s->qidx);
        s->ts = calloc(65536, sizeof *s->ts);
        s->ring_id = calloc(RING_SIZE, sizeof *s->ring_id);
        s->ring_seq = calloc(RING_SIZE, sizeof *s->ring_seq);
        if (!s->seq || !s->qidx || !s->ts || !s->ring_id || !s->ring_seq) die("out of memory");
        s->next_id = (uint16_t)(rand() ^ (i * 7919));
        s->target = (uint32_t)(outstanding / nsocks + (i < outstanding % nsocks));
    }
    for (int i = 0; i < MAX_BATCH; i++) {
        siov[i].iov_base = sendbuf[i];
        smsg[i].msg_hdr.msg_iov = &siov[i];
        smsg[i].msg_hdr.msg_iovlen = 1;
        riov[i].iov_base = recvbuf[i];
        riov[i].iov_len = RESP_MAX;
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
    }
    st.hist_max = (uint32_t)(timeout_ns / 1000) + 1000;
    st.hist = calloc((size_t)st.hist_max + 1, sizeof *st.hist);
    if (!st.hist) die("out of memory");

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    const uint64_t start = now_ns();
    const uint64_t end = start + (uint64_t)(duration * 1e9);
    /* Open loop: at most this many queries per wake-up (~10k wake-ups/s), in chunks of `batch`. */
    const uint64_t chunk = rate > 0 ? (uint64_t)(rate / 10000 > 1 ? rate / 10000 : 1) : 0;
    int rr = 0;                                    /* round-robin start socket, open loop */
    /* Closed loop: a socket is refilled once this many of its slots are free, so that
     * sendmmsg carries real batches instead of one query per answer. */
    uint32_t min_refill[MAX_SOCKETS];
    for (int i = 0; i < nsocks; i++) {
        uint32_t m = socks[i].target / 4;
        if (m > (uint32_t)batch) m = (uint32_t)batch;
        min_refill[i] = m ? m : 1;
    }
    struct pollfd pfd[MAX_SOCKETS];
    for (int i = 0; i < nsocks; i++) { pfd[i].fd = socks[i].fd; pfd[i].events = POLLIN; pfd[i].revents = POLLIN; }

    for (;;) {
        uint64_t now = now_ns();
        if (now >= end || interrupted) break;
        /* Receive on the sockets the last ppoll found readable (all of them at first). */
        for (int i = 0; i < nsocks; i++)
            if (pfd[i].revents & (POLLIN | POLLERR)) recv_some(&socks[i], end);
        now = now_ns();
        for (int i = 0; i < nsocks; i++) expire(&socks[i], now, 0);
        /* Send. A socket that could not take a batch (EAGAIN) waits for POLLOUT. */
        int pending = 0;
        for (int i = 0; i < nsocks; i++) pfd[i].events = POLLIN;
        if (rate > 0) {
            uint64_t due_total = (uint64_t)(rate * (double)(now - start) / 1e9);
            uint64_t due = due_total > st.sent ? due_total - st.sent : 0;
            uint64_t cap = (uint64_t)batch * (uint64_t)nsocks * 4;   /* no huge bursts when late */
            if (due > cap) { due = cap; pending = 1; }
            int stuck = 0;
            while (due > 0 && stuck < nsocks) {
                struct sock *s = &socks[rr];
                int k = (int)(due < (uint64_t)batch ? due : (uint64_t)batch);
                int r = send_batch(s, k);
                if (r < k) pfd[rr].events = POLLIN | POLLOUT;
                rr = (rr + 1) % nsocks;
                if (r == 0) stuck++; else { stuck = 0; due -= (uint64_t)r; }
            }
        } else {
            for (int i = 0; i < nsocks; i++) {
                struct sock *s = &socks[i];
                if (s->target - s->inflight < min_refill[i]) continue;
                while (s->inflight < s->target) {
                    int want = (int)(s->target - s->inflight);
                    int r = send_batch(s, want);
                    if (r < (want < batch ? want : batch)) { pfd[i].events = POLLIN | POLLOUT; break; }
                }
            }
        }
        /* Wait for answers, the next timeout, the next pacing step or the end. */
        uint64_t until = pending ? now : next_expiry();
        if (rate > 0) {
            uint64_t next_due = start + (uint64_t)((double)(st.sent + chunk) * 1e9 / rate);
            if (next_due < until) until = next_due;
        }
        if (until > end) until = end;
        now = now_ns();
        if (until > now + 100000000u) until = now + 100000000u;
        uint64_t d = until > now ? until - now : 0;
        struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u) };
        if (ppoll(pfd, (nfds_t)nsocks, &ts, NULL) < 0)
            for (int i = 0; i < nsocks; i++) pfd[i].revents = 0;
    }
    /* Stop sending; collect what is still in flight for up to one timeout. */
    const uint64_t send_end = now_ns();
    for (;;) {
        uint64_t inflight = 0;
        for (int i = 0; i < nsocks; i++) inflight += socks[i].inflight;
        uint64_t now = now_ns();
        if (inflight == 0 || now >= send_end + timeout_ns || interrupted > 1) break;
        int got = 0;
        for (int i = 0; i < nsocks; i++) got += recv_some(&socks[i], end);
        for (int i = 0; i < nsocks; i++) expire(&socks[i], now_ns(), 0);
        if (!got) {
            uint64_t until = next_expiry();
            if (until > send_end + timeout_ns) until = send_end + timeout_ns;
            if (until > now + 10000000u) until = now + 10000000u;
            wait_readable(until);
        }
    }
    for (int i = 0; i < nsocks; i++) expire(&socks[i], 0, 1);
    const uint64_t finish = now_ns();
    getrusage(RUSAGE_SELF, &ru1);

    double secs = (double)(send_end - start) / 1e9;
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
               + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double cpu_pct = 100.0 * cpu / ((double)(finish - start) / 1e9);
    double qps = (double)st.received_window / secs;
    double offered = (double)st.sent / secs;
    double lost_pct = st.sent ? 100.0 * (double)st.lost / (double)st.sent : 0;
    double mean = st.received ? (double)st.lat_sum_us / (double)st.received : 0;
    uint32_t p50 = percentile(0.50, st.received), p99 = percentile(0.99, st.received);
    uint32_t p999 = percentile(0.999, st.received), pmax = 0;
    for (uint32_t i = 0; i <= st.hist_max; i++) if (st.hist[i]) pmax = i;

    char codes[512] = "", human_codes[512] = "";
    size_t cl = 0, hl = 0;
    int bad_rcode = 0;
    for (int i = 0; i < 16; i++) {
        if (!st.rcode[i]) continue;
        cl += (size_t)snprintf(codes + cl, sizeof codes - cl, " rcode_%s=%" PRIu64, rcode_names[i], st.rcode[i]);
        hl += (size_t)snprintf(human_codes + hl, sizeof human_codes - hl, "%s%s %.1f%%", hl ? ", " : "",
                               rcode_names[i], 100.0 * (double)st.rcode[i] / (double)st.received);
        if (!ok_rcode[i]) bad_rcode = 1;
    }
    char addrs[1024] = "";
    size_t al = 0;
    for (int i = 0; i < st.naddr; i++) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &st.addr[i], a, sizeof a);
        al += (size_t)snprintf(addrs + al, sizeof addrs - al, "%s%s:%" PRIu64, i ? "," : "", a, st.addr_count[i]);
    }
    if (st.addr_other) snprintf(addrs + al, sizeof addrs - al, "%sother:%" PRIu64, al ? "," : "", st.addr_other);

    printf("loadgen: %s %.1f s, %d sockets, batch %d: sent %" PRIu64 ", answered %" PRIu64 ", lost %" PRIu64
           " (%.2f%%), %.0f answers/s (offered %.0f/s); latency mean %.0f us, p50 %u, p99 %u, p99.9 %u, max %u;"
           " %s; TC %" PRIu64 "; ECS %" PRIu64 " (scope>0 %" PRIu64 "); loadgen core %.0f%%\n",
           rate > 0 ? "open loop" : "closed loop", secs, nsocks, batch, st.sent, st.received, st.lost, lost_pct,
           qps, offered, mean, p50, p99, p999, pmax, hl ? human_codes : "no answers", st.tc, st.ecs,
           st.ecs_scoped, cpu_pct);
    printf("loadgen-result label=%s mode=%s rate=%.0f outstanding=%d sockets=%d batch=%d duration=%.3f"
           " sent=%" PRIu64 " received=%" PRIu64 " received_window=%" PRIu64 " lost=%" PRIu64 " lost_pct=%.3f"
           " unexpected=%" PRIu64 " malformed=%" PRIu64 " tc=%" PRIu64 " qps=%.0f offered_qps=%.0f"
           " mean_us=%.1f p50_us=%u p99_us=%u p999_us=%u max_us=%u%s ecs=%" PRIu64 " ecs_scoped=%" PRIu64
           " no_a=%" PRIu64 " answers_a=%s send_eagain=%" PRIu64 " send_errors=%" PRIu64 " recv_errors=%" PRIu64
           " cpu_s=%.3f cpu_pct=%.1f\n",
           *label ? label : "-", rate > 0 ? "rate" : "max", rate, rate > 0 ? 0 : outstanding, nsocks, batch, secs,
           st.sent, st.received, st.received_window, st.lost, lost_pct, st.unexpected, st.malformed, st.tc, qps,
           offered, mean, p50, p99, p999, pmax, codes, st.ecs, st.ecs_scoped, st.no_a, al ? addrs : "-",
           st.send_eagain, st.send_errors, st.recv_errors, cpu, cpu_pct);
    fflush(stdout);

    int rc = 0;
    if (st.received == 0) { fprintf(stderr, "loadgen: FAIL: no answers\n"); rc = 1; }
    if (bad_rcode) { fprintf(stderr, "loadgen: FAIL: rcode outside -a %s\n", allowed); rc = 1; }
    if (lost_pct > max_lost_pct) { fprintf(stderr, "loadgen: FAIL: lost %.2f%% > %.2f%%\n", lost_pct, max_lost_pct); rc = 1; }
    if (st.malformed) { fprintf(stderr, "loadgen: FAIL: %" PRIu64 " malformed or mismatched responses\n", st.malformed); rc = 1; }
    if (interrupted) rc = rc ? rc : 1;
    return rc;
}
