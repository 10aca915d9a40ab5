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

/// The same zone without rate limiting and cookie secrets, where the fast path (compiled
/// answers) runs: every input is answered there by the fast path and by the general path
/// alone, and the two must agree byte for byte (differential fuzzing).
let compiledState = ExampleState.make(
    root: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent())

nonisolated(unsafe) var responder = Responder()
nonisolated(unsafe) var fast = Responder()
nonisolated(unsafe) var general: Responder = {
    var responder = Responder()
    responder.usesCompiledAnswers = false
    return responder
}()
/// The steering clock advances 10 ms per input, so rate-limit buckets refill (50 a second):
/// a bucket hit by every input is limited half the time, and both paths stay exercised.
nonisolated(unsafe) var inputs = 0

/// One input: decoded as a whole message and as a query (neither may trap), then answered over
/// UDP and TCP exactly as the transports do. A response that does not decode, is not a
/// response to this query, or is larger than the transport allows is a finding; so is a
/// difference between the fast path's and the general path's response.
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
    for transport in [Transport.udp, .tcp] {
        let context = RequestContext(transport: transport, source: IPAddress("198.51.100.7"), now: now, wallClock: 1_700_000_000)
        let fastAnswered = fast.respond(to: packet, context: context, state: compiledState)
        let generalAnswered = general.respond(to: packet, context: context, state: compiledState)
        // Service names are left out of the comparison: there the fast path reuses a decision
        // for up to a second by design (DecisionMemo), which the general path makes anew.
        if let name = query?.question.name, compiledState.services[name] != nil { continue }
        precondition(fastAnswered == generalAnswered, "fast and general paths disagree on answering \(Array(packet))")
        precondition(!fastAnswered || fast.response == general.response,
                     "fast and general paths answer \(Array(packet)) differently over \(transport)")
    }
    return 0
}
