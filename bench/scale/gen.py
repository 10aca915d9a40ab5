#!/usr/bin/env python3
"""bench/scale/gen.py — writes a large resolverd case (issue 7, "Serving speed").

    bench/scale/gen.py OUT_DIR --dns-port 25353 --http-port 28053 [options]

OUT_DIR receives (all deterministic for a given --seed and sizes):

    resolverd.yaml      same schema as the shipped resolverd.yaml; DNS and HTTP on 127.0.0.1
    zones/scale.example.zone
    latency.csv         prefix,site,rtt_ms — PREFIXES distinct prefixes (mostly IPv4 /24s over
                        1.0.0.0-223.255.255.0, IPV6_SHARE of them IPv6 /48s in 2001:db8::/32),
                        1..ROWS_PER_PREFIX rows each, every row a site of the prefix's "home" service
    tokens.yaml         one clear-text token per site (as a real deployment would have) + admin
    admin.token         the admin token in the clear (may report for every site)
    queries.txt         service-name mix, `name TYPE ecs=PREFIX/LEN` (bench/loadgen.c format):
                        normal services, ECS from the latency file's prefixes (QUERIES lines;
                        20 % AAAA); each line a (service, prefix) pair, so a first pass over it
                        makes a new client binding per query ("cold"), later passes find the
                        binding ("warm": resolvers asking again after their TTL)
    queries-big.txt     the same for the services with BIG_SITES candidates only (BIG_QUERIES lines)
    queries-small.txt   the shipped example's service (api.svc.example.) with ECS from the same
                        kind of many /24s (SMALL_QUERIES lines), for the small-vs-scale comparison
    *-hot.txt           the first HOT_QUERIES lines of each: cycled fast, the same clients ask
                        again within a second ("hot": the server may reuse its decisions)
    sites.txt           the site IDs, one a line (for bench/reports/reportflood)
    case.txt            the sizes, as key=value

Sites: SITES of them, IPv4 from 198.18.0.0/15 (benchmarking range, RFC 2544), IPv6 for about
60 % of them from 2001:db8::/32 (documentation, RFC 3849), capacity 100-5000 req/s, a location.
Services: SERVICES names sNNNN.scale.example. with 8..32 sites each (regional: sites drawn mostly
from one slice of the site list), plus BIG services bigN.scale.example. with BIG_SITES sites each.

Only the standard library is used; runs in about 15-30 s for the default sizes.
"""
import argparse
import ipaddress
import os
import random
import sys

ZONE = "scale.example."


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output directory (created)")
    p.add_argument("--dns-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--sites", type=int, default=10_000)
    p.add_argument("--services", type=int, default=1_000)
    p.add_argument("--min-sites", type=int, default=8, help="fewest sites of a normal service")
    p.add_argument("--max-sites", type=int, default=32, help="most sites of a normal service")
    p.add_argument("--big", type=int, default=2, help="services with --big-sites candidates")
    p.add_argument("--big-sites", type=int, default=1_000)
    p.add_argument("--prefixes", type=int, default=1_000_000, help="distinct prefixes in latency.csv")
    p.add_argument("--rows-per-prefix", type=int, default=3, help="each prefix gets 1..N rows")
    p.add_argument("--ipv6-share", type=float, default=0.05, help="fraction of prefixes that are IPv6 /48s")
    p.add_argument("--queries", type=int, default=100_000, help="lines of queries.txt")
    p.add_argument("--big-queries", type=int, default=5_000, help="lines of queries-big.txt")
    p.add_argument("--small-queries", type=int, default=200_000, help="lines of queries-small.txt")
    p.add_argument("--hot-queries", type=int, default=2_000, help="lines of the *-hot.txt mixes")
    p.add_argument("--site-tokens", type=int, default=-1,
                   help="site tokens in tokens.yaml (default: one per site; 0: admin only)")
    a = p.parse_args()
    if a.sites < a.max_sites or (a.big > 0 and a.sites < a.big_sites):
        p.error("--sites must be at least --max-sites and --big-sites")
    if not 1 <= a.min_sites <= a.max_sites:
        p.error("need 1 <= --min-sites <= --max-sites")
    if min(a.services, a.prefixes, a.queries, a.big_queries, a.small_queries, a.hot_queries, a.rows_per_prefix) < 1:
        p.error("--services, --prefixes, --*queries and --rows-per-prefix must be >= 1")
    if not 0 <= a.ipv6_share <= 1:
        p.error("--ipv6-share must be within 0..1")
    if a.site_tokens < 0:
        a.site_tokens = a.sites
    return a


def site_id(i):
    return "e%05d" % i


def main():
    a = parse_args()
    rnd = random.Random(a.seed)
    out = a.out
    os.makedirs(os.path.join(out, "zones"), exist_ok=True)

    # ---------------------------------------------------------------- sites
    base4 = int(ipaddress.IPv4Address("198.18.0.0"))
    if a.sites > 2 ** 17 - 2:
        sys.exit("gen.py: at most 131070 sites fit in 198.18.0.0/15")
    sites = []  # (id, v4, v6 or None, capacity, lat, lon)
    for i in range(a.sites):
        v4 = str(ipaddress.IPv4Address(base4 + i + 1))
        v6 = "2001:db8:%x:%x::10" % (i >> 8, i & 0xFF) if rnd.random() < 0.6 else None
        capacity = rnd.choice([100, 200, 400, 800, 1000, 1500, 2000, 3000, 5000])
        lat = round(rnd.uniform(-55, 70), 2)
        lon = round(rnd.uniform(-180, 180), 2)
        sites.append((site_id(i), v4, v6, capacity, lat, lon))

    # ---------------------------------------------------------------- services
    # A normal service is regional: most of its sites come from a window of the site list.
    services = []  # (name, [site indices])
    width = max(a.max_sites * 4, a.sites // 20)
    for s in range(a.services):
        n = rnd.randint(a.min_sites, a.max_sites)
        start = rnd.randrange(a.sites)
        chosen = set()
        while len(chosen) < n:
            if rnd.random() < 0.8:
                chosen.add((start + rnd.randrange(width)) % a.sites)
            else:
                chosen.add(rnd.randrange(a.sites))
        services.append(("s%04d.%s" % (s, ZONE), sorted(chosen)))
    big = []
    for b in range(a.big):
        big.append(("big%d.%s" % (b, ZONE), sorted(rnd.sample(range(a.sites), a.big_sites))))

    # ---------------------------------------------------------------- zone
    with open(os.path.join(out, "zones", ZONE + "zone"), "w") as f:
        f.write("; generated by bench/scale/gen.py (seed %d)\n" % a.seed)
        f.write("$ORIGIN %s\n$TTL 3600\n" % ZONE)
        f.write("@ IN SOA ns1 hostmaster 2026120101 7200 3600 1209600 300\n")
        f.write("  IN NS ns1\n  IN NS ns2\n")
        f.write("ns1 IN A 192.0.2.53\nns1 IN AAAA 2001:db8::53\nns2 IN A 198.51.100.53\n")
        f.write("www IN A 192.0.2.80\n")

    # ---------------------------------------------------------------- config
    with open(os.path.join(out, "resolverd.yaml"), "w") as f:
        f.write("# generated by bench/scale/gen.py (seed %d): %d sites, %d+%d services, %d prefixes\n"
                % (a.seed, a.sites, a.services, a.big, a.prefixes))
        f.write("dns:\n  listen: [\"127.0.0.1:%d\"]\n  nsid: resolverd-scale\n" % a.dns_port)
        f.write("http:\n  listen: \"127.0.0.1:%d\"\n  tokens: tokens.yaml\n" % a.http_port)
        f.write("zones: zones\n")
        f.write("sites:\n")
        for (sid, v4, v6, cap, lat, lon) in sites:
            addrs = v4 if v6 is None else '%s, "%s"' % (v4, v6)
            f.write("  %s: {addresses: [%s], capacity: %d, location: [%s, %s]}\n" % (sid, addrs, cap, lat, lon))
        f.write("services:\n")
        for name, idx in services + big:
            f.write("  %s:\n    sites: [%s]\n    ttl: 20\n    answers: 1\n    policy: response-time\n"
                    "    affinity: {hold: 300, margin: 0.2}\n" % (name, ", ".join(site_id(i) for i in idx)))
        f.write("latency:\n  file: latency.csv\n  default-rtt-ms: 80\n")

    # ---------------------------------------------------------------- tokens
    admin = "scale-admin-token-%08x" % rnd.getrandbits(32)
    with open(os.path.join(out, "tokens.yaml"), "w") as f:
        f.write("# generated by bench/scale/gen.py: one token per site, plus admin\n")
        for i in range(a.site_tokens):
            f.write('"scale-report-%s-%08x": {site: %s}\n' % (site_id(i), rnd.getrandbits(32), site_id(i)))
        f.write('"%s": {role: admin}\n' % admin)
        f.write('"scale-measurement-token-0001": {role: measurement}\n')
    with open(os.path.join(out, "admin.token"), "w") as f:
        f.write(admin + "\n")
    with open(os.path.join(out, "sites.txt"), "w") as f:
        f.write("".join(s[0] + "\n" for s in sites))

    # ---------------------------------------------------------------- latency
    n6 = int(round(a.prefixes * a.ipv6_share))
    n4 = a.prefixes - n6
    lo, hi = 1 << 16, 224 << 16            # /24 numbers of 1.0.0.0 .. 223.255.255.0
    if n4 > (hi - lo) - (1 << 16):
        sys.exit("gen.py: too many IPv4 prefixes")
    v4set = set()
    while len(v4set) < n4:
        x = rnd.randrange(lo, hi)
        if (x >> 16) != 127:                # no loopback
            v4set.add(x)
    v4list = sorted(v4set)
    v6set = set()
    while len(v6set) < n6:
        v6set.add(rnd.getrandbits(16))      # 2001:db8:XXXX::/48
        if len(v6set) >= 65536:
            break
    v6list = sorted(v6set)
    prefixes = ["%d.%d.%d.0/24" % (x >> 16, (x >> 8) & 255, x & 255) for x in v4list]
    prefixes += ["2001:db8:%x::/48" % x for x in v6list]
    nsvc = len(services)
    home = []                              # home service per prefix, for the query mix
    rows = 0
    with open(os.path.join(out, "latency.csv"), "w") as f:
        f.write("prefix,site,rtt_ms\n")
        buf = []
        for p in prefixes:
            s = rnd.randrange(nsvc)
            home.append(s)
            idx = services[s][1]
            k = min(rnd.randint(1, a.rows_per_prefix), len(idx))
            for site in rnd.sample(idx, k):
                buf.append("%s,%s,%.1f\n" % (p, site_id(site), rnd.uniform(2, 150)))
                rows += 1
            if len(buf) > 65536:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))

    # ---------------------------------------------------------------- queries
    def qline(name, i):
        p = prefixes[i]
        qtype = "AAAA" if rnd.random() < 0.2 else "A"
        return "%s %s ecs=%s\n" % (name, qtype, p)

    def write_mix(name, count, pick):
        lines = []
        for _ in range(count):
            lines.append(pick())
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.write("".join(lines))
        with open(os.path.join(out, name + "-hot.txt"), "w") as f:
            f.write("".join(lines[:a.hot_queries]))

    def normal():
        i = rnd.randrange(len(prefixes))
        return qline(services[home[i]][0], i)

    def bigq():
        return qline(big[rnd.randrange(len(big))][0] if big else services[0][0], rnd.randrange(len(prefixes)))

    def small():
        return qline("api.svc.example.", rnd.randrange(len(prefixes)))

    write_mix("queries", a.queries, normal)
    write_mix("queries-big", a.big_queries, bigq)
    write_mix("queries-small", a.small_queries, small)

    with open(os.path.join(out, "case.txt"), "w") as f:
        f.write("seed=%d sites=%d services=%d big_services=%d big_sites=%d prefixes=%d ipv4_prefixes=%d "
                "ipv6_prefixes=%d latency_rows=%d site_tokens=%d queries=%d big_queries=%d small_queries=%d hot_queries=%d\n"
                % (a.seed, a.sites, a.services, len(big), a.big_sites, len(prefixes), len(v4list), len(v6list),
                   rows, a.site_tokens, a.queries, a.big_queries, a.small_queries, a.hot_queries))
    print(open(os.path.join(out, "case.txt")).read().strip())


if __name__ == "__main__":
    main()
