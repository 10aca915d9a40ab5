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

    let withECS = query("api.svc.example.", ecs: "203.0.113.0/24")
    Benchmark("Decode query with ECS") { benchmark in
        withECS.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole(try? Query.decode(bytes, keepOptions: false)) }
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

    let context = RequestContext(transport: .udp, source: IPAddress("198.51.100.7"), now: 1000)
    for (label, packet) in [("static www A", query("www.svc.example.")),
                            ("service A with ECS, affinity", withECS)] {
        Benchmark("Answer \(label) (decode, select, encode)") { benchmark in
            var responder = Responder()
            packet.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations { blackHole(responder.respond(to: bytes, context: context, state: state)) }
            }
        }
    }
}
