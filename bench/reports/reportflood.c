/*
 * bench/reports/reportflood.c — paced load reports against resolverd's HTTP API (issue 7).
 *
 * Sends `PUT /v1/sites/{site}/load` with a JSON body such as {"utilization":0.42,"healthy":true}
 * and `Authorization: Bearer TOKEN` over several keep-alive HTTP/1.1 connections, at a fixed
 * rate (open loop: request k is due at start + k / rate, whatever the answers do), cycling over
 * the given site IDs, for a bounded time. Every response is read and counted by status code.
 *
 *   cc -O2 -Wall -o reportflood bench/reports/reportflood.c
 *   reportflood -p 8053 -t TOKEN -S fra1,ams1,par1 [-r 10000] [-d 10] [-c 16] [-P 4]
 *   reportflood -p 8053 -t TOKEN -f sites.txt ...
 *
 *   -s ADDR   server IPv4/IPv6 address (default 127.0.0.1)
 *   -p PORT   HTTP port (required)
 *   -t TOKEN  bearer token (or -T FILE: first line of FILE)
 *   -S LIST   comma-separated site IDs; -f FILE: one site ID a line
 *   -r RATE   reports per second (default 10000)
 *   -d SECS   sending time in seconds (default 10); then up to -w SECS (default 2) to drain
 *   -c CONNS  keep-alive connections (default 16)
 *   -P DEPTH  requests in flight per connection (HTTP/1.1 pipelining; default 4)
 *   -B N      N sites' reports per request, through `PUT /v1/loads` ({"site":{...},...});
 *             RATE stays reports per second (RATE / N requests a second); `rate` in the output
 *             is then reports answered per second, `requests` the requests sent (default 0:
 *             one report per `PUT /v1/sites/{site}/load`)
 *   -W SECS   each site's utilisation follows a wave of this period: 0.45 + 0.40 sin(2 pi (t / SECS
 *             + i / n)) for the i-th of n sites at wall-clock time t, so that two runs (a slow one
 *             and a fast one, one after the other) report the same loads at the same moments, as
 *             a fleet's agents would; 0 (default): a sweep 0.05 .. 0.85 over the requests sent,
 *             which moves every site's load by up to 0.8 between two reports
 *   -q        no progress lines on stderr
 *
 * Output: one key=value summary line on stdout, e.g.
 *   target_rate=10000 duration=10.00 sent=100000 responses=100000 rate=9999.8 unanswered=0
 *   late=0 errors=0 reconnects=0 status_204=100000 lat_ms_p50=0.21 lat_ms_p99=1.30 lat_ms_max=4.1
 * `rate` is responses per second over the sending time (responses still arriving in the drain
 * time count: they answer requests of the window); `late` counts requests sent more than 1 ms
 * after they were due (every connection was full: -c x -P requests were already in flight),
 * max_lag_ms the worst such delay; latency is from writing a request to reading the end of its
 * response. Exit status 0 when it ran (whatever the status codes), 2 on bad usage,
 * 1 when it could not connect at all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_DEPTH 64
#define RBUF 65536

struct conn {
    int fd;
    int connected;
    char *wbuf;            /* pending bytes to write */
    size_t wlen, wcap, woff;
    char rbuf[RBUF + 1];       /* + a NUL after the data, for the header scans */
    size_t rlen;
    double sent_at[MAX_DEPTH]; /* FIFO of write times of requests awaiting a response */
    int head, inflight;
};

static const char *g_addr = "127.0.0.1";
static int g_port = 0;
static char g_token[4096];
static char **g_sites;
static size_t g_nsites;
static double g_rate = 10000, g_duration = 10, g_drain = 2;
static int g_nconn = 16, g_depth = 4, g_quiet = 0, g_batch = 0;
static double g_req_rate;  /* requests per second: g_rate, or g_rate / g_batch */
static double g_wave = 0;  /* -W: the period of each site's utilisation wave, 0 for the sweep */

/* The utilisation reported for site `i` by report number `r` (-W). */
static double utilisation(unsigned long long r, size_t i) {
    if (g_wave <= 0) return 0.05 + (double)(r % 81) / 100.0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double t = (double)now.tv_sec + now.tv_nsec / 1e9;
    double phase = fmod(t / g_wave, 1.0) + (double)i / (double)g_nsites;
    return 0.45 + 0.40 * sin(2 * M_PI * phase);
}

static struct sockaddr_storage g_sa;
static socklen_t g_salen;
static int g_ep;

static unsigned long long g_sent, g_responses, g_errors, g_reconnects, g_late, g_status[600], g_status_other;
static uint32_t *g_lat;    /* microseconds */
static size_t g_nlat, g_caplat;
static volatile sig_atomic_t g_stop;
static double g_maxlag;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *msg) {
    fprintf(stderr, "reportflood: %s\n", msg);
    exit(2);
}

static void usage(void) {
    fprintf(stderr, "usage: reportflood -p PORT (-t TOKEN | -T FILE) (-S ID,ID,... | -f FILE) "
                    "[-s ADDR] [-r RATE] [-d SECS] [-w SECS] [-c CONNS] [-P DEPTH] [-B N] [-q]\n");
    exit(2);
}

static void add_site(const char *s, size_t n) {
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    if (!n || *s == '#') return;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_' || s[i] == '.'))
            die("site IDs may contain only letters, digits, '-', '_' and '.'");
    g_sites = realloc(g_sites, (g_nsites + 1) * sizeof *g_sites);
    if (!g_sites) die("out of memory");
    g_sites[g_nsites++] = strndup(s, n);
}

static void read_sites_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char line[1024];
    while (fgets(line, sizeof line, f)) add_site(line, strcspn(line, "\n"));
    fclose(f);
}

static void wappend(struct conn *c, const char *p, size_t n) {
    if (c->wlen + n > c->wcap) {
        c->wcap = (c->wlen + n) * 2;
        c->wbuf = realloc(c->wbuf, c->wcap);
        if (!c->wbuf) die("out of memory");
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

static void update_events(struct conn *c) {
    struct epoll_event ev = {.events = EPOLLIN | (c->woff < c->wlen || !c->connected ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int open_conn(struct conn *c) {
    c->fd = socket(g_sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->connected = 0;
    c->rlen = c->wlen = c->woff = 0;
    c->head = c->inflight = 0;
    if (connect(c->fd, (struct sockaddr *)&g_sa, g_salen) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

/* Drops a connection (server closed it, or an error): its outstanding requests are errors. */
static void reset_conn(struct conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    g_errors += c->inflight;
    c->fd = -1;
    c->inflight = 0;
    g_reconnects++;
    open_conn(c);
}

static void record(int status, double sent_at, double t) {
    g_responses++;
    if (status >= 100 && status < 600) g_status[status]++; else g_status_other++;
    if (g_nlat == g_caplat) {
        g_caplat = g_caplat ? g_caplat * 2 : 65536;
        g_lat = realloc(g_lat, g_caplat * sizeof *g_lat);
        if (!g_lat) die("out of memory");
    }
    double us = (t - sent_at) * 1e6;
    g_lat[g_nlat++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

/* Drops the `off` bytes already parsed; the rest waits for more data. */
static int keep_rest(struct conn *c, size_t off) {
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
        c->rbuf[c->rlen] = 0;
    }
    return 0;
}

/* Parses as many complete responses as rbuf holds. Returns -1 when the connection must go. */
static int parse_responses(struct conn *c, double t) {
    size_t off = 0;
    while (off < c->rlen) {
        char *start = c->rbuf + off;
        size_t avail = c->rlen - off;
        char *end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end) break;
        size_t hlen = (size_t)(end - start) + 4;
        if (avail < 12 || memcmp(start, "HTTP/1.", 7) != 0) return -1;
        int status = atoi(start + 9);
        long clen = 0;
        int chunked = 0, close_after = 0;
        for (char *line = memchr(start, '\n', hlen); line && line < end; line = memchr(line, '\n', (size_t)(end - line))) {
            line++;
            if (!strncasecmp(line, "content-length:", 15)) clen = strtol(line + 15, NULL, 10);
            else if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line, "chunked") &&
                     strcasestr(line, "chunked") < end) chunked = 1;
            else if (!strncasecmp(line, "connection:", 11) && strncasecmp(line + 11, " close", 6) == 0) close_after = 1;
        }
        size_t total = hlen;
        if (chunked) {               /* walk the chunks until the 0-size one and its CRLF */
            size_t p = hlen;
            for (;;) {
                char *crlf = memmem(start + p, avail - p, "\r\n", 2);
                if (!crlf) return keep_rest(c, off);
                long n = strtol(start + p, NULL, 16);
                p = (size_t)(crlf - start) + 2;
                if (n == 0) {
                    char *fin = memmem(start + p, avail - p, "\r\n", 2);   /* no trailers expected */
                    if (!fin) return keep_rest(c, off);
                    p = (size_t)(fin - start) + 2;
                    break;
                }
                if (p + (size_t)n + 2 > avail) return keep_rest(c, off);
                p += (size_t)n + 2;
            }
            total = p;
        } else {
            if (clen < 0 || hlen + (size_t)clen > RBUF) return -1;
            if (avail < hlen + (size_t)clen) break;
            total = hlen + (size_t)clen;
        }
        if (c->inflight == 0) return -1;                 /* a response nobody asked for */
        record(status, c->sent_at[c->head], t);
        c->head = (c->head + 1) % MAX_DEPTH;
        c->inflight--;
        off += total;
        if (close_after) return -1;
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
        c->rbuf[c->rlen] = 0;
    }
    if (c->rlen == RBUF) return -1;                      /* a header larger than the buffer */
    return 0;
}

static void flush_conn(struct conn *c) {
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            reset_conn(c);
            return;
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    update_events(c);
}

static void send_report(struct conn *c, unsigned long long k, double t) {
    static char *body, *req;
    static size_t cap;
    size_t need = 256 + (size_t)(g_batch ? g_batch : 1) * 320;
    if (cap < need) {
        free(body); free(req);
        body = malloc(need); req = malloc(need + 4096 + 512);
        if (!body || !req) die("out of memory");
        cap = need;
    }
    int bl = 0, rl;
    if (g_batch) {
        /* sites k*N .. k*N+N-1 (cycling), utilisation 0.05 .. 0.85 (utilisation()), healthy */
        body[bl++] = '{';
        for (int i = 0; i < g_batch; i++) {
            unsigned long long r = k * (unsigned long long)g_batch + (unsigned long long)i;
            bl += snprintf(body + bl, cap - (size_t)bl, "%s\"%s\":{\"utilization\":%.2f,\"healthy\":true}",
                           i ? "," : "", g_sites[r % g_nsites], utilisation(r, r % g_nsites));
        }
        body[bl++] = '}';
        body[bl] = 0;
        rl = snprintf(req, cap + 4096 + 512,
                      "PUT /v1/loads HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      g_addr, g_port, g_token, bl, body);
    } else {
        const char *site = g_sites[k % g_nsites];
        /* utilisation 0.05 .. 0.85, healthy: a valid report that does not exclude the site */
        bl = snprintf(body, cap, "{\"utilization\":%.2f,\"healthy\":true}", utilisation(k, k % g_nsites));
        rl = snprintf(req, cap + 4096 + 512,
                      "PUT /v1/sites/%s/load HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      site, g_addr, g_port, g_token, bl, body);
    }
    wappend(c, req, (size_t)rl);
    c->sent_at[(c->head + c->inflight) % MAX_DEPTH] = t;
    c->inflight++;
    g_sent++;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) {
    if (!g_nlat) return 0;
    size_t i = (size_t)(p * (double)(g_nlat - 1) + 0.5);
    return g_lat[i] / 1000.0;
}

static void on_signal(int sig) { (void)sig; g_stop = 1; }

int main(int argc, char **argv) {
    int opt;
    const char *token_file = NULL;
    while ((opt = getopt(argc, argv, "s:p:t:T:S:f:r:d:w:c:P:B:W:qh")) != -1) {
        switch (opt) {
        case 's': g_addr = optarg; break;
        case 'p': g_port = atoi(optarg); break;
        case 't': snprintf(g_token, sizeof g_token, "%s", optarg); break;
        case 'T': token_file = optarg; break;
        case 'S': {
            char *s = optarg;
            for (char *comma; (comma = strchr(s, ',')); s = comma + 1) add_site(s, (size_t)(comma - s));
            add_site(s, strlen(s));
            break;
        }
        case 'f': read_sites_file(optarg); break;
        case 'r': g_rate = atof(optarg); break;
        case 'd': g_duration = atof(optarg); break;
        case 'w': g_drain = atof(optarg); break;
        case 'c': g_nconn = atoi(optarg); break;
        case 'P': g_depth = atoi(optarg); break;
        case 'B': g_batch = atoi(optarg); break;
        case 'W': g_wave = atof(optarg); break;
        case 'q': g_quiet = 1; break;
        default: usage();
        }
    }
    if (token_file) {
        FILE *f = fopen(token_file, "r");
        if (!f || !fgets(g_token, sizeof g_token, f)) { perror(token_file); return 2; }
        fclose(f);
        g_token[strcspn(g_token, "\r\n")] = 0;
    }
    if (g_port <= 0 || g_port > 65535) usage();
    if (g_batch < 0 || g_batch > 1000) die("-B must be 0 .. 1000");
    g_req_rate = g_batch ? g_rate / g_batch : g_rate;
    if (!g_token[0]) die("a bearer token is needed (-t TOKEN or -T FILE)");
    if (strpbrk(g_token, "\r\n")) die("the token must be one line");
    if (!g_nsites) die("no site IDs (-S ID,ID,... or -f FILE)");
    if (!(g_rate > 0) || !(g_duration > 0) || g_duration > 3600 || !(g_drain >= 0) || g_drain > 60)
        die("need RATE > 0, 0 < SECS <= 3600, 0 <= drain <= 60");
    if (g_nconn < 1 || g_nconn > 4096) die("CONNS must be 1..4096");
    if (g_depth < 1 || g_depth > MAX_DEPTH) die("DEPTH must be 1..64");

    memset(&g_sa, 0, sizeof g_sa);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&g_sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&g_sa;
    if (inet_pton(AF_INET, g_addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET; s4->sin_port = htons((uint16_t)g_port); g_salen = sizeof *s4;
    } else if (inet_pton(AF_INET6, g_addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6; s6->sin6_port = htons((uint16_t)g_port); g_salen = sizeof *s6;
    } else die("-s needs a numeric IPv4 or IPv6 address");

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);   /* 1 ns slack: pacing wakes on time */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)g_nconn, sizeof *conns);
    if (!conns) die("out of memory");
    for (int i = 0; i < g_nconn; i++)
        if (open_conn(&conns[i]) < 0) { perror("connect"); return 1; }

    /* Wait (up to 3 s) for the connections to be established before the clock starts. */
    double t_conn = now_s();
    for (;;) {
        int up = 0;
        for (int i = 0; i < g_nconn; i++) {
            struct conn *c = &conns[i];
            if (c->connected) { up++; continue; }
            int err = 0;
            socklen_t len = sizeof err;
            struct sockaddr_storage peer;
            socklen_t plen = sizeof peer;
            if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) == 0) { c->connected = 1; update_events(c); up++; }
            else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err && err != EINPROGRESS) {
                fprintf(stderr, "reportflood: connect to %s:%d: %s\n", g_addr, g_port, strerror(err));
                return 1;
            }
        }
        if (up == g_nconn) break;
        if (now_s() - t_conn > 3) { fprintf(stderr, "reportflood: connections not established within 3 s\n"); return 1; }
        struct epoll_event evs[64];
        epoll_wait(g_ep, evs, 64, 10);
    }

    double t0 = now_s(), t_end = t0 + g_duration, t_next_progress = t0 + 1;
    unsigned long long k = 0, last_resp = 0;
    int rr = 0;
    struct epoll_event evs[256];
    for (;;) {
        double t = now_s();
        if (g_stop) break;
        int sending = t < t_end;
        if (!sending) {
            unsigned long long inflight = 0;
            for (int i = 0; i < g_nconn; i++) inflight += (unsigned long long)conns[i].inflight;
            if (inflight == 0 || t > t_end + g_drain) break;
        }
        if (sending) {
            /* Requests due by now, by the schedule; a backlog waits for free slots. */
            unsigned long long due = (unsigned long long)((t - t0) * g_req_rate) + 1;
            while (k < due) {
                struct conn *c = NULL;
                for (int n = 0; n < g_nconn; n++) {
                    struct conn *cand = &conns[(rr + n) % g_nconn];
                    if (cand->fd >= 0 && cand->connected && cand->inflight < g_depth) { c = cand; rr = (rr + n + 1) % g_nconn; break; }
                }
                if (!c) break;                   /* every connection full: the backlog waits */
                double lag = t - (t0 + (double)k / g_req_rate);
                if (lag > 0.001) g_late++;
                if (lag > g_maxlag) g_maxlag = lag;
                send_report(c, k, t);
                k++;
                if (c->wlen - c->woff > 32768) flush_conn(c);
            }
            for (int i = 0; i < g_nconn; i++)
                if (conns[i].fd >= 0 && conns[i].wlen > conns[i].woff) flush_conn(&conns[i]);
        }
        /* Sleep until the next request is due, or until a socket is ready; with a backlog (every
         * connection full) only a response can free a slot, so wait for one (at most 10 ms). */
        int backlog = sending && (double)k < (now_s() - t0) * g_req_rate;
        double wait_s = !sending ? 0.01 : backlog ? 0.01 : (double)(k) / g_req_rate + t0 - now_s();
        int timeout_ms = wait_s <= 0 ? 0 : (int)(wait_s * 1000) + (wait_s * 1000 > (int)(wait_s * 1000));
        if (timeout_ms > 10) timeout_ms = 10;
        int n = epoll_wait(g_ep, evs, 256, timeout_ms);
        double tr = now_s();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (!c->connected && (evs[i].events & EPOLLOUT)) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) { g_errors++; reset_conn(c); continue; }
                c->connected = 1;
                update_events(c);
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int gone = 0;
                for (;;) {
                    ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
                    if (r > 0) {
                        c->rlen += (size_t)r;
                        c->rbuf[c->rlen] = 0;
                        if (parse_responses(c, tr) < 0) { gone = 1; break; }
                        continue;
                    }
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) gone = 1;
                    break;
                }
                if (gone) { reset_conn(c); continue; }
            }
            if ((evs[i].events & EPOLLOUT) && c->wlen > c->woff) flush_conn(c);
        }
        if (!g_quiet && tr >= t_next_progress && tr < t_end) {
            fprintf(stderr, "reportflood: %4.0fs  %llu responses/s  sent %llu  answered %llu\n",
                    tr - t0, g_responses - last_resp, g_sent, g_responses);
            last_resp = g_responses;
            t_next_progress += 1;
        }
    }
    double elapsed = now_s() - t0;
    double send_time = elapsed < g_duration ? elapsed : g_duration;
    unsigned long long unanswered = 0;
    for (int i = 0; i < g_nconn; i++) {
        unanswered += (unsigned long long)conns[i].inflight;
        if (conns[i].fd >= 0) close(conns[i].fd);
    }
    qsort(g_lat, g_nlat, sizeof *g_lat, cmp_u32);
    unsigned long long ok = g_status[204];
    unsigned long long per = g_batch ? (unsigned long long)g_batch : 1;
    printf("target_rate=%.0f duration=%.2f conns=%d depth=%d sites=%zu batch=%d requests=%llu sent=%llu responses=%llu rate=%.1f "
           "unanswered=%llu late=%llu errors=%llu reconnects=%llu",
           g_rate, send_time, g_nconn, g_depth, g_nsites, g_batch, g_sent, g_sent * per, g_responses * per,
           send_time > 0 ? (double)(g_responses * per) / send_time : 0,
           unanswered * per, g_late, g_errors, g_reconnects);
    printf(" max_lag_ms=%.1f", g_maxlag * 1000);
    for (int s = 100; s < 600; s++)
        if (g_status[s]) printf(" status_%d=%llu", s, g_status[s]);
    if (g_status_other) printf(" status_other=%llu", g_status_other);
    printf(" ok_pct=%.3f lat_ms_p50=%.3f lat_ms_p90=%.3f lat_ms_p99=%.3f lat_ms_max=%.3f\n",
           g_sent ? 100.0 * (double)ok / (double)g_sent : 0, pct(0.5), pct(0.9), pct(0.99),
           g_nlat ? g_lat[g_nlat - 1] / 1000.0 : 0);
    return 0;
}
