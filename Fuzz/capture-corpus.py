#!/usr/bin/env python3
"""Seeds the fuzz corpus with real queries: listens on a loopback UDP port, runs dig, kdig and
drill with the options resolvers and operators use (ECS, cookies, NSID, DO, CH, EDNS versions),
and writes each datagram received to corpus/<tool>-<n>.bin. Run from this directory."""
import os, socket, subprocess, threading

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.settimeout(0.3)
os.makedirs("corpus", exist_ok=True)

runs = [
    ("dig", ["www.svc.example.", "A"]),
    ("dig", ["api.svc.example.", "A", "+subnet=198.51.100.0/24"]),
    ("dig", ["api.svc.example.", "AAAA", "+subnet=2001:db8:100::/56"]),
    ("dig", ["api.svc.example.", "A", "+subnet=0.0.0.0/0"]),
    ("dig", ["www.svc.example.", "A", "+cookie"]),
    ("dig", ["www.svc.example.", "A", "+cookie=0123456789abcdef0100000065a1b2c31122334455667788"]),
    ("dig", ["www.svc.example.", "A", "+nsid", "+dnssec"]),
    ("dig", ["www.svc.example.", "A", "+edns=1", "+ednsflags=0x40", "+ednsopt=65001:abcd"]),
    ("dig", ["www.svc.example.", "A", "+noedns"]),
    ("dig", ["id.server.", "TXT", "-c", "CH"]),
    ("dig", ["svc.example.", "ANY", "+notcp"]),
    ("dig", ["host.sub.svc.example.", "A", "+norec"]),
    ("dig", ["big.svc.example.", "TXT", "+bufsize=512"]),
    ("dig", ["svc.example.", "SOA", "+adflag"]),
    ("dig", ["x.wild.svc.example.", "TXT", "+cdflag", "+zflag"]),
    ("kdig", ["api.svc.example.", "A", "+subnet=203.0.113.0/24", "+cookie", "+nsid"]),
    ("kdig", ["www.svc.example.", "MX", "+padding=64"]),
    ("drill", ["-D", "www.svc.example.", "AAAA"]),
]

def capture(tool, args, index):
    command = [tool] + (["-p", str(port), "@127.0.0.1"] if tool != "drill" else ["-p", str(port)])
    timing = {"dig": ["+time=1", "+tries=1"], "kdig": ["+timeout=1", "+retry=0"], "drill": []}[tool]
    command += args + timing + (["@127.0.0.1"] if tool == "drill" else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock.settimeout(3)
        data, _ = sock.recvfrom(65535)
        sock.settimeout(0.3)
        with open(f"corpus/{tool}-{index:02d}.bin", "wb") as out:
            out.write(data)
    except socket.timeout:
        sock.settimeout(0.3)
        print(f"no query from {' '.join(command)}")
    process.kill()
    process.wait()
    while True:  # drop retries
        try:
            sock.recvfrom(65535)
        except socket.timeout:
            break

for index, (tool, args) in enumerate(runs):
    capture(tool, args, index)
