import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 connection with `ReportFastPath` in front of its decoder: the
/// control API's connections. Everything but plain load reports goes through Hummingbird's
/// own pipeline and router unchanged.
struct ControlChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let api: ControlAPI
    let pacer: ControlLoopPacer?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ReportFastPath(api: api, pacer: pacer))
        }.flatMap {
            http1.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with load reports answered ahead of the router (`ControlChannel`).
    static func control(api: ControlAPI, pacer: ControlLoopPacer? = nil) -> HTTPServerBuilder {
        .init { responder in ControlChannel(http1: HTTP1Channel(responder: responder), api: api, pacer: pacer) }
    }
}
