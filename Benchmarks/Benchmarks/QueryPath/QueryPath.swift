import Benchmark
import ExampleState
import Foundation
import Resolver
import Scoring

/// The example zone and steered service, as the daemon would hold them.
let state = ExampleState.make(root: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent())

func query(_ name: String, ecs: String? = nil) -> [UInt8] {
    var options: [EDNSOption] = []
    if let ecs {
        let parts = ecs.split(separator: "/")
        var writer = WireWriter()
        ClientSubnet(address: IPAddress(parts[0])!, sourcePrefixLength: UInt8(parts[1])!).encodeData(into: &writer)
        options.append(EDNSOption(code: .clientSubnet, data: writer.bytes))
    }
    return Query(header: Header(id: 1), question: Question(name: try! DNSName(name), type: .a), edns: EDNS(options: options)).wire
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
                                           maxDuration: .seconds(3))

    // What the harness itself counts per sample (its own allocations and time): subtract it
    // from the rows below to get the cost of the code measured.
    Benchmark("Baseline (harness only)") { benchmark in
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { blackHole(index) }
    }

    let withECS = query("api.svc.example.", ecs: "203.0.113.0/24")
    Benchmark("Decode query with ECS") { benchmark in
        withECS.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole(try? Query.decode(bytes, keepOptions: false)) }
        }
    }

    let decoded = withECS.withUnsafeBytes { try! Query.decode($0) }
    Benchmark("Encode query with ECS") { benchmark in
        var writer = WireWriter(capacity: 512)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            writer.reset()
            decoded.encode(into: &writer)
            blackHole(writer.count)
        }
    }

    let steering = state.steering
    let service = steering.services[0]
    let client = Client(address: IPAddress("203.0.113.7")!, prefixLength: 24)
    Benchmark("Select (3 sites, no affinity)") { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(Selector.select(service: service, client: client, snapshot: steering, now: 1000, sequence: UInt64(index)))
        }
    }

    // Selection cost per candidate: the same service over 1 000 sites.
    let manySites = (0..<1000).map { Site(id: "s\($0)", addresses: [.v4(0xC000_0200 | UInt32($0 & 0xFF))], capacity: 500) }
    let wide = SteeringSnapshot(sites: manySites, services: [Service(name: "wide.", sites: Array(0..<1000))])
    Benchmark("Select (1000 sites, no affinity)") { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(Selector.select(service: wide.services[0], client: client, snapshot: wide, now: 1000, sequence: UInt64(index)))
        }
    }

    let context = RequestContext(transport: .udp, source: IPAddress("198.51.100.7"), now: 1000)
    // Compiled: the fast path (AnswerTable; for the service, the decision reused within its
    // second). General: every query decoded, answered and encoded (for the service, decided).
    for (label, packet) in [("static www A", query("www.svc.example.")),
                            ("service A with ECS, affinity", withECS)] {
        for compiled in [true, false] {
            Benchmark("Answer \(label), \(compiled ? "compiled" : "general path")") { benchmark in
                var responder = Responder()
                responder.usesCompiledAnswers = compiled
                packet.withUnsafeBytes { bytes in
                    // One answer before measuring, so the service's decision exists to reuse.
                    blackHole(responder.respond(to: bytes, context: context, state: state))
                    benchmark.startMeasurement()
                    for _ in benchmark.scaledIterations { blackHole(responder.respond(to: bytes, context: context, state: state)) }
                }
            }
        }
    }

    // Many clients: 4 096 ECS /24s in turn, so the memo holds many decisions at once.
    let clients = (0..<4096).map { query("api.svc.example.", ecs: "\(11 + $0 / 256).\($0 % 256).7.0/24") }
    Benchmark("Answer service A, 4096 ECS /24s in turn, compiled") { benchmark in
        var responder = Responder()
        for packet in clients { packet.withUnsafeBytes { blackHole(responder.respond(to: $0, context: context, state: state)) } }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            clients[index & 4095].withUnsafeBytes { blackHole(responder.respond(to: $0, context: context, state: state)) }
        }
    }
}
