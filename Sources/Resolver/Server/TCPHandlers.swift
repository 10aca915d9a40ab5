import NIOCore
import Scoring

/// Splits a TCP stream into DNS messages by their two-octet length prefix (RFC 1035 §4.2.2).
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        let frame = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial message at EOF is discarded.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Answers each framed query in order. Pipelined queries (RFC 7766 §6.2.1) are answered as
/// they are decoded, and the responses of one read are flushed together. The connection is
/// closed after `idleTimeout` without a complete query (RFC 7766 §6.2.3).
final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

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
        let frame = unwrapInboundIn(data)
        let state = store.state
        sequence &+= 1
        let requestContext = RequestContext(transport: .tcp, source: IPAddress(context.channel.remoteAddress), sequence: sequence)
        let answered = frame.withUnsafeReadableBytes { packet in
            responder.respond(to: packet, context: requestContext, state: state)
        }
        metrics.record(answered: answered, transport: .tcp)
        guard answered else { return }
        var buffer = context.channel.allocator.buffer(capacity: responder.writer.count + 2)
        buffer.writeInteger(UInt16(responder.writer.count))
        buffer.writeBytes(responder.writer.bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        pendingFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // One broken peer closes only its own connection.
        context.close(promise: nil)
    }
}
