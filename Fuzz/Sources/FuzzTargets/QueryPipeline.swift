import Foundation
import Resolver
import Scoring

/// The state every input is answered from: the shipped example zone with one steered service
/// (three sites, latency for one prefix), cookies and rate limiting on, so that every branch
/// of answering is reachable.
let fuzzState: ServingState = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
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
    return ServingState(catalog: Catalog(zones: [zone]), nsid: Array("fuzz".utf8),
                        chaos: ChaosIdentity.records(id: "fuzz", version: "0"), steering: steering,
                        services: [name: ServiceEntry(name: name, index: 0, zone: zone, snapshot: steering)],
                        cookies: CookieSecrets(current: Array(repeating: 1, count: 16)),
                        rateLimiter: ResponseRateLimiter(RateLimitConfiguration(rate: 50, slip: 2)))
}()

nonisolated(unsafe) var responder = Responder()
/// The steering clock advances 10 ms per input, so rate-limit buckets refill (50 a second):
/// a bucket hit by every input is limited half the time, and both paths stay exercised.
nonisolated(unsafe) var inputs = 0

/// One input: decoded as a whole message and as a query (neither may trap), then answered over
/// UDP and TCP exactly as the transports do. A response that does not decode, is not a
/// response to this query, or is larger than the transport allows is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQueryPipeline(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let packet = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? Message(packet)
    let query = try? Query.decode(packet)
    inputs += 1
    let now = 1000 + Double(inputs) * 0.01
    for transport in [Transport.udp, .tcp] {
        let context = RequestContext(transport: transport, source: IPAddress("198.51.100.7"), now: now, wallClock: 1_700_000_000)
        guard responder.respond(to: packet, context: context, state: fuzzState) else { continue }
        let response = responder.response
        guard let message = try? Message(response) else { fatalError("undecodable response to \(Array(packet))") }
        precondition(message.header.isResponse, "a response without QR")
        precondition(size >= 2 && message.header.id == UInt16(packet[0]) << 8 | UInt16(packet[1]), "ID not echoed")
        if transport == .udp {
            let limit = query?.edns == nil ? 512 : Responder.maxUDPPayload
            precondition(response.count <= limit, "UDP response of \(response.count) bytes, limit \(limit)")
        }
    }
    return 0
}
