import NIOCore
import Scoring

/// Adapts a datagram channel to `Responder`: one query in, at most one response out.
/// Responses are flushed once per read burst, so a vector read is answered by one
/// batch of writes.
final class UDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let store: StateStore
    private let metrics: ServerCounters
    private var responder = Responder()
    private var pendingFlush = false
    private var sequence: UInt64 = 0

    init(store: StateStore, metrics: ServerCounters) {
        self.store = store
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let state = store.state
        sequence &+= 1
        let requestContext = RequestContext(transport: .udp, source: IPAddress(envelope.remoteAddress), sequence: sequence)
        let answered = envelope.data.withUnsafeReadableBytes { packet in
            responder.respond(to: packet, context: requestContext, state: state)
        }
        metrics.record(answered: answered, transport: .udp)
        guard answered else { return }
        var buffer = context.channel.allocator.buffer(capacity: responder.writer.count)
        buffer.writeBytes(responder.writer.bytes)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)),
                      promise: nil)
        pendingFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A failed send to one client (ICMP unreachable surfacing as an error, a full socket
        // buffer) must not close the socket that serves everyone else.
    }
}
