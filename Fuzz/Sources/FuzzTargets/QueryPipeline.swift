import ExampleState
import Foundation
import Resolver
import Scoring

/// The state every input is answered from: the example zone and steered service, with NSID,
/// CH identity, cookies and rate limiting on, so that every branch of answering is reachable.
let fuzzState = ExampleState.make(
    root: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent(),
    nsid: Array("fuzz".utf8), chaos: ChaosIdentity.records(id: "fuzz", version: "0"),
    cookies: CookieSecrets(current: Array(repeating: 1, count: 16)),
    rateLimiter: ResponseRateLimiter(RateLimitConfiguration(rate: 50, slip: 2)))

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
