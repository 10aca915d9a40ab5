import Foundation
import Resolver
import Scoring

/// The shipped example zone with one steered service (fra1, ams1, par1; a measured RTT for the
/// French /24), built in code for harnesses outside the daemon: the fuzzer and the
/// microbenchmarks answer from it exactly as `serve` answers from `resolverd.yaml`.
public enum ExampleState {
    /// `root` is the repository (it holds `zones/svc.example.zone`).
    public static func make(root: URL, nsid: [UInt8]? = nil, chaos: [DNSName: RRSet] = [:],
                            cookies: CookieSecrets = .random(), rateLimiter: ResponseRateLimiter? = nil) -> ServingState {
        let zone = try! ZoneFileLoader.load(path: root.appendingPathComponent("zones/svc.example.zone").path).get()
        let sites = [
            Site(id: "fra1", addresses: [IPAddress("192.0.2.10")!, IPAddress("2001:db8:1::10")!], capacity: 800),
            Site(id: "ams1", addresses: [IPAddress("192.0.2.20")!], capacity: 600),
            Site(id: "par1", addresses: [IPAddress("192.0.2.30")!], capacity: 400),
        ]
        var latency = LatencyMap()
        _ = latency.setRTT(3, prefix: IPPrefix("203.0.113.0/24")!, site: 2)
        let steering = SteeringSnapshot(sites: sites, services: [Service(name: "api.svc.example.", sites: [0, 1, 2])],
                                        latency: latency)
        let name = try! DNSName("api.svc.example.")
        return ServingState(catalog: Catalog(zones: [zone]), nsid: nsid, chaos: chaos, steering: steering,
                            services: [name: ServiceEntry(name: name, index: 0, zone: zone, snapshot: steering)],
                            cookies: cookies, rateLimiter: rateLimiter)
    }
}
